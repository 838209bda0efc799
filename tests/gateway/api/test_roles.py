"""Who may do what through the API, how units are kept apart, the shape of every error, and the staff audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from devices import LockStatus
from tests.support.api import DEVICES, Api, bearer, building
from tests.support.polling import until

pytestmark = pytest.mark.parametrize("broker", ["embedded"], indirect=True)

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


def problem_errors(r: httpx.Response) -> list[str]:
    """What is wrong with an error response's problem+json shape (empty when it is right)."""
    wrong: list[str] = []
    if r.headers.get("content-type") != "application/problem+json":
        wrong.append(f"content-type {r.headers.get('content-type')!r}")
    try:
        body = r.json()
    except ValueError:
        return [*wrong, f"body is not JSON: {r.text[:200]!r}"]
    if not isinstance(body, dict):
        return [*wrong, f"body is not an object: {body!r}"]
    if missing := PROBLEM_KEYS - body.keys():
        wrong.append(f"missing keys {sorted(missing)}")
    if body.get("status") != r.status_code:
        wrong.append(f"status member {body.get('status')!r} != HTTP {r.status_code}")
    if not isinstance(body.get("code"), str) or body.get("type") != f"urn:aptgateway:problem:{body.get('code')}":
        wrong.append(f"type {body.get('type')!r} does not match code {body.get('code')!r}")
    return wrong


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert ``r`` is a well-formed problem with this status and code; return its body."""
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    assert not problem_errors(r), (problem_errors(r), r.text)
    body: dict[str, Any] = r.json()
    assert body["code"] == code, r.text
    return body


# One row: who, method, path, JSON body, expected status, expected problem code (None for success).
Row = tuple[str, str, str, dict[str, Any] | None, int, str | None]


async def test_role_matrix(api: Api) -> None:
    async with building(api) as b:
        r = await api.http.post("/properties", json={"id": "p2", "name": "Oak Yard"}, headers=bearer(api.operator))
        assert r.status_code == 201, r.text
        manager2 = await api.staff("mia.manager", "manager", "p2")
        tokens = {
            "resident": b.alice,
            "installer": b.installer,
            "manager": b.manager,
            "operator": api.operator,
            "manager2": manager2,
        }
        a_light = b.entity("a", "light", "light")
        alice_out = f"/properties/p1/units/a/residents/{b.alice_id}/move-out"
        forbidden = 403, "role_forbidden"
        leak = {"device_id": "fwsim-u101-leak"}
        table: list[Row] = [
            # resident: only /me
            ("resident", "GET", "/me/unit", None, 200, None),
            ("resident", "GET", "/me/devices", None, 200, None),
            ("resident", "GET", "/properties", None, 200, None),
            ("resident", "GET", "/properties/p1/units", None, *forbidden),
            ("resident", "GET", "/properties/nope/units", None, *forbidden),  # role before id: no 404 leak
            ("resident", "GET", "/properties/p1/units/a", None, *forbidden),
            ("resident", "POST", "/properties/p1/units", {"label": "x9"}, *forbidden),
            ("resident", "GET", "/properties/p1/health", None, *forbidden),
            ("resident", "GET", "/properties/p1/devices/unbound", None, *forbidden),
            ("resident", "POST", "/properties/p1/units/a/residents", {"username": "eve"}, *forbidden),
            ("resident", "DELETE", "/properties/p1/units/a/devices/fwsim-u101-light", None, *forbidden),
            ("resident", "POST", "/properties", {"id": "p9", "name": "x"}, *forbidden),
            ("resident", "GET", "/operator/accounts", None, *forbidden),
            ("resident", "GET", "/operator/audit", None, *forbidden),
            ("resident", "POST", "/operator/accounts", {"username": "eve", "role": "operator"}, *forbidden),
            ("resident", "POST", f"/operator/accounts/{b.bob_id}/disable", {"reason": "x"}, *forbidden),
            # installer: units, devices, health; never residents
            ("installer", "GET", "/properties", None, 200, None),
            ("installer", "GET", "/properties/p1/units", None, 200, None),
            ("installer", "GET", "/properties/p1/units/a", None, 200, None),
            ("installer", "GET", "/properties/p1/health", None, 200, None),
            ("installer", "GET", "/properties/p1/units/a/residents", None, *forbidden),
            ("installer", "POST", "/properties/p1/units/a/residents", {"username": "eve"}, *forbidden),
            ("installer", "POST", alice_out, {"reason": "x"}, *forbidden),
            ("installer", "POST", "/properties/p1/units", {"label": "x9"}, *forbidden),
            ("installer", "DELETE", "/properties/p1/units/a/devices/fwsim-u101-leak", None, 204, None),
            ("installer", "GET", "/properties/p1/devices/unbound", None, 200, None),
            # another property's manager cannot take p1's unbound device into p1's unit
            ("manager2", "POST", "/properties/p1/units/a/devices", leak, 404, "property_not_found"),
            ("manager2", "POST", "/properties/p2/units/a/devices", leak, 404, "unit_not_found"),
            ("installer", "POST", "/properties/p1/units/a/devices", leak, 201, None),
            ("installer", "POST", "/properties/p1/units/b/devices", leak, 409, "device_already_bound"),
            ("installer", "GET", "/me/devices", None, *forbidden),
            ("installer", "POST", f"/me/entities/{a_light}/commands", {"command": {"on": True}}, *forbidden),
            ("installer", "GET", "/operator/audit", None, *forbidden),
            # manager: units, residents, bindings
            ("manager", "GET", "/properties/p1/units", None, 200, None),
            ("manager", "POST", "/properties/p1/units", {"label": "u103", "id": "c"}, 201, None),
            ("manager", "GET", "/properties/p1/units/a/residents", None, 200, None),
            ("manager", "POST", "/properties/p1/units/a/residents", {"username": "carol"}, 201, None),
            ("manager", "DELETE", "/properties/p1/units/b/devices/fwsim-u102-leak", None, 204, None),
            ("manager", "POST", "/properties/p1/units/b/devices", {"device_id": "fwsim-u102-leak"}, 201, None),
            ("manager", "GET", "/me/devices", None, *forbidden),
            ("manager", "GET", "/me/events", None, *forbidden),
            ("manager", "POST", "/properties", {"id": "p9", "name": "x"}, *forbidden),
            ("manager", "GET", "/operator/accounts", None, *forbidden),
            ("manager", "POST", f"/operator/accounts/{b.alice_id}/disable", {"reason": "x"}, *forbidden),
            # operator: accounts and audit; not a resident, not staff of a property
            ("operator", "GET", "/me/devices", None, *forbidden),
            ("operator", "GET", "/me/unit", None, *forbidden),
            ("operator", "POST", f"/me/entities/{a_light}/commands", {"command": {"on": True}}, *forbidden),
            ("operator", "POST", "/properties/p1/units", {"label": "x9"}, *forbidden),
            ("operator", "GET", "/properties/p1/units", None, *forbidden),
            ("operator", "POST", "/properties/p1/units/a/residents", {"username": "eve"}, *forbidden),
            ("operator", "DELETE", "/properties/p1/units/a/devices/fwsim-u101-light", None, *forbidden),
            ("operator", "GET", "/properties", None, 200, None),
            ("operator", "GET", "/operator/accounts", None, 200, None),
            ("operator", "GET", "/operator/audit", None, 200, None),
            # a manager of p2 sees nothing of p1: the same 404 as for ids that do not exist
            ("manager2", "GET", "/properties/p1/units", None, 404, "property_not_found"),
            ("manager2", "GET", "/properties/nope/units", None, 404, "property_not_found"),
            ("manager2", "GET", "/properties/p1/units/a", None, 404, "property_not_found"),
            ("manager2", "GET", "/properties/p1/units/a/residents", None, 404, "property_not_found"),
            ("manager2", "POST", "/properties/p1/units/a/residents", {"username": "eve"}, 404, "property_not_found"),
            ("manager2", "POST", alice_out, {"reason": "x"}, 404, "property_not_found"),
            ("manager2", "POST", "/properties/p1/units", {"label": "x9"}, 404, "property_not_found"),
            ("manager2", "DELETE", "/properties/p1/units/a/devices/fwsim-u101-light", None, 404, "property_not_found"),
            ("manager2", "GET", "/properties/p1/health", None, 404, "property_not_found"),
            ("manager2", "GET", "/properties/p1/devices/unbound", None, 404, "property_not_found"),
            ("manager2", "GET", "/properties/p2/units/a", None, 404, "unit_not_found"),
            ("manager2", "GET", "/properties/p2/units/nope", None, 404, "unit_not_found"),
            ("manager2", "POST", "/properties/p2/units/a/residents", {"username": "eve"}, 404, "unit_not_found"),
            ("manager2", "DELETE", "/properties/p2/units/a/devices/fwsim-u101-light", None, 404, "unit_not_found"),
            ("manager2", "GET", "/properties/p2/units", None, 200, None),
            ("installer", "GET", "/properties/p2/units", None, 404, "property_not_found"),
        ]
        mismatches: list[str] = []
        for who, method, path, body, status, code in table:
            r = await api.http.request(method, path, json=body, headers=bearer(tokens[who]))
            label = f"{who} {method} {path}"
            got_code = r.json().get("code") if r.status_code >= 400 and r.content else None
            if (r.status_code, got_code) != (status, code):
                mismatches.append(f"{label}: expected {status} {code}, got {r.status_code} {r.text[:200]}")
            elif r.status_code >= 400 and (wrong := problem_errors(r)):
                mismatches.append(f"{label}: bad problem: {wrong}")
        assert not mismatches, "\n".join(mismatches)

        # what the allowed calls showed, and that the forbidden ones changed nothing
        r = await api.http.get("/properties", headers=bearer(b.alice))
        assert r.json() == []
        r = await api.http.get("/properties", headers=bearer(manager2))
        assert [p["id"] for p in r.json()] == ["p2"]
        r = await api.http.get("/properties", headers=bearer(api.operator))
        assert [p["id"] for p in r.json()] == ["p1", "p2"]
        r = await api.http.get("/properties/p1/units/a", headers=bearer(b.installer))
        assert r.json()["residents"] is None
        assert {d["id"] for d in r.json()["devices"]} == {f"fwsim-u101-{n}" for n in DEVICES}
        r = await api.http.get("/properties/p1/units/a", headers=bearer(b.manager))
        assert {a["username"] for a in r.json()["residents"]} == {"alice", "carol"}
        r = await api.http.get("/properties/p1/units", headers=bearer(b.manager))
        assert {u["id"] for u in r.json()} == {"a", "b", "c"}
        r = await api.http.get("/me/unit", headers=bearer(b.alice))
        assert r.status_code == 200 and r.json()["id"] == "a"
        r = await api.http.get("/me/unit", headers=bearer(b.bob))
        assert r.status_code == 200 and r.json()["id"] == "b"
        r = await api.http.get("/operator/accounts", params={"role": "resident"}, headers=bearer(api.operator))
        statuses = {a["username"]: a["status"] for a in r.json()}
        assert statuses == {"alice": "active", "bob": "active", "carol": "pending"}
        r = await api.http.get("/me/devices", headers=bearer(b.bob))
        assert {d["id"] for d in r.json()} == {f"fwsim-u102-{n}" for n in DEVICES}
        r = await api.http.get("/properties/p1/devices/unbound", headers=bearer(b.installer))
        assert not {d["id"] for d in r.json()} & {f"fwsim-u10{i}-{n}" for i in (1, 2) for n in DEVICES}
        assert b.sims["a"].light.state.on is not True  # nobody but a resident may command


def _same_answer(mine: httpx.Response, unknown: httpx.Response, status: int, code: str) -> None:
    """Another unit's id and a made-up id must be indistinguishable (apart from the id echoed in the text)."""
    a = problem(mine, status, code)
    u = problem(unknown, status, code)
    assert a.keys() == u.keys()
    assert {k: v for k, v in a.items() if k not in ("detail", "instance")} == {
        k: v for k, v in u.items() if k not in ("detail", "instance")
    }


async def test_units_are_isolated(api: Api) -> None:
    async with building(api) as b:
        alice, bob = bearer(b.alice), bearer(b.bob)
        lock = b.entity("a", "lock", "lock")
        r = await api.http.post(f"/me/entities/{lock}/commands", json={"command": {"action": "unlock"}}, headers=alice)
        assert r.status_code == 200, r.text
        alice_command = r.json()["id"]
        assert b.sims["a"].lock.state.status is LockStatus.UNLOCKED
        r = await api.http.post(
            f"/me/entities/{b.entity('b', 'light', 'light')}/commands", json={"command": {"on": True}}, headers=bob
        )
        assert r.status_code == 200, r.text
        bob_command = r.json()["id"]

        # devices
        for name in DEVICES:
            mine = await api.http.get(f"/me/devices/fwsim-u101-{name}", headers=bob)
            unknown = await api.http.get(f"/me/devices/fwsim-u999-{name}", headers=bob)
            _same_answer(mine, unknown, 404, "device_not_found")
            r = await api.http.get(f"/me/devices/fwsim-u101-{name}", headers=alice)
            assert r.status_code == 200, r.text
        r = await api.http.get("/me/devices", headers=bob)
        assert {d["id"] for d in r.json()} == {f"fwsim-u102-{n}" for n in DEVICES}
        assert all(e["id"].split(".")[1].startswith("u102-") for d in r.json() for e in d["entities"])

        # naming her device
        mine = await api.http.put("/me/devices/fwsim-u101-lock/name", json={"name": "Bob's now"}, headers=bob)
        unknown = await api.http.put("/me/devices/fwsim-u999-lock/name", json={"name": "Bob's now"}, headers=bob)
        _same_answer(mine, unknown, 404, "device_not_found")
        r = await api.http.get("/me/devices/fwsim-u101-lock", headers=alice)
        assert r.json()["resident_name"] is None

        # her entities
        for entity in (
            lock,
            b.entity("a", "light", "light"),
            b.entity("a", "thermostat", "climate"),
            b.entity("a", "lock", "sensor", "battery"),
        ):
            mine = await api.http.post(
                f"/me/entities/{entity}/commands", json={"command": {"action": "lock"}}, headers=bob
            )
            unknown = await api.http.post(
                f"/me/entities/{entity.replace('u101', 'u999')}/commands",
                json={"command": {"action": "lock"}},
                headers=bob,
            )
            _same_answer(mine, unknown, 404, "entity_not_found")
        mine = await api.http.post(
            f"/me/entities/{lock}/commands", json={"command": {"action": "lock"}, "wait": False}, headers=bob
        )
        problem(mine, 404, "entity_not_found")
        assert b.sims["a"].lock.state.status is LockStatus.UNLOCKED  # still as alice left it

        # her command
        mine = await api.http.get(f"/me/commands/{alice_command}", headers=bob)
        unknown = await api.http.get(f"/me/commands/{'0' * 32}", headers=bob)
        _same_answer(mine, unknown, 404, "command_not_found")
        r = await api.http.get(f"/me/commands/{alice_command}", headers=alice)
        assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text
        r = await api.http.get(f"/me/commands/{bob_command}", headers=alice)
        problem(r, 404, "command_not_found")
        r = await api.http.get(f"/me/commands/{bob_command}", headers=bob)
        assert r.status_code == 200, r.text

        # events: each sees only their own unit's
        async def has_command_event(token: str, unit: str) -> bool:
            r = await api.http.get("/me/events", params={"limit": 200}, headers=bearer(token))
            return any(e["type"] == "command" and f".{unit}-" in (e["entity_id"] or "") for e in r.json()["events"])

        await until(lambda: has_command_event(b.alice, "u101"), what="alice's command event")
        await until(lambda: has_command_event(b.bob, "u102"), what="bob's command event")
        for token, own, other in ((b.bob, "u102", "u101"), (b.alice, "u101", "u102")):
            r = await api.http.get("/me/events", params={"limit": 200}, headers=bearer(token))
            events = r.json()["events"]
            assert events
            assert all(e["entity_id"] is None or f".{own}-" in e["entity_id"] for e in events), events
            assert other not in r.text
            assert b.alice_id not in r.text and b.bob_id not in r.text  # actors are "you" / "someone else"


async def test_problem_shapes(api: Api) -> None:
    op = bearer(api.operator)

    # 401: no token, a made-up token; both say how to authenticate
    r = await api.http.get("/me")
    problem(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = await api.http.get("/me", headers=bearer("not-a-token"))
    problem(r, 401, "token_invalid")
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = await api.http.get("/me", headers={"Authorization": "Basic Zm9vOmJhcg=="})
    problem(r, 401, "unauthenticated")
    assert "www-authenticate" in r.headers

    # 422: malformed JSON, an unknown field, a wrong type, a missing field
    r = await api.http.post(
        "/auth/login", content=b'{"username": "x", "password":', headers={"content-type": "application/json"}
    )
    assert "field" not in problem(r, 422, "body_invalid_json")
    r = await api.http.post("/properties", json={"id": "p3", "name": "x", "owner": "me"}, headers=op)
    assert problem(r, 422, "validation_failed")["field"] == "owner"
    r = await api.http.post("/properties", json={"id": 3, "name": "x"}, headers=op)
    assert problem(r, 422, "validation_failed")["field"] == "id"
    r = await api.http.post("/auth/login", json={"username": "x", "password": ["a"]})
    assert problem(r, 422, "validation_failed")["field"] == "password"
    r = await api.http.post("/properties", json={"name": "x"}, headers=op)
    assert problem(r, 422, "validation_failed")["field"] == "id"
    r = await api.http.post("/operator/accounts", json={"username": "someone", "role": "resident"}, headers=op)
    assert problem(r, 422, "validation_failed")["field"] == "role"
    r = await api.http.get("/operator/audit", params={"limit": "many"}, headers=op)
    assert problem(r, 422, "validation_failed")["field"] == "query.limit"
    r = await api.http.get("/properties", headers=op)
    assert r.json() == []  # none of the refused requests created anything

    # 413: declared length over the limit, and a streamed body without a length
    big = b'{"username": "' + b"x" * 17_000 + b'", "password": "y"}'
    r = await api.http.post("/auth/login", content=big, headers={"content-type": "application/json"})
    problem(r, 413, "body_too_large")
    r = await api.http.post("/properties", content=big, headers={**op, "content-type": "application/json"})
    problem(r, 413, "body_too_large")

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"username": "'
        for _ in range(20):
            yield b"x" * 1024
        yield b'", "password": "y"}'

    r = await api.http.post("/auth/login", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    assert r.request.headers["transfer-encoding"] == "chunked"
    problem(r, 413, "body_too_large")

    async def small() -> AsyncIterator[bytes]:
        yield b'{"username": "nobody", '
        yield b'"password": "wrong"}'

    r = await api.http.post("/auth/login", content=small(), headers={"content-type": "application/json"})
    problem(r, 401, "login_failed")  # a streamed body under the limit is read as usual

    # unknown paths and methods
    r = await api.http.get("/no/such/thing", headers=op)
    problem(r, 404, "not_found")
    r = await api.http.get(api.service.url + "/nowhere")
    problem(r, 404, "not_found")
    r = await api.http.delete("/auth/login")
    problem(r, 405, "method_not_allowed")
    assert "POST" in r.headers.get("allow", "")
    r = await api.http.put("/operator/audit", json={}, headers=op)
    problem(r, 405, "method_not_allowed")


async def test_staff_actions_are_audited(api: Api) -> None:
    async with building(api) as b:
        op = bearer(api.operator)
        ids: dict[str, str] = {}
        for role, token in (("manager", b.manager), ("installer", b.installer), ("operator", api.operator)):
            r = await api.http.get("/me", headers=bearer(token))
            ids[role] = r.json()["id"]
        r = await api.http.get("/operator/audit", params={"limit": 1}, headers=op)
        mark = r.json()["entries"][0]["id"]

        # staff actions
        r = await api.http.get("/properties/p1/units/a", headers=bearer(b.manager))
        assert [a["id"] for a in r.json()["residents"]] == [b.alice_id]
        r = await api.http.get("/properties/p1/units/a", headers=bearer(b.installer))  # no residents: not audited
        assert r.json()["residents"] is None
        r = await api.http.get("/properties/p1/units/b/residents", headers=bearer(b.manager))
        assert [a["id"] for a in r.json()] == [b.bob_id]
        r = await api.http.post(
            "/properties/p1/units/a/residents", json={"username": "carol"}, headers=bearer(b.manager)
        )
        assert r.status_code == 201, r.text
        carol_id = r.json()["account"]["id"]
        r = await api.http.delete("/properties/p1/units/a/devices/fwsim-u101-leak", headers=bearer(b.installer))
        assert r.status_code == 204, r.text
        r = await api.http.post(
            "/properties/p1/units/b/devices", json={"device_id": "fwsim-u101-leak"}, headers=bearer(b.manager)
        )
        assert r.status_code == 201, r.text
        r = await api.http.post(f"/operator/accounts/{b.bob_id}/disable", json={"reason": "unpaid"}, headers=op)
        assert r.status_code == 200 and r.json()["status"] == "suspended", r.text

        # a resident's own actions, and refused attempts, are not staff audit
        alice = bearer(b.alice)
        r = await api.http.put("/me/devices/fwsim-u101-light/name", json={"name": "Hall"}, headers=alice)
        assert r.status_code == 200, r.text
        r = await api.http.post(
            f"/me/entities/{b.entity('a', 'light', 'light')}/commands", json={"command": {"on": True}}, headers=alice
        )
        assert r.status_code == 200, r.text
        r = await api.http.get("/me/devices", headers=alice)
        assert r.status_code == 200
        r = await api.http.get("/properties/p1/units/a/residents", headers=alice)
        problem(r, 403, "role_forbidden")

        r = await api.http.get("/operator/audit", params={"limit": 500}, headers=op)
        assert r.status_code == 200, r.text
        entries = [e for e in r.json()["entries"] if e["id"] > mark]
        got = [(e["action"], e["actor_id"], e["actor_role"], e["unit_id"], e["target"]) for e in reversed(entries)]
        assert got == [
            ("unit.read_residents", ids["manager"], "manager", "a", None),
            ("unit.read_residents", ids["manager"], "manager", "b", None),
            ("resident.move_in", ids["manager"], "manager", "a", carol_id),
            ("device.unbind", ids["installer"], "installer", "a", "fwsim-u101-leak"),
            ("device.bind", ids["manager"], "manager", "b", "fwsim-u101-leak"),
            ("account.disable", ids["operator"], "operator", "b", b.bob_id),
        ], got
        assert all(e["property_id"] == "p1" for e in entries)
        assert entries[0]["detail"] == {"reason": "unpaid"}
        assert [e["id"] for e in r.json()["entries"]] == sorted((e["id"] for e in r.json()["entries"]), reverse=True)
        assert not [e for e in r.json()["entries"] if e["actor_role"] == "resident" or e["actor_id"] == b.alice_id]
        # the setup's own staff actions are there too, by the right people
        actions = {(e["action"], e["actor_id"]) for e in r.json()["entries"] if e["id"] <= mark}
        assert ("device.bind", ids["installer"]) in actions
        assert ("resident.move_in", ids["manager"]) in actions
        assert ("unit.create", ids["manager"]) in actions
        assert ("property.create", ids["operator"]) in actions

        # filtered by property, and paged
        r = await api.http.get("/operator/audit", params={"property_id": "p1", "limit": 2}, headers=op)
        page = r.json()
        assert [e["action"] for e in page["entries"]] == ["account.disable", "device.bind"]
        assert page["next_before"] == page["entries"][-1]["id"]
        r = await api.http.get(
            "/operator/audit", params={"property_id": "p1", "limit": 2, "before": page["next_before"]}, headers=op
        )
        assert [e["action"] for e in r.json()["entries"]] == ["device.unbind", "resident.move_in"]
        r = await api.http.get("/operator/audit", params={"property_id": "p9"}, headers=op)
        assert r.json() == {"entries": [], "next_before": None}
