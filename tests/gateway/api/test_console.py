"""The property manager console: its one JSON view over HTTP (roles, other properties, content as residents
accept agreement versions and the contract changes) and the web page the gateway serves for it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.clock import ManualClock
from tests.support.api import (
    AGREEMENT,
    Api,
    ApiFactory,
    accept,
    bearer,
    building,
    problem,
    publish,
    set_contract,
)

pytestmark = pytest.mark.parametrize("broker", ["embedded"], indirect=True)

LONG_SESSIONS = {"idle_timeout_seconds": 400 * 86400, "session_ttl_seconds": 400 * 86400}
SCRIPTS = ("api", "agreements", "credentials", "overview", "actions", "console")
ASSETS = {f"/console/{name}.js": "text/javascript" for name in SCRIPTS} | {"/console/console.css": "text/css"}


def residents_of(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every resident in the view by username, with their unit."""
    return {r["username"]: {**r, "unit_id": u["unit_id"]} for u in view["units"] for r in u["residents"]}


def at(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


async def test_console_shows_the_contract_and_who_accepted_which_version_when(
    clock: ManualClock, start_api: ApiFactory
) -> None:
    async with start_api(**LONG_SESSIONS) as api, building(api) as b:
        first = clock.now()  # alice and bob accepted in the building's set-up
        reads = 0

        async def view(token: str = b.manager) -> dict[str, Any]:
            nonlocal reads
            r = await api.http.get("/properties/p1/console", headers=bearer(token))
            assert r.status_code == 200, r.text
            reads += 1
            return dict(r.json())

        shown = await view()
        assert (shown["property_id"], shown["property_name"]) == ("p1", "Elm Court")
        assert at(shown["at"]) == first
        assert (shown["service_in_force"], shown["lapse"]) == (True, None)
        contract = shown["contract"]
        assert (contract["status"], contract["in_force"], contract["ends_at"]) == ("active", True, None)
        assert contract["internet"] == {"provided_by": "lessor", "name": "Elm Court Fibre", "contact": "+1 555 0100"}
        assert shown["current_version"] == AGREEMENT
        assert [u["unit_id"] for u in shown["units"]] == ["a", "b"]
        alice = residents_of(shown)["alice"]
        assert (alice["unit_id"], alice["display_name"], alice["status"]) == ("a", "Alice", "active")
        assert (alice["accepted_version"], at(alice["accepted_at"]), alice["up_to_date"]) == (AGREEMENT, first, True)
        assert alice["acceptances"] == [{"version": AGREEMENT, "accepted_at": shown["at"]}]  # no client details
        assert alice["arbitration_opt_out_at"] is None
        assert at(alice["opt_out_deadline"]) == first + timedelta(days=30)

        # alice opts out; carol moves in and has accepted nothing yet
        clock.advance(timedelta(days=2))
        r = await api.http.post("/me/agreement/arbitration-opt-out", headers=bearer(b.alice))
        assert r.status_code == 201, r.text
        await api.move_in(b.manager, "p1", "a", "carol")
        people = residents_of(await view())
        assert at(people["alice"]["arbitration_opt_out_at"]) == first + timedelta(days=2)
        carol = people["carol"]
        assert (carol["unit_id"], carol["accepted_version"], carol["accepted_at"], carol["up_to_date"]) == (
            "a",
            None,
            None,
            False,
        )
        assert (carol["acceptances"], carol["opt_out_deadline"]) == ([], None)

        # a new version in effect: nobody is up to date until they accept it; the history is kept
        clock.advance(timedelta(days=1))
        await publish(api, "2026-02")
        shown = await view()
        assert shown["current_version"] == "2026-02" and at(shown["current_effective_at"]) == clock.now()
        assert [p["up_to_date"] for p in residents_of(shown).values()] == [False, False, False]
        assert (await accept(api, b.alice, "2026-02")).status_code == 200
        people = residents_of(await view())
        alice = people["alice"]
        assert [(a["version"], at(a["accepted_at"])) for a in alice["acceptances"]] == [
            (AGREEMENT, first),
            ("2026-02", clock.now()),
        ]
        assert (alice["accepted_version"], alice["up_to_date"]) == ("2026-02", True)
        assert at(alice["arbitration_opt_out_at"]) == first + timedelta(days=2)  # carried over
        assert (people["bob"]["accepted_version"], people["bob"]["up_to_date"]) == (AGREEMENT, False)

        # the contract is suspended: the console says the service is not in force, and why
        await set_contract(api, status="suspended", status_reason="unpaid invoices")
        shown = await view()
        assert (shown["service_in_force"], shown["lapse"]) == (False, "suspended")
        assert shown["contract"]["status_reason"] == "unpaid invoices"

        # an audited read of residents' data, like every staff read of it
        audit = (await api.http.get("/operator/audit", headers=bearer(api.operator))).json()["entries"]
        entries = [e for e in audit if e["action"] == "property.read_console"]
        assert len(entries) == reads
        assert all(e["actor_role"] == "manager" and e["property_id"] == "p1" for e in entries)


async def test_console_is_for_the_property_manager_only(api: Api) -> None:
    async with building(api) as b:
        for token in (b.installer, b.alice, api.operator):
            problem(await api.http.get("/properties/p1/console", headers=bearer(token)), 403, "role_forbidden")
        problem(await api.http.get("/properties/p1/console"), 401, "unauthenticated")

        # another property's id answers exactly like one that does not exist
        r = await api.http.post("/properties", json={"id": "p2", "name": "Oak Row"}, headers=bearer(api.operator))
        assert r.status_code == 201, r.text
        for pid in ("p2", "nope"):
            problem(
                await api.http.get(f"/properties/{pid}/console", headers=bearer(b.manager)), 404, "property_not_found"
            )

        # p2's own manager sees that no contract is recorded yet
        other = await api.staff("oscar.manager", "manager", "p2")
        r = await api.http.get("/properties/p2/console", headers=bearer(other))
        assert r.status_code == 200, r.text
        shown = r.json()
        assert (shown["service_in_force"], shown["lapse"], shown["contract"], shown["units"]) == (
            False,
            "no_contract",
            None,
            [],
        )
        problem(await api.http.get("/properties/p1/console", headers=bearer(other)), 404, "property_not_found")


async def test_console_page_is_self_contained_and_calls_only_documented_endpoints(api: Api) -> None:
    async with (
        httpx.AsyncClient(base_url=api.service.url, timeout=10) as web,
    ):
        page = await web.get("/console")
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        html = page.text
        files = {}
        for path, media in ASSETS.items():
            r = await web.get(path)
            assert r.status_code == 200 and r.headers["content-type"].startswith(media), path
            files[path] = r
        js = "\n".join(r.text for path, r in files.items() if path.endswith(".js"))
        openapi = (await web.get("/openapi.json")).json()["paths"]

        # only its own script and style, from the gateway, and nothing inline
        for r in (page, *files.values()):
            csp = r.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
            assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"
        scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.DOTALL)
        assert scripts and all('src="/console/' in attrs and body.strip() == "" for attrs, body in scripts)
        assert "<style" not in html and not re.search(r"\son[a-z]+\s*=", html) and "style=" not in html
        assert set(re.findall(r'(?:src|href)="([^"]+)"', html)) == set(ASSETS)
        assert 'method="post"' in html  # without the script, the password is never put in a URL either

        # every API path the page calls exists in the OpenAPI document, with the method it uses
        called = set(re.findall(r'"(/api/v1/[^"]*)"', html + js))
        assert called == {
            "/api/v1/auth/console-session",
            "/api/v1/auth/console-session/resume",
            "/api/v1/properties",
            "/api/v1/properties/{property_id}/console",
            "/api/v1/properties/{property_id}/units",
            "/api/v1/properties/{property_id}/units/{unit_id}",
            "/api/v1/properties/{property_id}/health",
            "/api/v1/properties/{property_id}/compliance",
            "/api/v1/properties/{property_id}/outages",
            "/api/v1/properties/{property_id}/reports",
            "/api/v1/properties/{property_id}/stream",
            "/api/v1/properties/{property_id}/audit",
            "/api/v1/properties/{property_id}/devices/unbound",
            "/api/v1/properties/{property_id}/units/{unit_id}/devices",
            "/api/v1/properties/{property_id}/units/{unit_id}/devices/{device_id}",
            "/api/v1/properties/{property_id}/units/{unit_id}/residents",
            "/api/v1/properties/{property_id}/units/{unit_id}/residents/{account_id}/move-out",
            "/api/v1/properties/{property_id}/units/{unit_id}/residents/{account_id}/activation-code",
            "/api/v1/properties/{property_id}/notifications",
            "/api/v1/properties/{property_id}/units/{unit_id}/self-test",
            "/api/v1/properties/{property_id}/storms",
            "/api/v1/properties/{property_id}/storms/{storm_id}/end",
            "/api/v1/properties/{property_id}/broker-credentials",
            "/api/v1/properties/{property_id}/broker-credentials/{credential_id}",
            "/api/v1/operator/connectivity",
            "/api/v1/operator/reports",
            "/api/v1/operator/audit",
        }
        assert all(path in openapi for path in called), called - set(openapi)
        credentials = openapi["/api/v1/properties/{property_id}/broker-credentials"]
        assert {"get", "post"} <= set(credentials)
        assert "delete" in openapi["/api/v1/properties/{property_id}/broker-credentials/{credential_id}"]
        assert {"post", "delete"} <= set(openapi["/api/v1/auth/console-session"])
        assert not any(path.startswith("/console") for path in openapi)

        # the token stays in the page's memory: never in a URL, a cookie or browser storage; text is never HTML
        for leak in ("localStorage", "sessionStorage", "document.cookie", "?token", "innerHTML", "eval("):
            assert leak not in js, leak
        assert "Authorization" in js and 'credentials: "omit"' in js

        # home automation wording: never a security or alarm system
        text = (html + js).lower()
        assert "not a security or alarm system" in text
        for word in ("armed", "disarm", "intrusion", "burglar", "dispatch", "surveillance", "emergency"):
            assert word not in text, word

        assert (await web.get("/console/console.py")).status_code == 404
        assert (await web.get("/console/index.html")).status_code == 404
