"""The device simulators (fwsim) against a real broker: discovery, commands, availability, faults, reconnects."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import aiomqtt
import fwsim
import pytest
from fwsim import (
    Backoff,
    BrokerAddress,
    Fault,
    FaultInvalid,
    FaultKind,
    Fleet,
    SimulatedDevice,
    ThermostatSim,
    UnitSim,
    parse_fault,
)
from fwsim.cli import build_parser

import devices
from devices import (
    BinarySensorState,
    ClimateCommand,
    ClimateConfig,
    ClimateState,
    Component,
    EntityConfig,
    LightCommand,
    LightConfig,
    LightState,
    LockCommand,
    LockConfig,
    LockState,
    LockStatus,
    OutcomeStatus,
    SensorConfig,
    SensorState,
    parse_config,
    parse_discovery_topic,
)
from gateway.mqtt.broker import EmbeddedBroker

DELAY = 0.02
"""The simulators' command delay in these tests."""
WAIT = 3.0
"""Longest wait for any expected message."""
ENTITIES = 7
"""Entities of a unit: light, dimmer, lock + battery, thermostat, leak + battery."""


# --- helpers --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Msg:
    """One message the observer saw."""

    topic: str
    payload: bytes
    retain: bool


class Observer:
    """A plain aiomqtt client that records everything it receives, for asserting on the wire."""

    _count = 0

    def __init__(self, broker: EmbeddedBroker, *filters: str) -> None:
        Observer._count += 1
        self._client = aiomqtt.Client(broker.host, broker.port, identifier=f"observer-{Observer._count}")
        self._filters = filters or ("#",)
        self.messages: list[Msg] = []
        self._arrived = asyncio.Event()
        self._stack = AsyncExitStack()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self._stack.enter_async_context(self._client)
        await self._client.subscribe([(f, 1) for f in self._filters])
        self._reader = asyncio.create_task(self._read(), name="observer-reader")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._client.unsubscribe(list(self._filters))
            await self._quiesce()
        finally:
            if self._reader is not None:
                self._reader.cancel()
                await asyncio.wait({self._reader})
            await self._stack.aclose()

    async def _quiesce(self, quiet: float = 0.02, limit: float = 1.0) -> None:
        """Let in-flight deliveries land before disconnecting."""
        # Closing a socket with unread data sends an RST; amqtt then leaks that connection's transport
        # (its write_eof fails and it never closes it), which surfaces as a ResourceWarning later.
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            count = len(self.messages)
            await asyncio.sleep(quiet)
            if len(self.messages) == count:
                return

    async def _read(self) -> None:
        async for m in self._client.messages:
            payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
            self.messages.append(Msg(m.topic.value, payload, m.retain))
            self._arrived.set()

    def mark(self) -> int:
        """A position in the record: later ``expect`` calls look only at messages after it."""
        return len(self.messages)

    async def expect(
        self,
        topic: str,
        match: Callable[[Msg], bool] | None = None,
        *,
        since: int = 0,
        timeout: float = WAIT,
        retained: bool = False,
    ) -> Msg:
        """The first message on ``topic`` after ``since`` matching; retained replays only if ``retained``."""
        seen = since
        async with asyncio.timeout(timeout):
            while True:
                for m in self.messages[seen:]:
                    if m.topic == topic and (retained or not m.retain) and (match is None or match(m)):
                        return m
                seen = len(self.messages)
                self._arrived.clear()
                await self._arrived.wait()

    async def expect_payload(self, topic: str, payload: bytes, *, since: int = 0, timeout: float = WAIT) -> Msg:
        """The first message on ``topic`` carrying exactly ``payload``."""
        return await self.expect(topic, lambda m: m.payload == payload, since=since, timeout=timeout)

    async def collect(self, count: int, match: Callable[[Msg], bool], *, timeout: float = WAIT) -> list[Msg]:
        """Wait until ``count`` distinct topics have a matching message; return the latest per topic."""
        async with asyncio.timeout(timeout):
            while True:
                found = {m.topic: m for m in self.messages if match(m)}
                if len(found) >= count:
                    return list(found.values())
                self._arrived.clear()
                await self._arrived.wait()

    def on(self, topic: str, *, since: int = 0) -> list[Msg]:
        """Live messages seen on ``topic`` after ``since``."""
        return [m for m in self.messages[since:] if m.topic == topic and not m.retain]

    async def send(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        """Publish at QoS 1."""
        await self._client.publish(topic, payload, qos=1, retain=retain)


async def discovered(broker: EmbeddedBroker, prefix: str = "homeassistant") -> dict[str, tuple[EntityConfig, Msg]]:
    """Subscribe afresh and parse every retained discovery config, keyed ``<node_id>/<object_id>``."""
    async with Observer(broker, f"{prefix}/#") as obs:
        found = await obs.collect(ENTITIES, lambda m: m.topic.endswith("/config") and bool(m.payload))
    out: dict[str, tuple[EntityConfig, Msg]] = {}
    for msg in found:
        key = parse_discovery_topic(prefix, msg.topic)
        out[f"{key.node_id}/{key.object_id}"] = (parse_config(key.component, msg.payload), msg)
    return out


def light_config(found: dict[str, tuple[EntityConfig, Msg]], key: str) -> LightConfig:
    """The parsed light config at ``key``."""
    config = found[key][0]
    assert isinstance(config, LightConfig)
    return config


async def eventually(check: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll ``check`` until true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(DELAY)


async def send_command(obs: Observer, config: EntityConfig, command: devices.Command) -> int:
    """Publish ``command`` as the gateway would (``encode_command``); return the observer mark before it."""
    mark = obs.mark()
    for p in config.encode_command(command):
        await obs.send(p.topic, p.payload)
    return mark


async def outcome_of(
    obs: Observer, config: EntityConfig, command: devices.Command, *, since: int, until: OutcomeStatus
) -> list[devices.EntityState]:
    """Decode every state report after ``since`` until one gives outcome ``until``; return them all."""
    states: list[devices.EntityState] = []
    previous: devices.EntityState | None = None
    seen = since
    async with asyncio.timeout(WAIT):
        while True:
            for m in obs.messages[seen:]:
                if m.topic in config.state_topics() and not m.retain:
                    previous = config.decode_state(m.topic, m.payload, previous)
                    states.append(previous)
                    if config.outcome(command, previous).status is until:
                        return states
            seen = len(obs.messages)
            await obs.expect(next(iter(config.state_topics())), since=seen)


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
async def broker() -> AsyncIterator[EmbeddedBroker]:
    async with EmbeddedBroker() as embedded:
        yield embedded


@pytest.fixture
def address(broker: EmbeddedBroker) -> BrokerAddress:
    return BrokerAddress.parse(broker.url)


@pytest.fixture
async def unit(address: BrokerAddress) -> AsyncIterator[UnitSim]:
    async with UnitSim(address, command_delay=DELAY, drift_interval=60.0) as sim:
        await sim.wait_online(WAIT)
        yield sim


@pytest.fixture
async def observer(broker: EmbeddedBroker, unit: UnitSim) -> AsyncIterator[Observer]:
    async with Observer(broker) as obs:
        yield obs


# --- pure parts -----------------------------------------------------------------------------------


def test_broker_address_parses_urls() -> None:
    assert BrokerAddress.parse("mqtt://127.0.0.1:1884") == BrokerAddress("127.0.0.1", 1884)
    assert BrokerAddress.parse("mqtt://broker.local").port == 1883
    tls = BrokerAddress.parse("mqtts://u%40x:p%3Aw@broker.local")
    assert (tls.host, tls.port, tls.tls, tls.username, tls.password) == ("broker.local", 8883, True, "u@x", "p:w")
    assert "p:w" not in repr(tls) and "p%3Aw" not in tls.url
    with_ca = BrokerAddress.parse("mqtt://h:1").with_options(ca_file="/etc/ca.pem", username="gw")
    assert with_ca.tls and with_ca.username == "gw" and with_ca.ca_file == "/etc/ca.pem"
    for bad in ("http://h:1", "mqtt://:1883", "mqtt://h:99999", "mqtt://h:1/path", "h:1883"):
        with pytest.raises(ValueError, match="broker URL"):
            BrokerAddress.parse(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("offline", Fault(fault=FaultKind.OFFLINE)),
        ('{"fault":"offline","seconds":5}', Fault(fault=FaultKind.OFFLINE, seconds=5)),
        ("reboot:0.5", Fault(fault=FaultKind.REBOOT, seconds=0.5)),
        ("ignore", Fault(fault=FaultKind.IGNORE)),
        (" OBEY ", Fault(fault=FaultKind.OBEY)),
        ("jam", Fault(fault=FaultKind.JAM)),
        ("jam-next", Fault(fault=FaultKind.JAM_NEXT)),
        ("battery:15", Fault(fault=FaultKind.BATTERY, value=15.0)),
        ('{"fault":"battery","value":7}', Fault(fault=FaultKind.BATTERY, value=7.0)),
        ("leak:on", Fault(fault=FaultKind.LEAK, value=True)),
        ("leak:off", Fault(fault=FaultKind.LEAK, value=False)),
        ('{"fault":"leak","value":true}', Fault(fault=FaultKind.LEAK, value=True)),
    ],
)
def test_fault_forms_parse(text: str, expected: Fault) -> None:
    assert parse_fault(text) == expected
    assert parse_fault(text.encode()) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "explode",
        "battery",
        "battery:101",
        "battery:x",
        "leak:maybe",
        "jam:3",
        "offline:-1",
        '{"fault":"offline","seconds":"soon"}',
        '{"fault":"battery","value":true}',
        '{"fault":"ignore","extra":1}',
        "{not json",
        b"\xff\xfe",
    ],
)
def test_bad_fault_payloads_are_refused(text: str | bytes) -> None:
    with pytest.raises(FaultInvalid):
        parse_fault(text)


def test_backoff_is_capped_and_jittered() -> None:
    backoff = Backoff()
    assert 0.05 <= backoff.delay(0) <= 0.1
    assert all(1.5 <= backoff.delay(n) <= 3.0 for n in range(6, 50))


def test_cli_parses_options_and_rejects_bad_faults(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(
        ["unit", "--unit", "u7", "--broker", "mqtts://h", "--fault", "lock=jam", "--fault", "light=offline:3"]
    )
    assert args.unit == "u7" and args.broker == "mqtts://h"
    assert args.fault == [("lock", Fault(fault=FaultKind.JAM)), ("light", Fault(fault=FaultKind.OFFLINE, seconds=3))]
    fleet = build_parser().parse_args(["fleet", "--units", "400", "--batch-size", "50"])
    assert (fleet.units, fleet.batch_size, fleet.command_delay) == (400, 50, 0.2)
    for bad in (["unit", "--fault", "toaster=jam"], ["unit", "--fault", "lock=explode"], ["fleet"]):
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args(bad)
        assert exit_info.value.code == 2
    assert "DEVICE=FAULT" in capsys.readouterr().err


def test_unit_has_five_devices_with_their_own_identity(address: BrokerAddress) -> None:
    sim = UnitSim(address, unit="u102")
    assert list(sim.devices) == ["light", "dimmer", "lock", "thermostat", "leak"]
    assert {d.client_id for d in sim.devices.values()} == {f"fwsim-u102-{n}" for n in sim.devices}
    assert sim.lock.availability_topic == "fwsim/u102/lock/availability"
    assert sim.lock.fault_topic == "fwsim/u102/lock/fault"
    assert sim.thermostat.config.mode_command_topic == "fwsim/u102/thermostat/set/mode"


# --- discovery, state and availability ------------------------------------------------------------


async def test_discovery_configs_are_retained_and_parse(broker: EmbeddedBroker, unit: UnitSim) -> None:
    found = await discovered(broker)
    assert len(found) == ENTITIES
    assert all(msg.retain for _, msg in found.values())
    expected_keys = {
        "u101-light/light",
        "u101-dimmer/light",
        "u101-lock/lock",
        "u101-lock/battery",
        "u101-thermostat/climate",
        "u101-leak/leak",
        "u101-leak/battery",
    }
    assert set(found) == expected_keys
    for key, (config, msg) in found.items():
        name, object_id = key.split("/")[0].removeprefix("u101-"), key.split("/")[1]
        device = unit.devices[name]
        assert msg.payload == device.configs[object_id].to_payload()
        assert config.device is not None
        assert config.device.identifiers == (f"fwsim-u101-{name}",)
        assert (config.device.manufacturer, config.device.model) == ("fwsim", device.model)
        assert config.device.sw_version
        assert config.availability_topic == f"fwsim/u101/{name}/availability"
    lock, battery = found["u101-lock/lock"][0], found["u101-lock/battery"][0]
    assert isinstance(lock, LockConfig) and isinstance(battery, SensorConfig)
    assert lock.device == battery.device and lock.availability_topic == battery.availability_topic
    assert (battery.device_class, battery.unit_of_measurement) == ("battery", "%")
    assert light_config(found, "u101-light/light").supported_color_modes == ("onoff",)
    dimmer = light_config(found, "u101-dimmer/light")
    assert dimmer.dimmable and dimmer.has_color_temp and dimmer.kelvin_range == (2000, 6535)
    climate = found["u101-thermostat/climate"][0]
    assert isinstance(climate, ClimateConfig)
    assert climate.modes == ("off", "heat", "cool", "auto") and climate.fan_modes == ("auto", "low", "high")
    assert (climate.min_temperature, climate.max_temperature, climate.temp_step) == (10.0, 30.0, 0.5)
    assert len(climate.state_topics()) == 1  # one shared JSON state topic
    assert found["u101-leak/leak"][0].device_class == "moisture"


async def test_state_and_availability_are_retained(broker: EmbeddedBroker, unit: UnitSim) -> None:
    found = await discovered(broker)
    async with Observer(broker, "fwsim/#") as obs:
        for name in unit.devices:
            online = await obs.expect(f"fwsim/u101/{name}/availability", retained=True)
            assert (online.payload, online.retain) == (b"online", True)
        states = {}
        for key, (config, _) in found.items():
            for topic in config.state_topics():
                msg = await obs.expect(topic, retained=True)
                assert msg.retain
                states[key] = config.decode_state(topic, msg.payload, None)
    assert states["u101-light/light"] == LightState(on=False)
    assert states["u101-lock/lock"] == LockState(status=LockStatus.LOCKED)
    assert states["u101-lock/battery"] == SensorState(value=100.0, unit="%")
    assert states["u101-leak/leak"] == BinarySensorState(on=False)
    climate = states["u101-thermostat/climate"]
    assert isinstance(climate, ClimateState)
    assert (climate.mode, climate.target_temperature, climate.fan_mode) == ("heat", 21.0, "auto")


async def test_tcp_nodelay_is_set(unit: UnitSim) -> None:
    for device in unit.devices.values():
        client = device.link.client
        assert client is not None
        sock = client._client.socket()
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


async def test_home_assistant_birth_makes_devices_announce_again(unit: UnitSim, observer: Observer) -> None:
    mark = observer.mark()
    await observer.send("homeassistant/status", "online")
    configs = {t for d in unit.devices.values() for t in d.discovery_topics()}
    for topic in configs:
        await observer.expect(topic, since=mark)
    await observer.expect("fwsim/u101/lock/state", since=mark)


async def test_graceful_exit_reports_offline(broker: EmbeddedBroker, address: BrokerAddress) -> None:
    async with Observer(broker, "fwsim/+/+/availability") as obs:
        async with UnitSim(address, unit="u103", command_delay=DELAY) as sim:
            await sim.wait_online(WAIT)
            mark = obs.mark()
        for name in sim.devices:
            await obs.expect_payload(f"fwsim/u103/{name}/availability", b"offline", since=mark)


# --- commands -------------------------------------------------------------------------------------


async def test_light_command_is_confirmed_after_the_delay(
    broker: EmbeddedBroker, unit: UnitSim, observer: Observer
) -> None:
    config = light_config(await discovered(broker), "u101-light/light")
    started = time.monotonic()
    mark = await send_command(observer, config, LightCommand(on=True))
    states = await outcome_of(observer, config, LightCommand(on=True), since=mark, until=OutcomeStatus.CONFIRMED)
    assert time.monotonic() - started >= DELAY
    assert states[-1] == LightState(on=True) and unit.light.state.on
    mark = await send_command(observer, config, LightCommand(on=False))
    await outcome_of(observer, config, LightCommand(on=False), since=mark, until=OutcomeStatus.CONFIRMED)
    assert not unit.light.state.on


async def test_dimmer_takes_brightness_and_colour_temperature(
    broker: EmbeddedBroker, unit: UnitSim, observer: Observer
) -> None:
    config = light_config(await discovered(broker), "u101-dimmer/light")
    command = LightCommand(brightness=128, color_temp_kelvin=4000)
    mark = await send_command(observer, config, command)
    states = await outcome_of(observer, config, command, since=mark, until=OutcomeStatus.CONFIRMED)
    final = states[-1]
    assert isinstance(final, LightState) and final.on and final.brightness == 128
    assert unit.dimmer.state.brightness == 128 and unit.dimmer.state.color_temp_kelvin == 4000


async def test_lock_reports_motion_then_result(broker: EmbeddedBroker, unit: UnitSim, observer: Observer) -> None:
    config = (await discovered(broker))["u101-lock/lock"][0]
    command = LockCommand(action="unlock")
    mark = await send_command(observer, config, command)
    states = await outcome_of(observer, config, command, since=mark, until=OutcomeStatus.CONFIRMED)
    assert states == [LockState(status=LockStatus.UNLOCKING), LockState(status=LockStatus.UNLOCKED)]
    assert unit.lock.state.status is LockStatus.UNLOCKED


async def test_jammed_lock_refuses(broker: EmbeddedBroker, unit: UnitSim, observer: Observer) -> None:
    config = (await discovered(broker))["u101-lock/lock"][0]
    unit.lock.jam_next_command()
    command = LockCommand(action="unlock")
    mark = await send_command(observer, config, command)
    states = await outcome_of(observer, config, command, since=mark, until=OutcomeStatus.REFUSED)
    assert states == [LockState(status=LockStatus.UNLOCKING), LockState(status=LockStatus.JAMMED)]
    assert config.outcome(command, states[-1]).reason == "device_jammed"
    # the jam is a one-off: the next command works
    mark = await send_command(observer, config, command)
    await outcome_of(observer, config, command, since=mark, until=OutcomeStatus.CONFIRMED)
    # and jam() jams at once
    mark = observer.mark()
    await unit.lock.jam()
    await observer.expect_payload("fwsim/u101/lock/state", b"JAMMED", since=mark)


async def test_thermostat_takes_mode_target_and_fan(broker: EmbeddedBroker, unit: UnitSim, observer: Observer) -> None:
    config = (await discovered(broker))["u101-thermostat/climate"][0]
    command = ClimateCommand(mode="cool", target_temperature=22.5, fan_mode="high")
    assert len(config.encode_command(command)) == 3  # plain per-attribute command topics
    mark = await send_command(observer, config, command)
    await outcome_of(observer, config, command, since=mark, until=OutcomeStatus.CONFIRMED)
    state = unit.thermostat.state
    assert (state.mode, state.target_temperature, state.fan_mode) == ("cool", 22.5, "high")
    body = json.loads(observer.on("fwsim/u101/thermostat/state", since=mark)[-1].payload)
    assert set(body) == {"mode", "target", "current", "fan"}


async def test_ignored_commands_change_nothing(broker: EmbeddedBroker, unit: UnitSim, observer: Observer) -> None:
    config = light_config(await discovered(broker), "u101-light/light")
    unit.light.ignore_commands = True
    mark = await send_command(observer, config, LightCommand(on=True))
    await asyncio.sleep(DELAY * 10)
    assert observer.on("fwsim/u101/light/state", since=mark) == []
    assert not unit.light.state.on
    unit.light.ignore_commands = False
    mark = await send_command(observer, config, LightCommand(on=True))
    await outcome_of(observer, config, LightCommand(on=True), since=mark, until=OutcomeStatus.CONFIRMED)


async def test_bad_command_payloads_are_logged_and_ignored(
    broker: EmbeddedBroker, unit: UnitSim, observer: Observer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fwsim")
    for topic, garbage in [
        ("fwsim/u101/light/set", b"{not json"),
        ("fwsim/u101/dimmer/set", b'{"brightness": "max"}'),
        ("fwsim/u101/lock/set", b"WIGGLE"),
        ("fwsim/u101/thermostat/set/temperature", b"hot"),
        ("fwsim/u101/thermostat/set/mode", b"party"),
    ]:
        await observer.send(topic, garbage)
    config = light_config(await discovered(broker), "u101-light/light")
    mark = await send_command(observer, config, LightCommand(on=True))
    await outcome_of(observer, config, LightCommand(on=True), since=mark, until=OutcomeStatus.CONFIRMED)
    assert sum("ignoring bad command" in r.getMessage() for r in caplog.records) == 5
    assert all(d.is_online for d in unit.devices.values())


async def test_publish_raw_sends_garbage_for_gateway_tests(unit: UnitSim, observer: Observer) -> None:
    mark = observer.mark()
    await unit.lock.publish_raw("fwsim/u101/lock/state", b"garbage state")
    msg = await observer.expect("fwsim/u101/lock/state", since=mark)
    assert msg.payload == b"garbage state"


async def test_leak_sensor_reports_water_and_battery(broker: EmbeddedBroker, unit: UnitSim, observer: Observer) -> None:
    found = await discovered(broker)
    leak, battery = found["u101-leak/leak"][0], found["u101-leak/battery"][0]
    mark = observer.mark()
    await unit.leak.set_leak(True)
    await unit.leak.set_battery(12)
    msg = await observer.expect("fwsim/u101/leak/state", since=mark)
    assert leak.decode_state(msg.topic, msg.payload, None) == BinarySensorState(on=True)
    msg = await observer.expect("fwsim/u101/leak/battery", since=mark)
    assert battery.decode_state(msg.topic, msg.payload, None) == SensorState(value=12.0, unit="%")


async def test_thermostat_drifts_toward_target(broker: EmbeddedBroker, address: BrokerAddress) -> None:
    async with (
        Observer(broker, "fwsim/u104/thermostat/state") as obs,
        ThermostatSim(address, unit="u104", command_delay=DELAY, drift_interval=0.02, drift_step=0.5) as sim,
    ):
        await sim.wait_online(WAIT)
        config = sim.config
        mark = await send_command(obs, config, ClimateCommand(target_temperature=23.0))
        await obs.expect(
            "fwsim/u104/thermostat/state",
            lambda m: json.loads(m.payload)["current"] == 23.0,
            since=mark,
        )
        readings = [json.loads(m.payload)["current"] for m in obs.on("fwsim/u104/thermostat/state", since=mark)]
        assert readings == sorted(readings) and len(set(readings)) >= 4  # stepwise, upward
        off = ClimateCommand(mode="off")
        mark = await send_command(obs, config, off)
        await outcome_of(obs, config, off, since=mark, until=OutcomeStatus.CONFIRMED)
        await sim.set_current_temperature(25.0)
        await asyncio.sleep(0.1)
        assert sim.state.current_temperature == 25.0  # no drift while off


# --- availability and faults ----------------------------------------------------------------------


async def test_drop_offline_fires_the_last_will_and_come_back_reannounces(unit: UnitSim, observer: Observer) -> None:
    light = unit.light
    mark = observer.mark()
    await light.drop_offline()
    await observer.expect_payload(light.availability_topic, b"offline", since=mark)
    assert not light.is_online
    await asyncio.sleep(DELAY * 10)
    assert observer.on(light.availability_topic, since=mark)[-1].payload == b"offline"  # stays away
    mark = observer.mark()
    await light.come_back()
    await observer.expect_payload(light.availability_topic, b"online", since=mark)
    await observer.expect(light.discovery_topics()[0], since=mark)
    await light.wait_online(WAIT)
    assert light.connections == 2
    assert all(d.connections == 1 for d in unit.devices.values() if d is not light)


async def test_reboot_goes_offline_then_comes_back(unit: UnitSim, observer: Observer) -> None:
    dimmer = unit.dimmer
    mark = observer.mark()
    await dimmer.reboot(downtime=0.1)
    await observer.expect_payload(dimmer.availability_topic, b"offline", since=mark)
    await observer.expect_payload(dimmer.availability_topic, b"online", since=mark)
    await observer.expect(dimmer.topic("state"), since=mark)
    assert dimmer.connections == 2


async def _fault(observer: Observer, device: SimulatedDevice, payload: str) -> int:
    mark = observer.mark()
    await observer.send(device.fault_topic, payload)
    return mark


async def test_fault_control_topic(unit: UnitSim, observer: Observer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="fwsim")
    mark = await _fault(observer, unit.lock, "jam")
    await observer.expect_payload("fwsim/u101/lock/state", b"JAMMED", since=mark)
    mark = await _fault(observer, unit.lock, '{"fault":"battery","value":15}')
    await observer.expect_payload("fwsim/u101/lock/battery", b"15.0", since=mark)
    mark = await _fault(observer, unit.leak, "leak:on")
    await observer.expect_payload("fwsim/u101/leak/state", b"ON", since=mark)
    mark = await _fault(observer, unit.leak, "battery:5")
    await observer.expect_payload("fwsim/u101/leak/battery", b"5.0", since=mark)

    await _fault(observer, unit.thermostat, "ignore")
    await eventually(lambda: unit.thermostat.ignore_commands)
    await _fault(observer, unit.thermostat, "obey")
    await eventually(lambda: not unit.thermostat.ignore_commands)

    mark = await _fault(observer, unit.light, '{"fault":"offline","seconds":0.2}')
    await observer.expect_payload("fwsim/u101/light/availability", b"offline", since=mark)
    await observer.expect_payload("fwsim/u101/light/availability", b"online", since=mark)

    # a retained fault acts once when published, but its replay on reconnect is ignored
    mark = await _fault(observer, unit.dimmer, "")
    await observer.send(unit.dimmer.fault_topic, "offline:0.1", retain=True)
    await observer.expect_payload("fwsim/u101/dimmer/availability", b"online", since=mark)
    await asyncio.sleep(DELAY * 5)
    assert unit.dimmer.is_online and unit.dimmer.connections == 2
    await observer.send(unit.dimmer.fault_topic, "", retain=True)

    await _fault(observer, unit.light, "explode")
    await _fault(observer, unit.light, "jam")
    await eventually(lambda: len(caplog.records) >= 2)
    messages = [r.getMessage() for r in caplog.records]
    assert any("ignoring fault payload" in m for m in messages)
    assert any("not supported" in m for m in messages)


async def test_reconnects_and_republishes_after_broker_restart() -> None:
    first = EmbeddedBroker()
    await first.start()
    port = first.port
    async with UnitSim(BrokerAddress.parse(first.url), unit="u105", command_delay=DELAY) as sim:
        await sim.wait_online(WAIT)
        await first.stop()
        for device in sim.devices.values():
            await device.wait_offline(WAIT)
        async with EmbeddedBroker(port=port) as second:
            await sim.wait_online(WAIT)
            assert all(d.connections == 2 for d in sim.devices.values())
            found = await discovered(second)  # the new broker had nothing retained: all republished
            assert {k.split("/")[0] for k in found} == {f"u105-{n}" for n in sim.devices}
            async with Observer(second, "fwsim/u105/+/availability") as obs:
                await obs.collect(len(sim.devices), lambda m: m.payload == b"online" and m.retain)


async def test_fleet_starts_units_in_batches(broker: EmbeddedBroker, address: BrokerAddress) -> None:
    async with (
        Observer(broker, "fwsim/+/+/availability") as obs,
        Fleet(address, units=3, batch_size=2, command_delay=DELAY) as fleet,
    ):
        assert [u.unit for u in fleet.units] == ["u001", "u002", "u003"]
        assert fleet.online_count == 15
        assert len({d.client_id for d in fleet.devices}) == 15
        await obs.collect(15, lambda m: m.payload == b"online")
        assert fleet.unit("u002").lock.client_id == "fwsim-u002-lock"


# --- the command line -----------------------------------------------------------------------------


async def test_cli_runs_a_unit_until_sigterm(broker: EmbeddedBroker) -> None:
    roots = {str(Path(fwsim.__file__).parents[1]), str(Path(devices.__file__).parents[1])}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*roots, os.environ.get("PYTHONPATH", "")])}
    async with Observer(broker, "fwsim/u106/#") as obs:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fwsim",
            "unit",
            "--unit",
            "u106",
            "--broker",
            broker.url,
            "--command-delay",
            "0.02",
            "--fault",
            "lock=jam",
            "--log-level",
            "WARNING",
            env=env,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await obs.expect_payload("fwsim/u106/lock/state", b"JAMMED", timeout=10.0)
            await obs.collect(5, lambda m: m.topic.endswith("/availability") and m.payload == b"online")
            mark = obs.mark()
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(5):
                _, stderr = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, stderr.decode()
        for name in ("light", "dimmer", "lock", "thermostat", "leak"):
            await obs.expect_payload(f"fwsim/u106/{name}/availability", b"offline", since=mark)


async def test_discovery_uses_the_component_topics(unit: UnitSim) -> None:
    topics = {t for d in unit.devices.values() for t in d.discovery_topics()}
    components = {parse_discovery_topic("homeassistant", t).component for t in topics}
    assert components == {Component.LIGHT, Component.LOCK, Component.SENSOR, Component.CLIMATE, Component.BINARY_SENSOR}
