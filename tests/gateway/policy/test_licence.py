"""The single-device licence, the minimum app version and the plan's limits, through the HTTP API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from gateway.clock import ManualClock
from tests.support.api import PASSWORD, Api, accept, bearer, building, problem, set_contract

pytestmark = pytest.mark.parametrize("broker", ["embedded"], indirect=True)


async def sign_in(api: Api, username: str, client: str, **extra: Any) -> httpx.Response:
    """POST /auth/login from an app device."""
    return await api.http.post(
        "/auth/login", json={"username": username, "password": PASSWORD, "client": client, **extra}
    )


async def works(api: Api, token: str) -> bool:
    """Whether the token still gets the resident's unit."""
    return (await api.http.get("/me/unit", headers=bearer(token))).status_code == 200


# --- one app device at a time ----------------------------------------------------------------------


async def test_second_app_device_is_refused_by_default_and_a_lost_phone_can_be_replaced(
    clock: ManualClock, api: Api
) -> None:
    async with building(api) as b:
        phone = b.alice  # signed in by the building's set-up
        phone_session = (await api.http.get("/me/sessions", headers=bearer(phone))).json()[0]["id"]
        body = problem(await sign_in(api, "alice", "tablet"), 409, "plan_limit_app_devices")
        assert body["limit"] == 1 and body["link"] == "plan"
        assert [s["id"] for s in body["sessions"]] == [phone_session]
        assert await works(api, phone)  # the refused sign-in changed nothing
        problem(
            await api.http.post("/auth/login", json={"username": "alice", "password": "wrong password!"}),
            401,
            "login_failed",
        )  # the password comes first: the session list is only shown to the account's owner

        # the phone is lost: sign in on the new one, ending the lost one's session in the same step
        r = await sign_in(api, "alice", "new phone", replace_session_id=phone_session)
        assert r.status_code == 200, r.text
        new_phone = r.json()["token"]
        problem(await api.http.get("/me/unit", headers=bearer(phone)), 401, "session_revoked")
        assert await works(api, new_phone)
        sessions = (await api.http.get("/me/sessions", headers=bearer(new_phone))).json()
        lost = next(s for s in sessions if s["id"] == phone_session)
        assert lost["revoked_reason"] == "reported lost"
        problem(await sign_in(api, "alice", "x", replace_session_id="nope"), 422, "session_not_found")
        audit = (await api.http.get("/operator/audit", headers=bearer(api.operator))).json()["entries"]
        assert any(e["action"] == "session.reported_lost" and e["target"] == phone_session for e in audit)

        # sessions that expired or were signed out do not count
        assert (await api.http.post("/auth/logout", headers=bearer(new_phone))).status_code == 204
        r = await sign_in(api, "alice", "tablet")
        assert r.status_code == 200, r.text
        clock.advance(timedelta(days=7))  # idle timeout
        r = await sign_in(api, "alice", "phone again")
        assert r.status_code == 200, r.text

        # staff are not app users: a manager may have the console open twice
        assert await api.login("maria.manager") and await api.login("maria.manager")


async def test_second_app_device_displaces_the_first_when_the_plan_says_so(api: Api) -> None:
    async with building(api) as b:
        await set_contract(api, plan={"second_login": "displace"})
        r = await sign_in(api, "alice", "tablet")
        assert r.status_code == 200, r.text
        tablet = r.json()["token"]
        body = problem(await api.http.get("/me/unit", headers=bearer(b.alice)), 401, "session_displaced")
        assert "another app device" in body["detail"]
        assert await works(api, tablet)
        live = [s for s in (await api.http.get("/me/sessions", headers=bearer(tablet))).json() if not s["revoked_at"]]
        assert [s["client"] for s in live] == ["tablet"]

        # a plan with two app devices: the third displaces the oldest only
        await set_contract(api, plan={"second_login": "displace", "app_devices_per_account": 2})
        phone = (await sign_in(api, "alice", "phone")).json()["token"]
        laptop = (await sign_in(api, "alice", "laptop")).json()["token"]
        problem(await api.http.get("/me/unit", headers=bearer(tablet)), 401, "session_displaced")
        assert await works(api, phone) and await works(api, laptop)


async def test_lowering_the_app_device_limit_ends_surplus_sessions_at_once_keeping_the_most_recently_used(
    clock: ManualClock, api: Api
) -> None:
    async with (
        building(api, {"app_devices_per_account": 3}) as b,
    ):
        phone = b.alice  # signed in first, by the building's set-up
        clock.advance(timedelta(minutes=2))
        tablet = (await sign_in(api, "alice", "tablet")).json()["token"]
        bob_tablet = (await sign_in(api, "bob", "tablet")).json()["token"]
        clock.advance(timedelta(minutes=2))
        laptop = (await sign_in(api, "alice", "laptop")).json()["token"]
        clock.advance(timedelta(minutes=2))
        assert await works(api, phone)  # the oldest sign-in, but now the most recently used
        console = await api.login("maria.manager")  # staff are not app users: no limit applies to them

        await set_contract(api, plan={"app_devices_per_account": 2})
        body = problem(await api.http.get("/me/unit", headers=bearer(tablet)), 401, "session_displaced")
        assert "plan now allows fewer app devices" in body["detail"]
        assert await works(api, laptop) and await works(api, phone)
        # bob has two, within the new limit (seen by the operator: using them would change which is more recent)
        bobs = (await api.http.get(f"/operator/accounts/{b.bob_id}/sessions", headers=bearer(api.operator))).json()
        assert [s["revoked_at"] for s in bobs] == [None, None]
        clock.advance(timedelta(minutes=2))
        assert await works(api, phone)  # alice's most recently used again

        await set_contract(api, plan={"app_devices_per_account": 1})
        problem(await api.http.get("/me/unit", headers=bearer(laptop)), 401, "session_displaced")
        problem(await api.http.get("/me/unit", headers=bearer(b.bob)), 401, "session_displaced")  # used least lately
        assert await works(api, phone) and await works(api, bob_tablet)
        for manager in (b.manager, console):
            assert (await api.http.get("/properties/p1/units", headers=bearer(manager))).status_code == 200
        sessions = (await api.http.get("/me/sessions", headers=bearer(phone))).json()
        assert {s["client"]: s["revoked_reason"] for s in sessions} == {
            None: None,
            "tablet": "plan limit lowered",
            "laptop": "plan limit lowered",
        }

        # audited, one entry per ended session; recording the same limit again ends nothing more
        await set_contract(api, plan={"app_devices_per_account": 1})
        audit = (await api.http.get("/operator/audit", headers=bearer(api.operator))).json()["entries"]
        ended = [e for e in audit if e["action"] == "session.ended_by_plan"]
        assert sorted(e["unit_id"] for e in ended) == ["a", "a", "b"]
        assert all(e["actor_role"] == "operator" and e["property_id"] == "p1" for e in ended)
        assert await works(api, phone) and await works(api, bob_tablet)


async def test_resident_lists_ends_and_reports_own_sessions(api: Api) -> None:
    async with (
        building(api, {"app_devices_per_account": 3}) as b,
    ):
        tablet = (await sign_in(api, "alice", "tablet")).json()["token"]
        watch = (await sign_in(api, "alice", "watch")).json()["token"]
        sessions = {s["client"]: s["id"] for s in (await api.http.get("/me/sessions", headers=bearer(tablet))).json()}
        assert set(sessions) == {None, "tablet", "watch"}

        r = await api.http.post(f"/me/sessions/{sessions['watch']}/lost", headers=bearer(tablet))
        assert r.status_code == 200 and r.json()["revoked_reason"] == "reported lost", r.text
        problem(await api.http.get("/me/unit", headers=bearer(watch)), 401, "session_revoked")
        r = await api.http.delete(f"/me/sessions/{sessions[None]}", headers=bearer(tablet))
        assert r.status_code == 204, r.text
        problem(await api.http.get("/me/unit", headers=bearer(b.alice)), 401, "session_revoked")
        assert await works(api, tablet)
        # ended sessions cannot be ended again, and another account's sessions are not found
        problem(
            await api.http.delete(f"/me/sessions/{sessions['watch']}", headers=bearer(tablet)), 404, "session_not_found"
        )
        bobs = (await api.http.get("/me/sessions", headers=bearer(b.bob))).json()[0]["id"]
        problem(await api.http.post(f"/me/sessions/{bobs}/lost", headers=bearer(tablet)), 404, "session_not_found")
        assert await works(api, b.bob)


# --- app updates -------------------------------------------------------------------------------------


async def test_minimum_app_version(api: Api) -> None:
    async with building(api) as b:
        assert (await api.http.get("/app/requirements")).json() == {"minimum_app_version": None}
        assert await works(api, b.alice)  # no minimum: no version needed
        op = bearer(api.operator)
        r = await api.http.put("/operator/app-version", json={"minimum_app_version": "2.10"}, headers=op)
        assert r.status_code == 200, r.text
        assert (await api.http.get("/app/requirements")).json() == {"minimum_app_version": "2.10"}

        def app(version: str) -> dict[str, str]:
            return {**bearer(b.alice), "X-App-Version": version}

        body = problem(await api.http.get("/me/devices", headers=app("2.9.9")), 403, "app_update_required")
        assert body["minimum_version"] == "2.10" and body["your_version"] == "2.9.9"
        body = problem(await api.http.get("/me/unit", headers=bearer(b.alice)), 403, "app_update_required")
        assert body["your_version"] is None  # an app too old to say its version
        for ok in ("2.10", "2.10.0", "2.11", "10"):
            assert (await api.http.get("/me/devices", headers=app(ok))).status_code == 200, ok
        assert problem(await api.http.get("/me/unit", headers=app("2.x")), 422, "app_version_invalid")["field"]
        r = await api.http.post(
            "/auth/login",
            json={"username": "bob", "password": PASSWORD},
            headers={"X-App-Version": "1.0"},
        )
        problem(r, 403, "app_update_required")
        # staff consoles are not the resident app; signing out always works
        assert (await api.http.get("/properties/p1/units", headers=bearer(b.manager))).status_code == 200
        assert (await api.http.post("/auth/logout", headers=bearer(b.bob))).status_code == 204
        problem(
            await api.http.put("/operator/app-version", json={"minimum_app_version": "1"}, headers=bearer(b.manager)),
            403,
            "role_forbidden",
        )
        r = await api.http.put("/operator/app-version", json={"minimum_app_version": "two"}, headers=op)
        problem(r, 422, "validation_failed")


# --- the plan's limits on bindings and residents -----------------------------------------------------


async def test_plan_limits_on_binding_and_move_in(api: Api) -> None:
    async with building(api) as b:
        pm = bearer(b.manager)
        installer = bearer(b.installer)
        # five devices are bound to unit a; a plan of four refuses a fifth after one leaves
        await set_contract(api, plan={"devices_per_unit": 4})
        r = await api.http.delete("/properties/p1/units/a/devices/fwsim-u101-leak", headers=installer)
        assert r.status_code == 204, r.text
        r = await api.http.post(
            "/properties/p1/units/a/devices", json={"device_id": "fwsim-u101-leak"}, headers=installer
        )
        assert problem(r, 409, "plan_limit_devices_per_unit")["limit"] == 4
        unbound = (await api.http.get("/properties/p1/devices/unbound", headers=pm)).json()
        assert [d["id"] for d in unbound] == ["fwsim-u101-leak"]

        # a plan without locks refuses binding a lock (its battery sensor does not make it a sensor)
        await set_contract(api, plan={"device_kinds": ["light", "thermostat", "leak_sensor", "battery_sensor"]})
        r = await api.http.delete("/properties/p1/units/b/devices/fwsim-u102-lock", headers=installer)
        assert r.status_code == 204
        r = await api.http.post(
            "/properties/p1/units/b/devices", json={"device_id": "fwsim-u102-lock"}, headers=installer
        )
        body = problem(r, 409, "plan_limit_device_kinds")
        assert body["kind"] == "lock" and "lock" not in body["allowed"]
        r = await api.http.post(
            "/properties/p1/units/a/devices", json={"device_id": "fwsim-u101-leak"}, headers=installer
        )
        assert r.status_code == 201, r.text

        # resident accounts per unit (pending ones count: their codes are out)
        await set_contract(api, plan={"accounts_per_unit": 2})
        r = await api.http.post("/properties/p1/units/a/residents", json={"username": "carol"}, headers=pm)
        assert r.status_code == 201, r.text
        r = await api.http.post("/properties/p1/units/a/residents", json={"username": "dave"}, headers=pm)
        assert problem(r, 409, "plan_limit_accounts_per_unit")["limit"] == 2
        carol_id = (await api.http.get("/properties/p1/units/a/residents", headers=pm)).json()
        carol = next(a["id"] for a in carol_id if a["username"] == "carol")
        r = await api.http.post(
            f"/properties/p1/units/a/residents/{carol}/move-out", json={"reason": "never came"}, headers=pm
        )
        assert r.status_code == 200, r.text
        r = await api.http.post("/properties/p1/units/a/residents", json={"username": "dave"}, headers=pm)
        assert r.status_code == 201, r.text

        # a property without a contract: nothing is bound and nobody moves in until the operator records one
        op = bearer(api.operator)
        assert (await api.http.post("/properties", json={"id": "p2", "name": "Oak"}, headers=op)).status_code == 201
        manager2 = await api.staff("mo.manager", "manager", "p2")
        r = await api.http.post("/properties/p2/units", json={"label": "1", "id": "c"}, headers=bearer(manager2))
        assert r.status_code == 201
        r = await api.http.post("/properties/p2/units/c/residents", json={"username": "erin"}, headers=bearer(manager2))
        problem(r, 409, "lessor_contract_missing")
        problem(await api.http.get("/properties/p2/contract", headers=bearer(manager2)), 404, "contract_not_found")
        # the console shows the contract to staff of the property only
        r = await api.http.get("/properties/p1/contract", headers=installer)
        assert r.status_code == 200 and r.json()["plan"]["accounts_per_unit"] == 2, r.text
        problem(await api.http.get("/properties/p1/contract", headers=bearer(manager2)), 404, "property_not_found")
        problem(await api.http.get("/properties/p1/contract", headers=bearer(b.alice)), 403, "role_forbidden")


async def test_contract_validation_and_audit(clock: ManualClock, api: Api) -> None:
    async with building(api) as b:
        op = bearer(api.operator)
        start = clock.now().isoformat()
        for body, code in (
            ({"starts_at": start, "ends_at": start, "internet": {"provided_by": "lessor"}}, "contract_dates_invalid"),
            ({"starts_at": "2026-01-01T00:00:00", "internet": {"provided_by": "lessor"}}, "validation_failed"),
            ({"starts_at": start, "internet": {"provided_by": "landlord"}}, "validation_failed"),
            (
                {"starts_at": start, "internet": {"provided_by": "lessor"}, "plan": {"app_devices_per_account": 0}},
                "validation_failed",
            ),
            (
                {"starts_at": start, "internet": {"provided_by": "lessor"}, "plan": {"device_kinds": ["toaster"]}},
                "validation_failed",
            ),
        ):
            problem(await api.http.put("/operator/properties/p1/contract", json=body, headers=op), 422, code)
        body = {
            "starts_at": start,
            "internet": {"provided_by": "resident", "name": "CityNet", "contact": "help@citynet.example"},
        }
        problem(
            await api.http.put("/operator/properties/nope/contract", json=body, headers=op), 404, "property_not_found"
        )
        problem(
            await api.http.put("/operator/properties/p1/contract", json=body, headers=bearer(b.manager)),
            403,
            "role_forbidden",
        )
        r = await api.http.put("/operator/properties/p1/contract", json=body, headers=op)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["internet"]["provided_by"] == "resident" and out["plan"]["app_devices_per_account"] == 1
        assert out["plan"]["second_login"] == "refuse"
        audit = (await api.http.get("/operator/audit", headers=op)).json()["entries"]
        change = next(e for e in audit if e["action"] == "contract.set")
        assert change["detail"]["internet"]["name"] == "CityNet"
        assert (await accept(api, b.alice)).status_code == 200  # accepting again changes nothing
        record = (await api.http.get(f"/operator/accounts/{b.alice_id}/agreement", headers=op)).json()
        assert len(record["acceptances"]) == 1
