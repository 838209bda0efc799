"""Alerts from the devices' own reports, over MQTT (the simulated devices) and HTTP: a leak, a jammed or offline
front door lock and a low battery each queue one notification when the situation begins and one when it ends, for
the unit's resident and the property's manager, saying it is home automation and not a security or alarm system."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from devices.base import DeviceKind
from devices.sensors import BinarySensorState
from gateway.checks import HOME_AUTOMATION_ONLY, AlertService
from tests.support.api import Api, Building, bearer, building, problem
from tests.support.polling import until

pytestmark = pytest.mark.parametrize("broker", ["embedded"], indirect=True)


async def notes(api: Api, token: str, path: str = "/properties/p1/notifications") -> list[dict[str, Any]]:
    r = await api.http.get(path, headers=bearer(token))
    assert r.status_code == 200, r.text
    return [n for n in r.json() if str(n["kind"]).startswith("alert_")]


async def kinds(api: Api, b: Building) -> list[tuple[str, str]]:
    """The manager's alert notifications, oldest first, as (unit, kind)."""
    return [(n["unit_id"], n["kind"]) for n in reversed(await notes(api, b.manager))]


async def wait_for(api: Api, b: Building, expected: list[tuple[str, str]]) -> None:
    async def seen() -> bool:
        return await kinds(api, b) == expected

    try:
        await until(seen, timeout=10, what=f"alerts {expected}")
    except pytest.fail.Exception:
        raise AssertionError(f"alerts: {await kinds(api, b)}; expected {expected}") from None


async def test_a_leak_queues_one_alert_per_situation_for_the_unit_and_the_manager(api: Api) -> None:
    async with building(api) as b:
        leak = b.sims["b"].leak
        await leak.set_leak(True)
        await wait_for(api, b, [("b", "alert_leak")])
        await leak.set_leak(True)  # the same leak reported again: still one situation
        await leak.set_leak(False)
        await wait_for(api, b, [("b", "alert_leak"), ("b", "alert_leak_ended")])
        await leak.set_leak(True)  # a new leak is a new situation
        await wait_for(api, b, [("b", "alert_leak"), ("b", "alert_leak_ended"), ("b", "alert_leak")])

        # bob (unit b) sees them in his app; alice (unit a) does not
        bobs = await notes(api, b.bob, "/me/notifications")
        assert [n["kind"] for n in bobs] == ["alert_leak", "alert_leak_ended", "alert_leak"]
        assert all(n["message"].endswith(HOME_AUTOMATION_ONLY) for n in bobs)
        assert "not a security or alarm system" in HOME_AUTOMATION_ONLY
        assert "water" in bobs[0]["message"] and bobs[0]["data"]["device_id"] == "fwsim-u102-leak"
        assert await notes(api, b.alice, "/me/notifications") == []

        # the manager's list is the property's own
        r = await api.http.get("/properties/p1/notifications", headers=bearer(b.installer))
        problem(r, 403, "role_forbidden")
        r = await api.http.get("/properties/p2/notifications", headers=bearer(b.manager))
        problem(r, 404, "property_not_found")


async def test_a_lock_offline_or_jammed_and_a_low_battery_are_alerts(api: Api) -> None:
    async with building(api) as b:
        lock = b.sims["a"].lock
        await lock.jam()
        await wait_for(api, b, [("a", "alert_lock_jammed")])
        await lock.drop_offline()
        # offline: the jam is no longer what the lock says; the lock cannot be reached
        await wait_for(api, b, [("a", "alert_lock_jammed"), ("a", "alert_lock_offline")])
        await lock.come_back()
        await lock.wait_online()
        expected = [("a", "alert_lock_jammed"), ("a", "alert_lock_offline"), ("a", "alert_lock_offline_ended")]
        await wait_for(api, b, expected)  # still jammed: the lock says so again once back

        await b.sims["b"].leak.set_battery(12)
        await wait_for(api, b, [*expected, ("b", "alert_battery_low")])
        battery = (await notes(api, b.bob, "/me/notifications"))[0]
        assert "12 %" in battery["message"] and battery["data"]["reading"] == 12.0
        await b.sims["b"].leak.set_battery(15)  # still low: the same situation
        await b.sims["b"].leak.set_battery(90)
        await wait_for(api, b, [*expected, ("b", "alert_battery_low"), ("b", "alert_battery_low_ended")])


async def test_a_situation_open_at_a_restart_is_not_queued_again(api: Api) -> None:
    async with building(api) as b:
        leak = b.sims["b"].leak
        await leak.set_leak(True)
        await wait_for(api, b, [("b", "alert_leak")])
        (sensor,) = [
            e for e in api.gateway.registry.entities_of_device("fwsim-u102-leak") if e.kind is DeviceKind.LEAK_SENSOR
        ]
        wet = dataclasses.replace(sensor, state=BinarySensorState(on=True))
        dry = dataclasses.replace(sensor, state=BinarySensorState(on=False))

        # a second service over the same database, as after a restart: the leak still open is not queued again
        async with AlertService(api.gateway.db, api.clock, api.services.building) as restarted:
            await restarted.judge(wet)
            assert await kinds(api, b) == [("b", "alert_leak")]
            await restarted.judge(dry)  # and its end is queued once, whichever service hears it
            await leak.set_leak(False)
            await wait_for(api, b, [("b", "alert_leak"), ("b", "alert_leak_ended")])
            await restarted.judge(dry)
        assert await kinds(api, b) == [("b", "alert_leak"), ("b", "alert_leak_ended")]
