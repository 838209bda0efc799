"""The gateway with its broker reads held at a quiet rate (gateway.mqtt.hold): commands and the liveness echo are
answered as they come, and what a held read brought is written at once, not a flush interval later."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time

import aiomqtt

from devices import DeviceKind, LockStatus
from gateway.core.commands import CommandStatus
from tests.gateway.test_unit_sim import find, unit_ready, unit_sim
from tests.support.brokers import BrokerHandle
from tests.support.gateway import GatewayFactory
from tests.support.polling import eventually
from tests.support.sensors import sensor_config


async def test_commands_and_the_echo_are_not_held(
    broker: BrokerHandle, make_gateway: GatewayFactory, prefix: str
) -> None:
    """Reads held up to 5 s: a command is still confirmed within its 2 s timeout (its PUBACK and the device's
    confirming state read as they come), and the liveness echo comes back within 2 s."""
    async with unit_sim(broker, prefix) as sim, make_gateway(read_hold_seconds=5.0, command_timeout=2.0) as gw:
        with gw.link.expedite():  # the unit's retained announcements, read at once for the test's sake
            await eventually(lambda: unit_ready(gw), timeout=10, what="the unit discovered")
        lock = find(gw, "u101", "lock", DeviceKind.LOCK)
        for action, status in (("unlock", LockStatus.UNLOCKED), ("lock", LockStatus.LOCKED)):
            result = await gw.commands.execute(lock.id, {"action": action}, actor="test")
            assert result.status is CommandStatus.CONFIRMED, result
            assert sim.lock.state.status is status
        assert await gw.echo.round_trip(2.0) < 2000
        assert not gw.link.hold.urgent


async def test_a_held_read_is_written_at_once(
    broker: BrokerHandle, make_gateway: GatewayFactory, prefix: str, mqtt: aiomqtt.Client
) -> None:
    """A report read after a 0.3 s hold is in the database well before the 10 s flush interval."""
    node = f"q{time.monotonic_ns() % 10**9}"
    async with make_gateway(read_hold_seconds=0.3, state_flush_interval=10.0) as gw:
        await mqtt.publish(f"{prefix}/sensor/{node}/t/config", sensor_config("rs", node), qos=1, retain=True)
        with gw.link.expedite():
            await eventually(lambda: any(e.key.node_id == node for e in gw.registry.entities()), what="discovered")
        await gw.persister.flush()  # the discovery is written: what follows is the report alone
        holds = gw.link.hold.holds
        started = time.monotonic()
        await mqtt.publish(f"rs/{node}/state", json.dumps({"t": 21.5}).encode(), qos=1, retain=True)
        await eventually(lambda: gw.link.hold.holds > holds, what="the report's read held")
        db = gw.settings.database

        def stored() -> bool:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                rows = conn.execute("SELECT state FROM current_entities WHERE key LIKE ?", (f"%{node}%",)).fetchall()
            return any(r[0] is not None and "21.5" in r[0] for r in rows)

        await eventually(stored, timeout=8, what="the held report written")
        assert time.monotonic() - started < 8


async def test_a_stall_while_reads_are_held_is_still_noticed(make_gateway: GatewayFactory) -> None:
    """At a quiet rate the stall watcher ticks at half the stall time (here 0.3 s, over its usual 0.25 s): the event
    loop held up for 1.5 stall times is noticed whenever it starts (three starts 0.3 s apart: a tick of 1 s would
    miss at least one), and the broker's retained state read again."""
    for idle in (0.45, 0.75, 1.05):
        async with make_gateway(read_hold_seconds=0.3, stall_seconds=0.6, resync_seconds=0) as gw:
            assert gw.link.hold.quiet(asyncio.get_running_loop().time())
            await asyncio.sleep(idle)  # the watcher asleep in its quiet tick
            assert gw.metrics.resyncs["gap"] == 0
            time.sleep(0.9)  # noqa: ASYNC251 - the point: the event loop held up
            await eventually(lambda: gw.metrics.resyncs["gap"] == 1, timeout=3, what=f"the stall after {idle} s seen")
