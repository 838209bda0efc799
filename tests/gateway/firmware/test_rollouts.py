"""Firmware updates through the real interfaces: a Zigbee2MQTT emulator whose devices take over-the-air updates, on a
real broker; staff see versions and start staged rollouts over HTTP; time moves on the ManualClock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import httpx

from gateway.clock import ManualClock
from gateway.firmware import FirmwareService, RolloutRules
from tests.support.api import AGREEMENT, Api, ApiFactory, accept, bearer, problem, publish, set_contract
from tests.support.brokers import BrokerHandle
from tests.support.checks import EMBEDDED
from tests.support.polling import eventually, until
from tests.support.zigbee_ota import OtaDevice, Zigbee2MqttOta

NOTICE = timedelta(minutes=10)
UNITS = {"u101": "a", "u102": "b"}


@dataclass
class Site:
    """Property p1 with units a and b, their Zigbee devices bound, alice in a and bob in b."""

    api: Api
    bridge: Zigbee2MqttOta
    manager: str
    installer: str
    alice: str
    bob: str

    @property
    def firmware(self) -> FirmwareService:
        return self.api.services.firmware

    async def rollout(self, token: str, scope: str, target: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"scope": scope} if target is None else {"scope": scope, "target": target}
        return await self.api.http.post("/properties/p1/firmware/rollouts", json=body, headers=bearer(token))

    async def get_rollout(self, rollout_id: str) -> dict[str, Any]:
        r = await self.api.http.get(f"/properties/p1/firmware/rollouts/{rollout_id}", headers=bearer(self.manager))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def audit_actions(self) -> list[str]:
        r = await self.api.http.get("/operator/audit?property_id=p1&limit=500", headers=bearer(self.api.operator))
        assert r.status_code == 200, r.text
        return [e["action"] for e in reversed(r.json()["entries"])]


def zigbee(name: str, n: int, component: str, **options: Any) -> OtaDevice:
    return OtaDevice(name=name, ieee=f"0x00178801{n:08x}", component=component, **options)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def site(api: Api, devices: list[OtaDevice]) -> AsyncIterator[Site]:
    """The property, its staff, units and residents, with the devices behind a bridge of their own."""
    async with Zigbee2MqttOta(api.broker.host, api.broker.port, api.prefix, f"{api.prefix}-z2m", devices) as bridge:
        yield await prepare(api, bridge)


async def prepare(api: Api, bridge: Zigbee2MqttOta) -> Site:
    """Create p1 with its staff and units, bind the bridge's devices, move alice and bob in."""
    r = await api.http.post("/properties", json={"id": "p1", "name": "Elm Court"}, headers=bearer(api.operator))
    assert r.status_code == 201, r.text
    await set_contract(api)
    await publish(api, AGREEMENT)
    manager = await api.staff("maria.manager", "manager", "p1")
    installer = await api.staff("ivan.installer", "installer", "p1")
    for label, unit_id in UNITS.items():
        r = await api.http.post("/properties/p1/units", json={"label": label, "id": unit_id}, headers=bearer(manager))
        assert r.status_code == 201, r.text
    faster(api)
    registry = api.gateway.registry
    await eventually(
        lambda: all(len(registry.entities_of_device(d.device_id)) == 2 for d in bridge.devices),
        what="every device discovered with its update entity",
    )
    # The bridge's retained bridge/state, published before most entities were discovered, applies to each of them.
    for device in bridge.devices:
        await eventually(partial(_reporting, api, device.device_id), what=f"{device.name} online, with a state")
        unit_id = UNITS[device.name.split("/")[0]]
        r = await api.http.post(
            f"/properties/p1/units/{unit_id}/devices", json={"device_id": device.device_id},
            headers=bearer(installer),
        )  # fmt: skip
        assert r.status_code == 201, r.text
    _, alice = await api.move_in(manager, "p1", "a", "alice")
    _, bob = await api.move_in(manager, "p1", "b", "bob")
    for token in (alice, bob):
        assert (await accept(api, token)).status_code == 200
    return Site(api, bridge, manager, installer, alice, bob)


def faster(api: Api) -> None:
    """The rollout rules of these tests: ten minutes' notice, a 30-minute install timeout, a quick loop."""
    api.services.firmware.rules = RolloutRules(notice=NOTICE, install_timeout=timedelta(minutes=30), poll_seconds=0.2)


def _reporting(api: Api, device_id: str) -> bool:
    entities = api.gateway.registry.entities_of_device(device_id)
    return len(entities) == 2 and all(e.state is not None and e.available for e in entities)


async def finished(s: Site, rollout_id: str) -> dict[str, Any]:
    """Wait (real time, the devices' own pace) until the rollout is no longer running."""
    body: dict[str, Any] = {}

    async def done() -> bool:
        nonlocal body
        body = await s.get_rollout(rollout_id)
        return str(body["status"]) != "running"

    await until(done, timeout=15, what=f"rollout {rollout_id} finished")
    return body


@EMBEDDED
async def test_staff_see_each_devices_firmware_and_residents_cannot_install(api: Api) -> None:
    devices = [zigbee("u101/lock", 1, "lock"), zigbee("u101/light", 2, "light", latest=16777216)]
    async with site(api, devices) as s:
        registry = api.gateway.registry
        # Zigbee2MQTT's update entity is known, on the device that announces it; nothing refused as unknown.
        update = registry.get(f"update/{devices[0].ieee}/update")
        assert update is not None and update.device_id == devices[0].device_id
        assert "unknown_component" not in registry.metrics.rejected
        assert "unsupported_template" not in registry.metrics.rejected
        for token in (s.manager, s.installer, api.operator):
            r = await api.http.get("/properties/p1/firmware", headers=bearer(token))
            assert r.status_code == 200, r.text
            by_id = {d["device_id"]: d for d in r.json()}
            lock, light = by_id[devices[0].device_id], by_id[devices[1].device_id]
            assert (lock["installed_version"], lock["latest_version"]) == ("16777216", "16777472")
            assert lock["update_available"] and lock["installable"] and lock["kind"] == "lock"
            assert lock["unit_id"] == "a" and not lock["in_progress"]
            assert not light["update_available"] and light["kind"] == "light"
        problem(await api.http.get("/properties/p1/firmware", headers=bearer(s.alice)), 403, "role_forbidden")
        problem(await s.rollout(s.alice, "device", devices[0].device_id), 403, "role_forbidden")
        # A resident's own device, but an install is not a resident's command.
        r = await api.http.post(
            f"/me/entities/update.{devices[0].ieee}.update/commands", json={"command": {"action": "install"}},
            headers=bearer(s.alice),
        )  # fmt: skip
        problem(r, 403, "firmware_update_staff_only")
        # An installer updates one device at a time; a unit or the property is the manager's (or operator's).
        problem(await s.rollout(s.installer, "unit", "a"), 403, "role_forbidden")
        problem(await s.rollout(s.installer, "property"), 403, "role_forbidden")
        # Nothing to install on a device that runs its latest version.
        problem(await s.rollout(s.manager, "device", devices[1].device_id), 409, "no_update_available")
        assert s.bridge.installs == []


async def test_a_property_rollout_runs_in_stages_after_telling_residents(api: Api, clock: ManualClock) -> None:
    devices = [
        zigbee("u101/lock", 1, "lock"),
        zigbee("u101/light", 2, "light"),
        zigbee("u102/lock", 3, "lock"),
        zigbee("u102/light", 4, "light"),
    ]
    async with site(api, devices) as s:
        r = await s.rollout(s.manager, "property")
        assert r.status_code == 201, r.text
        planned = r.json()
        stage = {d["device_id"]: d["stage"] for d in planned["devices"]}
        locks = [d.device_id for d in devices if d.component == "lock"]
        # A small first stage (one device, not a lock), and the building's two locks never in the same stage.
        assert planned["stages"] == 3
        assert [d for d, n in stage.items() if n == 0] == [devices[1].device_id]
        assert stage[locks[0]] != stage[locks[1]]
        # Both units' residents are told before anything is installed; nothing is, until the notice has run.
        for token in (s.alice, s.bob):
            r = await api.http.get("/me/notifications", headers=bearer(token))
            assert [n["kind"] for n in r.json()] == ["firmware_update"], r.text
            [note] = r.json()
            assert note["message"].startswith("Firmware updates for 2 of your devices start from"), note
            assert note["data"]["rollout_id"] == planned["id"]
        await s.firmware.tick()
        await asyncio.sleep(0.1)
        assert s.bridge.installs == []
        clock.advance(NOTICE)
        await s.firmware.tick()
        body = await finished(s, planned["id"])
        assert body["status"] == "completed", body
        assert all(d["status"] == "done" for d in body["devices"]), body
        # Installed one stage after another: the canary first, and never both locks at once.
        order = [stage[next(d.device_id for d in devices if d.name == name)] for name in s.bridge.installs]
        assert order == sorted(order) and order[0] == 0 and len(order) == 4
        lock_names = {d.name for d in devices if d.component == "lock"}
        assert all(not lock_names <= updating for updating in s.bridge.overlaps)
        r = await api.http.get("/properties/p1/firmware", headers=bearer(s.installer))
        assert all(d["installed_version"] == "16777472" and not d["update_available"] for d in r.json()), r.text
        actions = await s.audit_actions()
        assert actions.count("firmware.rollout_started") == 1
        assert actions.count("firmware.install_sent") == 4 and actions.count("firmware.device_updated") == 4
        assert actions.count("firmware.stage_passed") == 3 and actions[-1] == "firmware.rollout_completed"
        r = await api.http.get("/properties/p1/reports", headers=bearer(s.manager))
        assert [x for x in r.json() if x["kind"] == "firmware_update_failed"] == []


@EMBEDDED
async def test_a_device_that_hangs_stops_the_rollout_at_the_timeout_and_files_a_report(
    api: Api, clock: ManualClock
) -> None:
    devices = [zigbee("u101/light", 2, "light", behaviour="hang"), zigbee("u101/lock", 1, "lock")]
    async with site(api, devices) as s:
        r = await s.rollout(s.manager, "unit", "a")
        assert r.status_code == 201, r.text
        rollout_id = r.json()["id"]
        clock.advance(NOTICE)
        await s.firmware.tick()
        await until(
            lambda: _device_in_progress(s, devices[0]), timeout=5, what="the canary reporting its update in progress"
        )
        await s.firmware.tick()
        assert (await s.get_rollout(rollout_id))["status"] == "running"
        clock.advance(timedelta(minutes=31))
        await s.firmware.tick()
        await s.firmware.tick()
        body = await s.get_rollout(rollout_id)
        assert body["status"] == "failed", body
        by_id = {d["device_id"]: d for d in body["devices"]}
        assert by_id[devices[0].device_id]["status"] == "failed"
        assert by_id[devices[0].device_id]["reason"] == "update_timeout"
        assert by_id[devices[1].device_id]["status"] == "not_started"
        assert s.bridge.installs == ["u101/light"]  # the lock was never touched
        r = await api.http.get("/properties/p1/reports", headers=bearer(s.manager))
        [report] = [x for x in r.json() if x["kind"] == "firmware_update_failed"]
        assert report["unit_id"] == "a" and "update_timeout" in str(report["body"])
        actions = await s.audit_actions()
        assert "firmware.device_failed" in actions and actions[-1] == "firmware.rollout_failed"


@EMBEDDED
async def test_a_failed_install_stops_the_rollout_without_waiting_for_the_timeout(api: Api, clock: ManualClock) -> None:
    devices = [zigbee("u101/light", 2, "light", behaviour="fail"), zigbee("u101/lock", 1, "lock")]
    async with site(api, devices) as s:
        r = await s.rollout(s.manager, "unit", "a")
        assert r.status_code == 201, r.text
        clock.advance(NOTICE)
        await s.firmware.tick()
        body = await finished(s, r.json()["id"])
        assert body["status"] == "failed"
        by_id = {d["device_id"]: d for d in body["devices"]}
        assert by_id[devices[0].device_id]["reason"] == "update_failed"
        assert by_id[devices[1].device_id]["status"] == "not_started"
        assert s.bridge.installs == ["u101/light"]


async def _device_in_progress(s: Site, device: OtaDevice) -> bool:
    r = await s.api.http.get("/properties/p1/firmware", headers=bearer(s.manager))
    return any(d["device_id"] == device.device_id and d["in_progress"] for d in r.json())


@EMBEDDED
async def test_no_update_starts_while_a_command_for_the_device_is_pending(api: Api) -> None:
    lock = zigbee("u101/lock", 1, "lock", answers_commands=False)
    async with site(api, [lock]) as s:
        command = asyncio.create_task(
            api.http.post(
                f"/me/entities/lock.{lock.ieee}.lock/commands", json={"command": {"action": "unlock"}},
                headers=bearer(s.alice),
            )
        )  # fmt: skip
        try:
            await eventually(lambda: api.gateway.commands.pending(lock.device_id), what="the unlock pending")
            problem(await s.rollout(s.manager, "device", lock.device_id), 409, "command_pending")
        finally:
            await command  # the lock never answers: the command times out (2 s)
        assert not api.gateway.commands.pending(lock.device_id)
        r = await s.rollout(s.installer, "device", lock.device_id)
        assert r.status_code == 201, r.text
        problem(await s.rollout(s.manager, "unit", "a"), 409, "rollout_in_progress")


@EMBEDDED
async def test_a_rollout_resumes_after_a_restart_and_completes_from_the_devices_report(
    start_api: ApiFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    light = zigbee("u101/light", 2, "light", behaviour="hang")
    async with Zigbee2MqttOta(broker.host, broker.port, prefix, f"{prefix}-z2m", [light]) as bridge:
        async with start_api() as api:
            s = await prepare(api, bridge)
            r = await s.rollout(s.manager, "device", light.device_id)
            assert r.status_code == 201, r.text
            rollout_id = r.json()["id"]
            clock.advance(NOTICE)
            await s.firmware.tick()
            await until(partial(_device_in_progress, s, light), what="the update in progress")
            stored = await s.get_rollout(rollout_id)
            assert stored["status"] == "running" and stored["devices"][0]["status"] == "installing", stored
        # While the gateway is down, the device finishes its update (and Zigbee2MQTT retains its state).
        light.updating, light.progress, light.installed = False, None, 16777472
        await bridge.publish_state(light)
        async with start_api() as api:
            faster(api)
            manager = await api.login("maria.manager")

            async def completed() -> bool:
                await api.services.firmware.tick()
                r = await api.http.get(f"/properties/p1/firmware/rollouts/{rollout_id}", headers=bearer(manager))
                return str(r.json()["status"]) == "completed"

            await until(completed, timeout=10, what="the resumed rollout completed")
            r = await api.http.get("/operator/audit?property_id=p1&limit=50", headers=bearer(api.operator))
            actions = [e["action"] for e in r.json()["entries"]]
            assert actions[0] == "firmware.rollout_completed" and "firmware.device_updated" in actions
        assert bridge.installs == ["u101/light"]  # installed once, not again after the restart


@EMBEDDED
async def test_a_device_waits_for_its_pending_command_before_the_install(api: Api, clock: ManualClock) -> None:
    lock = zigbee("u101/lock", 1, "lock", answers_commands=False)
    async with site(api, [lock]) as s:
        r = await s.rollout(s.manager, "device", lock.device_id)
        assert r.status_code == 201, r.text
        rollout_id = r.json()["id"]
        # During the notice, alice unlocks her door; the lock is slow to answer (it never does: 2 s timeout).
        command = asyncio.create_task(
            api.http.post(
                f"/me/entities/lock.{lock.ieee}.lock/commands", json={"command": {"action": "unlock"}},
                headers=bearer(s.alice),
            )
        )  # fmt: skip
        try:
            await eventually(lambda: api.gateway.commands.pending(lock.device_id), what="the unlock pending")
            clock.advance(NOTICE)
            await s.firmware.tick()
            await asyncio.sleep(0.1)
            assert s.bridge.installs == []  # not while the command waits for its outcome
            assert (await s.get_rollout(rollout_id))["devices"][0]["status"] == "waiting"
        finally:
            await command
        await s.firmware.tick()
        body = await finished(s, rollout_id)
        assert body["status"] == "completed" and s.bridge.installs == ["u101/lock"], body
