"""Recorded devices of Tasmota, Zigbee2MQTT, ESPHome, Shelly and Z-Wave JS UI (tests/fixtures/firmware) end to end,
through a real broker (embedded and Mosquitto) and the HTTP API: announced as the firmware announces them, one
device after the other (so a shared, retained availability topic arrives before some are discovered), bound to a
unit by the installer, commanded by the resident (each command confirmed by the firmware's own recorded answer, and
nothing else sent to any device), then checked by the self-test the way each firmware can be asked."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from gateway.api.views import api_entity_id
from gateway.clock import ManualClock
from tests.support.api import Building, bearer, command
from tests.support.brokers import BrokerHandle
from tests.support.checks import checked_building, self_test
from tests.support.firmware import Emulator, Recording, recordings_of
from tests.support.gateway import GatewayFactory
from tests.support.polling import eventually

FIRMWARES = ["tasmota", "zigbee2mqtt", "esphome", "shelly", "zwave_js_ui"]


def _state(b: Building, key: str) -> dict[str, Any] | None:
    entity = b.api.gateway.registry.get(key)
    if entity is None or entity.state is None:
        return None
    state: dict[str, Any] = json.loads(entity.state.model_dump_json(exclude_none=True))
    return state


def _set(state: dict[str, Any] | None) -> dict[str, Any] | None:
    """A state as the API shows it, without the fields it does not know (null)."""
    return None if state is None else {k: v for k, v in state.items() if v is not None}


def _announced(b: Building, recording: Recording) -> Callable[[], bool]:
    """Every entity discovered and, where the recording says it announces availability, available."""

    def check() -> bool:
        registry = b.api.gateway.registry
        entities = [registry.get(key) for key in recording.entities]
        return all(e is not None and (e.available or not e.config.availability_entries()) for e in entities)

    return check


def _reported(b: Building, recording: Recording) -> Callable[[], bool]:
    return lambda: all(_state(b, k) == e.get("state") for k, e in recording.entities.items())


@contextlib.asynccontextmanager
async def announced(b: Building, recordings: list[Recording]) -> AsyncIterator[Emulator]:
    """The recorded devices, announced one after the other and bound to unit b."""
    api = b.api
    async with Emulator(api.broker.host, api.broker.port, recordings, api.prefix) as device:
        for recording in recordings:
            for message in recording.retained:
                await device.publish(message)
            await eventually(_announced(b, recording), what=f"{recording.name} discovered and available")
            for _ in range(50):  # telemetry is not retained: sent again, as the device does, until it is heard
                for message in recording.reports:
                    await device.publish(message)
                with contextlib.suppress(pytest.fail.Exception):
                    await eventually(_reported(b, recording), timeout=0.2, what="reports")
                    break
            await eventually(_reported(b, recording), what=f"{recording.name} reported its state")
            r = await api.http.post(
                "/properties/p1/units/b/devices", json={"device_id": recording.device_id}, headers=bearer(b.installer)
            )
            assert r.status_code == 201, r.text
        yield device


@pytest.mark.parametrize("firmware", FIRMWARES)
async def test_recorded_devices_end_to_end(
    firmware: str, make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    recordings = recordings_of(firmware)
    async with (
        checked_building(make_gateway, broker, prefix, clock, None, automatic=False) as b,
        announced(b, recordings) as device,
    ):
        api = b.api
        for recording in recordings:
            r = await api.http.get(f"/me/devices/{recording.device_id}", headers=bearer(b.bob))
            assert r.status_code == 200, r.text
            shown = {e["id"]: e for e in r.json()["entities"]}
            for key, expected in recording.entities.items():
                entity = shown[api_entity_id(key)]
                assert entity["kind"] == expected["kind"], key
                assert _set(entity["state"]) == expected.get("state"), key
                assert entity["available"] is not False, key

            for step in recording.commands:
                device.arm(step.exchange)
                r = await command(api, b.bob, api_entity_id(step.entity), step.command)
                assert r.status_code == 200, (recording.name, step.command, r.text)
                assert r.json()["status"] == "confirmed"
                assert device.armed == 0, "the device received every message of the recorded command"
                assert _state(b, step.entity) == step.state
        assert device.unexpected == [], "nothing the firmware would not expect reached it"

        device.arm(*(r.probe for r in recordings if r.probe is not None))
        result = await self_test(api, b.bob)
        checks = {d["device_id"]: d for d in result["devices"]}
        for recording in recordings:
            check = checks[recording.device_id]
            assert (check["status"], check["firmware"], check["method"]) == (
                "passed",
                recording.firmware,
                recording.probe_method,
            ), check
            if recording.probe_reason is not None:
                assert recording.probe_reason in check["detail"]
        assert device.armed == 0 and device.unexpected == []


async def test_strict_command_types_for_a_recorded_device(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    recordings = [r for r in recordings_of("tasmota") if r.kind == "switch"]
    async with (
        checked_building(make_gateway, broker, prefix, clock, None, automatic=False) as b,
        announced(b, recordings) as device,
    ):
        key = next(k for k, e in recordings[0].entities.items() if e["kind"] in ("light", "switch"))
        for truthy in ("yes", "true", 1, "on"):
            r = await command(b.api, b.bob, api_entity_id(key), {"on": truthy})
            assert r.status_code == 422, r.text
            body = r.json()
            assert (body["code"], body["field"]) == ("command_invalid", "on")
            assert "boolean" in body["detail"]
        assert device.received == []
