"""The gateway against a simulated unit over a real broker: discovery, availability, commands, restarts."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator

import aiomqtt
import pytest
from fwsim import BrokerAddress, UnitSim

from devices import ClimateState, DeviceKind, LightState, LockState, LockStatus
from gateway.app import Gateway
from gateway.core.commands import CommandStatus
from gateway.core.entity import Entity
from tests.support.brokers import BrokerHandle
from tests.support.gateway import GatewayFactory
from tests.support.polling import eventually

UNIT_KINDS = {
    ("light", DeviceKind.LIGHT),
    ("dimmer", DeviceKind.LIGHT),
    ("lock", DeviceKind.LOCK),
    ("lock", DeviceKind.BATTERY_SENSOR),
    ("thermostat", DeviceKind.THERMOSTAT),
    ("leak", DeviceKind.LEAK_SENSOR),
    ("leak", DeviceKind.BATTERY_SENSOR),
}


@contextlib.asynccontextmanager
async def unit_sim(
    broker: BrokerHandle, prefix: str, unit: str = "u101", drift_interval: float = 5.0
) -> AsyncIterator[UnitSim]:
    """A simulated unit with quick devices, online."""
    async with UnitSim(
        BrokerAddress(host=broker.host, port=broker.port),
        unit=unit,
        discovery_prefix=prefix,
        base_topic=f"{prefix}-sim",
        command_delay=0.02,
        drift_interval=drift_interval,
    ) as sim:
        await sim.wait_online()
        yield sim


def find(gw: Gateway, unit: str, device: str, kind: DeviceKind) -> Entity:
    """The entity of ``kind`` on the simulated ``device`` of ``unit``."""
    matches = [e for e in gw.registry.entities() if e.key.node_id == f"{unit}-{device}" and e.kind == kind]
    assert len(matches) == 1, f"{unit}-{device} {kind}: {[e.id for e in gw.registry.entities()]}"
    return matches[0]


def unit_ready(gw: Gateway, unit: str = "u101") -> bool:
    """Every entity of the unit discovered, online, with a state."""
    found = {
        (e.key.node_id.removeprefix(f"{unit}-"), e.kind)
        for e in gw.registry.entities()
        if e.key.node_id and e.key.node_id.startswith(f"{unit}-") and e.available and e.state is not None
    }
    return found >= UNIT_KINDS


async def test_every_kind_is_discovered_from_the_simulators(
    broker: BrokerHandle, make_gateway: GatewayFactory, prefix: str
) -> None:
    async with unit_sim(broker, prefix) as _sim, make_gateway() as gw:
        await eventually(lambda: unit_ready(gw), what="all kinds discovered, online, with state")
        thermostat = find(gw, "u101", "thermostat", DeviceKind.THERMOSTAT)
        assert isinstance(thermostat.state, ClimateState) and thermostat.state.current_temperature is not None
        assert (
            find(gw, "u101", "lock", DeviceKind.LOCK).device_id
            == find(gw, "u101", "lock", DeviceKind.BATTERY_SENSOR).device_id
        )


async def test_abrupt_disconnect_goes_offline_by_last_will_and_back_online(
    broker: BrokerHandle, make_gateway: GatewayFactory, prefix: str
) -> None:
    async with unit_sim(broker, prefix) as sim, make_gateway() as gw:
        await eventually(lambda: unit_ready(gw), what="unit ready")
        lock = find(gw, "u101", "lock", DeviceKind.LOCK)
        light = find(gw, "u101", "light", DeviceKind.LIGHT)
        await sim.lock.drop_offline()
        await eventually(lambda: lock.available is False, what="lock offline (last will)")
        assert light.available is True
        result = await gw.commands.execute(lock.id, {"action": "unlock"}, actor="test")
        assert (result.status, result.reason) == (CommandStatus.REJECTED, "device_offline")
        await sim.lock.come_back()
        await eventually(lambda: lock.available is True, what="lock back online")


async def test_commands_confirmed_refused_timed_out(
    broker: BrokerHandle, make_gateway: GatewayFactory, prefix: str
) -> None:
    async with unit_sim(broker, prefix) as sim, make_gateway() as gw:
        await eventually(lambda: unit_ready(gw), what="unit ready")
        dimmer = find(gw, "u101", "dimmer", DeviceKind.LIGHT)
        lock = find(gw, "u101", "lock", DeviceKind.LOCK)
        thermostat = find(gw, "u101", "thermostat", DeviceKind.THERMOSTAT)

        ok = await gw.commands.execute(dimmer.id, {"brightness": 100, "color_temp_kelvin": 3000}, actor="alice")
        assert ok.status is CommandStatus.CONFIRMED, ok
        assert isinstance(dimmer.state, LightState) and dimmer.state.on and dimmer.state.brightness == 100

        heat = await gw.commands.execute(thermostat.id, {"mode": "heat", "target_temperature": 22.5}, actor="alice")
        assert heat.status is CommandStatus.CONFIRMED, heat

        locked = await gw.commands.execute(lock.id, {"action": "lock"}, actor="alice")
        assert locked.status is CommandStatus.CONFIRMED
        sim.lock.jam_next_command()
        jammed = await gw.commands.execute(lock.id, {"action": "unlock"}, actor="bob")
        assert (jammed.status, jammed.reason) == (CommandStatus.REFUSED, "device_jammed")
        assert lock.state == LockState(status=LockStatus.JAMMED)

        sim.dimmer.ignore_commands = True
        late = await gw.commands.execute(dimmer.id, {"on": False}, actor="alice", timeout=0.5)
        assert (late.status, late.reason) == (CommandStatus.TIMED_OUT, "command_timeout")

        history = await gw.commands.history(limit=10)
        assert [(c.actor, c.status) for c in history][:5] == [
            ("alice", "timed_out"),
            ("bob", "refused"),
            ("alice", "confirmed"),
            ("alice", "confirmed"),
            ("alice", "confirmed"),
        ]


@pytest.mark.parametrize(
    ("device", "kind", "command", "reason"),
    [
        ("thermostat", DeviceKind.THERMOSTAT, {"target_temperature": 30.5}, "out_of_range"),
        ("thermostat", DeviceKind.THERMOSTAT, {"target_temperature": 21.3}, "out_of_range"),
        ("thermostat", DeviceKind.THERMOSTAT, {"mode": "dry"}, "out_of_range"),
        ("dimmer", DeviceKind.LIGHT, {"color_temp_kelvin": 9000}, "out_of_range"),
        ("dimmer", DeviceKind.LIGHT, {"brightness": 256}, "command_invalid"),
        ("light", DeviceKind.LIGHT, {"brightness": 50}, "unsupported_feature"),
        ("lock", DeviceKind.LOCK, {"action": "open"}, "command_invalid"),
        ("lock", DeviceKind.LOCK, {"action": "lock", "extra": 1}, "command_invalid"),
        ("leak", DeviceKind.LEAK_SENSOR, {"on": True}, "not_commandable"),
    ],
)
async def test_invalid_commands_are_refused_before_anything_is_published(
    broker: BrokerHandle,
    make_gateway: GatewayFactory,
    prefix: str,
    mqtt: aiomqtt.Client,
    device: str,
    kind: DeviceKind,
    command: dict[str, object],
    reason: str,
) -> None:
    async with unit_sim(broker, prefix) as _sim, make_gateway() as gw:
        await eventually(lambda: unit_ready(gw), what="unit ready")
        entity = find(gw, "u101", device, kind)
        await mqtt.subscribe(f"{prefix}-sim/#", qos=1)
        await asyncio.sleep(0.2)  # let the retained state replay pass before watching for commands
        seen: list[str] = []

        async def watch() -> None:
            async for message in mqtt.messages:
                seen.append(str(message.topic))

        watcher = asyncio.create_task(watch(), name="command-topic-watcher")
        try:
            result = await gw.commands.execute(entity.id, command, actor="test")
            await asyncio.sleep(0.2)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        assert (result.status, result.reason) == (CommandStatus.REJECTED, reason)
        command_topics = entity.config.command_topics()
        assert not [t for t in seen if t in command_topics], seen


async def test_state_and_history_survive_a_gateway_restart(
    broker: BrokerHandle, make_gateway: GatewayFactory, prefix: str
) -> None:
    async with unit_sim(broker, prefix) as _sim, make_gateway() as gw:
        await eventually(lambda: unit_ready(gw), what="unit ready")
        dimmer = find(gw, "u101", "dimmer", DeviceKind.LIGHT)
        result = await gw.commands.execute(dimmer.id, {"brightness": 77}, actor="alice")
        assert result.status is CommandStatus.CONFIRMED
        expected = dimmer.state
    # the unit is gone now: whatever the gateway knows after a restart comes from its database
    async with make_gateway() as gw:
        dimmer = gw.registry.get(dimmer.id)  # type: ignore[assignment]
        assert dimmer is not None and dimmer.state == expected
        assert len(gw.registry.entities()) >= len(UNIT_KINDS)
        assert gw.unclean_previous_run is None
        history = await gw.commands.history(dimmer.id)
        assert [(c.id, c.status) for c in history] == [(result.id, "confirmed")]


async def test_gateway_reconnects_after_broker_restart_and_fails_fast_meanwhile(
    broker: BrokerHandle, make_gateway: GatewayFactory, prefix: str
) -> None:
    async with unit_sim(broker, prefix) as sim, make_gateway() as gw:
        await eventually(lambda: unit_ready(gw), what="unit ready")
        light = find(gw, "u101", "light", DeviceKind.LIGHT)
        connections = gw.link.connections
        await broker.stop()
        await eventually(lambda: not gw.link.connected, what="link down")
        down = await gw.commands.execute(light.id, {"on": True}, actor="test")
        assert (down.status, down.reason) == (CommandStatus.FAILED, "broker_unavailable")
        await broker.start()
        await gw.wait_connected(15)
        assert gw.link.connections == connections + 1
        await sim.wait_online()
        await eventually(lambda: light.available is True, timeout=10, what="light online again")
        result = await gw.commands.execute(light.id, {"on": True}, actor="test")
        assert result.status is CommandStatus.CONFIRMED, result


async def test_a_device_sending_garbage_does_not_affect_another(
    broker: BrokerHandle, make_gateway: GatewayFactory, prefix: str
) -> None:
    async with unit_sim(broker, prefix, drift_interval=3600) as sim, make_gateway() as gw:
        await eventually(lambda: unit_ready(gw), what="unit ready")
        thermostat = find(gw, "u101", "thermostat", DeviceKind.THERMOSTAT)
        light = find(gw, "u101", "light", DeviceKind.LIGHT)
        good = thermostat.state
        topic = next(iter(thermostat.config.state_topics()))
        for payload in (b"\xff\xfe", b"[1,2]", b'{"mode":"party"}', b"x" * (70 * 1024)):
            await sim.thermostat.publish_raw(topic, payload)
        await eventually(lambda: sum(gw.metrics.rejected.values()) >= 4, what="garbage refused")
        assert not thermostat.state_valid
        assert thermostat.state == good
        result = await gw.commands.execute(light.id, {"on": True}, actor="test")
        assert result.status is CommandStatus.CONFIRMED
        await gw.persister.flush()
        with sqlite3.connect(gw.settings.database) as conn:
            error = conn.execute("SELECT state_error FROM current_entities WHERE key=?", (thermostat.id,)).fetchone()[0]
        assert error is not None
