"""The self-test against devices as Zigbee2MQTT, Tasmota and ESPHome present them, over MQTT and HTTP: each asked
the way its firmware answers (never on a command topic), or, where no safe request exists, judged by its reports."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import aiomqtt
from fwsim import BrokerAddress, TasmotaSensorSim, Zigbee2MqttContactSim, Zigbee2MqttTrvSim

from gateway.clock import ManualClock
from tests.support.api import Building, bearer
from tests.support.brokers import BrokerHandle
from tests.support.checks import EMBEDDED, checked_building, listening, self_test
from tests.support.gateway import GatewayFactory
from tests.support.polling import eventually

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
TRV, DOOR, PROBE = "fwsim-u101-trv", "fwsim-u101-door", "fwsim-u101-probe"


@dataclass
class Bridged:
    """Unit a's extra devices: a Zigbee2MQTT thermostat and battery door contact, a Tasmota probe."""

    trv: Zigbee2MqttTrvSim
    door: Zigbee2MqttContactSim
    probe: TasmotaSensorSim


@contextlib.asynccontextmanager
async def bridged_devices(b: Building) -> AsyncIterator[Bridged]:
    """Start the three devices, each behind a bridge or firmware of its own, and bind them to unit a."""
    api, address = b.api, BrokerAddress(host=b.api.broker.host, port=b.api.broker.port)
    options: dict[str, Any] = {"unit": "u101", "discovery_prefix": api.prefix, "command_delay": 0.02}
    async with (
        Zigbee2MqttTrvSim(address, base_topic=f"{api.prefix}-z2m", drift_interval=3600, **options) as trv,
        Zigbee2MqttContactSim(address, base_topic=f"{api.prefix}-z2m-door", **options) as door,
        TasmotaSensorSim(address, base_topic=f"{api.prefix}-tasmota", **options) as probe,
    ):
        for device_id in (TRV, DOOR, PROBE):
            await eventually(partial(_reporting, b, device_id), what=f"{device_id} discovered, online, with a state")
            r = await api.http.post(
                "/properties/p1/units/a/devices", json={"device_id": device_id}, headers=bearer(b.installer)
            )
            assert r.status_code == 201, r.text
        yield Bridged(trv, door, probe)


def _reporting(b: Building, device_id: str) -> bool:
    entities = b.api.gateway.registry.entities_of_device(device_id)
    return bool(entities) and all(e.state is not None and e.available for e in entities)


def devices_of(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A self-test result's device checks by device id."""
    return {d["device_id"]: d for d in result["devices"]}


def command_topics(b: Building) -> set[str]:
    """Every command topic of every device the gateway knows."""
    return {t for e in b.api.gateway.registry.entities() for t in e.config.command_topics()}


@EMBEDDED
async def test_each_firmware_is_asked_its_own_way_and_a_sleeping_sensor_passes_by_its_reports(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    async with (
        checked_building(make_gateway, broker, prefix, clock, None, automatic=False) as b,
        bridged_devices(b) as sims,
    ):
        api = b.api
        filters = (f"{prefix}-sim/#", f"{prefix}-z2m/#", f"{prefix}-z2m-door/#", f"{prefix}-tasmota/#")
        async with listening(api, *filters) as wire:
            result = await self_test(api, b.alice)
            await eventually(lambda: bool(wire.on({f"{prefix}-tasmota/cmnd/u101_probe/TelePeriod"})), what="spy")
        assert result["passed"] is True, result
        checks = devices_of(result)
        assert len(checks) == 8 and all(c["status"] == "passed" for c in checks.values()), checks
        trv, door, probe = checks[TRV], checks[DOOR], checks[PROBE]
        assert (trv["firmware"], trv["method"]) == ("zigbee2mqtt", "asked") and trv["latency_ms"] > 0
        assert (probe["firmware"], probe["method"]) == ("tasmota", "asked") and probe["latency_ms"] > 0
        assert (door["firmware"], door["method"], door["latency_ms"]) == ("zigbee2mqtt", "fresh_report", None)
        assert "battery_powered" in door["detail"] and "within the expected 86400 s" in door["detail"]
        assert checks["fwsim-u101-lock"]["method"] == "asked" and checks["fwsim-u101-lock"]["firmware"] == "fwsim"
        # On the wire: the thermostat asked for the attributes it reports (Zigbee2MQTT ignores "state" for it),
        # Tasmota for its telemetry with an empty payload (a value would set the period), the sleeping door nothing.
        reads = {f"{prefix}-z2m/u101/trv/get", f"{prefix}-z2m-door/u101/door/get"}
        assert wire.on(reads) == [
            (f"{prefix}-z2m/u101/trv/get", b'{"local_temperature":"","occupied_heating_setpoint":"","system_mode":""}')
        ]
        assert wire.on({f"{prefix}-tasmota/cmnd/u101_probe/TelePeriod"}) == [
            (f"{prefix}-tasmota/cmnd/u101_probe/TelePeriod", b"")
        ]
        assert wire.on(command_topics(b)) == []  # nothing actuated anything
        assert sims.trv.state.mode == "heat" and sims.trv.state.target_temperature == 21.0

        # A thermostat that does not answer fails the test, and only it.
        sims.trv.ignore_commands = True
        failed = devices_of(await self_test(api, b.alice))
        assert (failed[TRV]["status"], failed[TRV]["reason"]) == ("failed", "no_answer")
        assert [d for d, c in failed.items() if c["status"] != "passed"] == [TRV]
        sims.trv.ignore_commands = False

        # A day without a word from the door: it cannot be asked, so its silence fails it; a report clears it.
        clock.advance(DAY + SECOND)
        stale = devices_of(await self_test(api, b.alice))
        assert (stale[DOOR]["status"], stale[DOOR]["reason"]) == ("failed", "stale_report")
        assert "beyond the expected 86400 s" in stale[DOOR]["detail"]
        assert [d for d, c in stale.items() if c["status"] != "passed"] == [DOOR]
        await sims.door.set_open(True)
        await eventually(lambda: _door_open(b), what="the door's report")
        assert (await self_test(api, b.alice))["passed"] is True


def _door_open(b: Building) -> bool:
    (contact,) = [e for e in b.api.gateway.registry.entities_of_device(DOOR) if e.component == "binary_sensor"]
    return bool(contact.state is not None and contact.state.model_dump().get("on"))


@EMBEDDED
async def test_a_device_with_no_known_request_that_never_reported_fails_until_it_reports(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock, mqtt: aiomqtt.Client
) -> None:
    # An ESPHome node's temperature sensor (ESPHome's MQTT component offers no state request).
    config = {
        "name": "Temperature", "stat_t": f"{prefix}-esp/sensor/temperature/state", "avty_t": f"{prefix}-esp/status",
        "unit_of_meas": "°C", "dev_cla": "temperature", "uniq_id": f"{prefix}ESPsensortemperature",
        "dev": {"ids": f"{prefix}esp", "name": "hall", "sw": "esphome v2024.6.1", "mdl": "esp32dev", "mf": "espressif"},
    }  # fmt: skip
    async with checked_building(make_gateway, broker, prefix, clock, None, automatic=False) as b:
        api = b.api
        await mqtt.publish(f"{prefix}-esp/status", b"online", qos=1, retain=True)
        await mqtt.publish(f"{prefix}/sensor/{prefix}esp/temperature/config", json.dumps(config), qos=1, retain=True)
        await eventually(lambda: bool(api.gateway.registry.entities_of_device(f"{prefix}esp")), what="discovery")
        r = await api.http.post(
            "/properties/p1/units/b/devices", json={"device_id": f"{prefix}esp"}, headers=bearer(b.installer)
        )
        assert r.status_code == 201, r.text
        async with listening(api, f"{prefix}-esp/#") as wire:
            result = await self_test(api, b.bob)
        esp = devices_of(result)[f"{prefix}esp"]
        assert result["passed"] is False
        assert (esp["firmware"], esp["method"], esp["reason"]) == ("esphome", "fresh_report", "never_reported")
        assert "no_known_request" in esp["detail"]
        assert wire.on({f"{prefix}-esp/sensor/temperature/state/get"}) == []
        await mqtt.publish(f"{prefix}-esp/sensor/temperature/state", b"21.4", qos=1, retain=True)
        await eventually(partial(_reporting, b, f"{prefix}esp"), what="the sensor's first report")
        result = await self_test(api, b.bob)
        esp = devices_of(result)[f"{prefix}esp"]
        assert result["passed"] is True and (esp["status"], esp["method"]) == ("passed", "fresh_report")
