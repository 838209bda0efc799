"""The console's session cookie (HttpOnly, SameSite=Strict, limited to its endpoint, CSRF-checked, revocable), the
property-wide live stream and the property's audit log, over the real HTTP server and MQTT."""

from __future__ import annotations

import httpx
import pytest

from tests.support.api import PASSWORD, Api, Sse, bearer, building, problem

pytestmark = pytest.mark.parametrize("broker", ["embedded"], indirect=True)

SESSION = "/auth/console-session"
CONSOLE = {"X-Console": "1"}


async def test_console_session_cookie_resumes_and_ends(api: Api) -> None:
    async with building(api) as b, httpx.AsyncClient(base_url=api.service.url + "/api/v1", timeout=10) as web:
        del b
        r = await web.post(SESSION, json={"username": "maria.manager", "password": PASSWORD})
        assert r.status_code == 200, r.text
        grant = r.json()
        cookie = r.headers["set-cookie"]
        assert f"console_session={grant['token']}" in cookie
        for attribute in ("HttpOnly", "SameSite=strict", "Path=/api/v1/auth/console-session", "Max-Age=43200"):
            assert attribute in cookie, attribute
        assert "Secure" not in cookie  # plain http on loopback; set over TLS
        assert (await web.get("/properties", headers=bearer(grant["token"]))).status_code == 200

        # a reload: the cookie (sent by the browser only to this path) gives the page the session back
        problem(await web.post(f"{SESSION}/resume"), 403, "csrf_refused")  # no X-Console header
        evil = {**CONSOLE, "Origin": "http://evil.example"}
        problem(await web.post(f"{SESSION}/resume", headers=evil), 403, "csrf_refused")
        same = {**CONSOLE, "Origin": api.service.url}
        r = await web.post(f"{SESSION}/resume", headers=same)
        assert r.status_code == 200, r.text
        assert r.json()["token"] == grant["token"] and r.json()["account"]["username"] == "maria.manager"

        # sign-out ends the session and clears the cookie
        problem(await web.delete(SESSION), 403, "csrf_refused")
        r = await web.delete(SESSION, headers=CONSOLE)
        assert r.status_code == 204
        assert 'console_session=""' in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]
        problem(await web.get("/properties", headers=bearer(grant["token"])), 401, "session_revoked")
        problem(await web.post(f"{SESSION}/resume", headers=CONSOLE), 401, "unauthenticated")  # cleared
        # a copy kept by hand does not come back, and is cleared
        kept = {**CONSOLE, "Cookie": f"console_session={grant['token']}"}
        async with httpx.AsyncClient(base_url=api.service.url + "/api/v1", timeout=10) as other:
            r = await other.post(f"{SESSION}/resume", headers=kept)
        problem(r, 401, "session_revoked")
        assert 'console_session=""' in r.headers["set-cookie"]


async def test_console_session_is_revocable_and_for_staff_only(api: Api) -> None:
    async with building(api) as b, httpx.AsyncClient(base_url=api.service.url + "/api/v1", timeout=10) as web:
        r = await web.post(SESSION, json={"username": "alice", "password": PASSWORD})
        problem(r, 403, "role_forbidden")
        assert "set-cookie" not in r.headers
        problem(await web.post(SESSION, json={"username": "maria.manager", "password": "wrong"}), 401, "login_failed")

        r = await web.post(SESSION, json={"username": "ivan.installer", "password": PASSWORD})
        assert r.status_code == 200, r.text
        installer = r.json()["account"]["id"]
        r = await api.http.post(f"/operator/accounts/{installer}/revoke-sessions", headers=bearer(api.operator))
        assert r.status_code == 204, r.text
        problem(await web.post(f"{SESSION}/resume", headers=CONSOLE), 401, "session_revoked")
        del b


async def test_property_stream_names_the_unit_and_is_for_its_staff(api: Api) -> None:
    async with building(api) as b:
        for token, status, code in ((b.alice, 403, "role_forbidden"), (api.operator, 403, "role_forbidden")):
            problem(await api.http.get("/properties/p1/stream", headers=bearer(token)), status, code)
        r = await api.http.post("/properties", json={"id": "p2", "name": "Oak Row"}, headers=bearer(api.operator))
        assert r.status_code == 201, r.text
        other = await api.staff("oscar.manager", "manager", "p2")
        problem(await api.http.get("/properties/p1/stream", headers=bearer(other)), 404, "property_not_found")

        lock = b.entity("a", "lock", "lock")
        async with api.http.stream("GET", "/properties/p1/stream", headers=bearer(b.installer)) as response:
            stream = Sse(response)
            assert await stream.next() == ("ready", {"property_id": "p1"})
            await b.sims["a"].lock.drop_offline()
            seen = await stream.until("availability", lock, lambda e: e["available"] is False)
            assert seen[-1][1]["unit_id"] == "a"
            await b.sims["b"].leak.set_leak(True)
            leak = b.entity("b", "leak", "binary_sensor", "leak")
            seen = await stream.until("state", leak, lambda e: e["state"] == {"on": True})
            assert seen[-1][1]["unit_id"] == "b"


async def test_property_audit_is_the_managers_own(api: Api) -> None:
    async with building(api) as b:
        r = await api.http.get("/properties/p1/audit", headers=bearer(b.manager))
        assert r.status_code == 200, r.text
        entries = r.json()["entries"]
        assert {"resident.move_in"} <= {e["action"] for e in entries}
        assert all(e["property_id"] == "p1" for e in entries)
        problem(await api.http.get("/properties/p1/audit", headers=bearer(b.installer)), 403, "role_forbidden")
        problem(await api.http.get("/properties/p2/audit", headers=bearer(b.manager)), 404, "property_not_found")
