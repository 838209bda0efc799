"""Who starts a self-test, and when one is owed, through the real interfaces: the property manager (audited), the
automatic test of an idle unit only, and a test due at once after the gateway lost power."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.clock import ManualClock
from tests.support.api import Api, bearer, command, problem, running_api, set_contract
from tests.support.brokers import BrokerHandle
from tests.support.checks import (
    EMBEDDED,
    LONG_SESSIONS,
    checked_building,
    checks_settings,
    crash_gateway,
    my_status,
    outages,
    self_test,
)
from tests.support.gateway import GatewayFactory

SECOND = timedelta(seconds=1)


async def history(api: Api, token: str) -> list[dict[str, Any]]:
    """The resident's unit's self-tests, newest first."""
    r = await api.http.get("/me/self-tests", headers=bearer(token))
    assert r.status_code == 200, r.text
    return list(r.json())


@EMBEDDED
async def test_the_manager_tests_a_unit_audited_and_only_while_the_service_exists(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    async with checked_building(make_gateway, broker, prefix, clock, None, automatic=False) as b:
        api = b.api
        r = await api.http.post("/properties/p1/units/a/self-test", headers=bearer(b.manager))
        assert r.status_code == 200, r.text
        result = r.json()
        assert result["passed"] is True and result["trigger"] == "manager" and result["unit_id"] == "a"
        assert result["actor_id"].startswith("account:") and "not a security or alarm system" in result["note"]
        # The resident sees it, and it counts: the unit is ok.
        assert [t["id"] for t in await history(api, b.alice)] == [result["id"]]
        assert (await my_status(api, b.alice))["status"] == "ok"
        assert await history(api, b.bob) == []
        r = await api.http.get("/operator/audit", params={"property_id": "p1"}, headers=bearer(api.operator))
        assert r.status_code == 200, r.text
        (entry,) = [e for e in r.json()["entries"] if e["action"] == "self_test.run"]
        assert (entry["unit_id"], entry["actor_role"], entry["detail"]) == ("a", "manager", {"passed": True})
        assert result["actor_id"] == f"account:{entry['actor_id']}"
        # Only the property's manager may; nobody may while the lessor's contract is not in force.
        problem(await api.http.post("/properties/p1/units/a/self-test", headers=bearer(b.alice)), 403, "role_forbidden")
        problem(
            await api.http.post("/properties/p1/units/a/self-test", headers=bearer(b.installer)), 403, "role_forbidden"
        )
        problem(
            await api.http.post("/properties/p1/units/zz/self-test", headers=bearer(b.manager)), 404, "unit_not_found"
        )
        await set_contract(api, status="suspended")
        problem(
            await api.http.post("/properties/p1/units/a/self-test", headers=bearer(b.manager)),
            403,
            "lessor_contract_inactive",
        )
        assert len(await history(api, b.alice)) == 1


@EMBEDDED
async def test_the_automatic_test_waits_until_the_unit_is_idle_and_retries_a_failure_after_six_hours(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    async with checked_building(make_gateway, broker, prefix, clock, None) as b:
        api, checks = b.api, b.api.services.checks
        r = await command(api, b.alice, b.entity("a", "light", "light"), {"on": True})
        assert r.status_code == 200, r.text
        # Both units owe a test (never tested); only bob's, where nobody did anything, is tested now.
        await checks.tick()
        assert await history(api, b.alice) == []
        (bobs,) = await history(api, b.bob)
        assert bobs["trigger"] == "automatic" and bobs["passed"] is True
        clock.advance(timedelta(minutes=10) - SECOND)
        await checks.tick()
        assert await history(api, b.alice) == []
        # Ten minutes without a command: idle. This test fails (the dimmer does not answer).
        b.sims["a"].dimmer.ignore_commands = True
        clock.advance(SECOND)
        await checks.tick()
        (first,) = await history(api, b.alice)
        assert first["trigger"] == "automatic" and first["passed"] is False
        assert (await my_status(api, b.alice))["status"] == "failing"
        # A failed automatic test is not repeated at every pass: once per six hours.
        b.sims["a"].dimmer.ignore_commands = False
        clock.advance(timedelta(hours=6) - SECOND)
        await checks.tick()
        assert len(await history(api, b.alice)) == 1
        clock.advance(SECOND)
        await checks.tick()
        second, _ = await history(api, b.alice)
        assert second["trigger"] == "automatic" and second["passed"] is True
        assert (await my_status(api, b.alice))["status"] == "ok"
        assert len(await history(api, b.bob)) == 1  # ok since its first test: left alone


@pytest.mark.parametrize("broker", ["mosquitto"], indirect=True)
async def test_a_power_outage_makes_every_unit_due_at_once_on_the_next_start(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock, tmp_path: Path
) -> None:
    db = tmp_path / "gateway.sqlite3"  # make_gateway's database: the building below lives there
    clock.set(datetime.now(UTC) - timedelta(hours=2))
    async with checked_building(make_gateway, broker, prefix, clock, None, automatic=False) as b:
        assert (await self_test(b.api, b.alice))["passed"] is True
        assert (await my_status(b.api, b.alice))["status"] == "ok"
        alice, bob, manager = b.alice, b.bob, b.manager
    killed_at = await crash_gateway(db, broker, prefix)
    clock.set(killed_at + timedelta(minutes=5))
    restart = make_gateway.using(database=db, checks=checks_settings(automatic=False))
    async with running_api(restart, broker, prefix, clock, **LONG_SESSIONS) as api:
        assert api.gateway.unclean_previous_run is not None
        (power,) = await outages(api, manager, "power")
        assert power["cause"] == "unclean_stop"
        assert killed_at - timedelta(seconds=60) <= datetime.fromisoformat(power["started_at"]) <= killed_at
        assert datetime.fromisoformat(power["ended_at"]) == clock.now()
        # Every unit owes a test from the restart on (the power came back), a day to do it.
        for token in (alice, bob):
            status = await my_status(api, token)
            assert (status["status"], status["reason"]) == ("due", "after_power"), status
            assert datetime.fromisoformat(status["due_at"]) == clock.now()
            assert datetime.fromisoformat(status["deadline"]) == clock.now() + timedelta(days=1)
        # Five minutes away is under the 15-minute threshold: no outage report.
        r = await api.http.get("/operator/reports", headers=bearer(api.operator))
        assert [x for x in r.json() if x["kind"] == "outage"] == []
    # A clean stop is not an outage.
    clock.advance(timedelta(minutes=1))
    async with running_api(restart, broker, prefix, clock, **LONG_SESSIONS) as api:
        assert api.gateway.unclean_previous_run is None
