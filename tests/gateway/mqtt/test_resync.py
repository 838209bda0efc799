"""No silent loss: a gateway held up while devices publish detects the gap, resyncs the retained state, and says so.

On Mosquitto with a tiny queue, the broker really drops the burst's messages; on either broker, a handler that loses
what arrives while it is held up stands in for that drop."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import aiomqtt
import pytest

from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.config import BrokerSettings
from gateway.mqtt.transport import InboundMessage
from tests.support.brokers import BrokerHandle, MosquittoProcess, private_mosquitto
from tests.support.gateway import GatewayFactory
from tests.support.polling import eventually
from tests.support.sensors import flood_readings, sensor_config, sensor_values

DEVICES = 20
ROUNDS = 150  # 3,000 state messages: far beyond a 10-message queue and a 4 KiB socket buffer
PAD = "x" * 4000  # 12 MB in all: more than the sockets' buffers hold
STALL = 0.3  # the gateway's stall_seconds in these tests


def _nodes(tag: str) -> list[str]:
    return [f"{tag}n{i}" for i in range(DEVICES)]


async def _announce(client: aiomqtt.Client, prefix: str, nodes: list[str], value: float) -> None:
    for node in nodes:
        await client.publish(f"{prefix}/sensor/{node}/t/config", sensor_config("rs", node), qos=1, retain=True)
        await client.publish(f"rs/{node}/state", json.dumps({"t": value}).encode(), qos=1, retain=True)


def _hold_up(gw: Gateway, until: threading.Event, *, lose: bool) -> list[int]:
    """Make the gateway's handler block its event loop on the next report until ``until`` is set (at least
    ``2 * STALL``); with ``lose``, it also discards every report until the resync begins (a broker's drop, simulated).
    Returns the count of reports handled."""
    handle: Callable[[InboundMessage], None] = gw.registry.handle
    handled = [0]
    holding = [True]

    def held(message: InboundMessage) -> None:
        if message.topic.startswith("rs/"):
            if holding[0]:
                holding[0] = False
                started = time.monotonic()
                until.wait(20)
                time.sleep(max(0.0, 2 * STALL - (time.monotonic() - started)))
            if lose and gw.link.resyncs == 0:
                return
            handled[0] += 1
        handle(message)

    gw.registry.handle = held  # type: ignore[method-assign]
    return handled


def _burst(host: str, port: int, nodes: list[str], rounds: int, done: threading.Event) -> None:
    """Publish ``rounds`` retained QoS 0 reports per device from a thread (the gateway's loop is blocked)."""
    try:
        flood_readings(host, port, "rs", nodes, rounds, float, PAD, wait=20)
        time.sleep(0.3)  # the broker has routed the last of them
    finally:
        done.set()


@pytest.fixture
async def tight_mosquitto(tmp_path: Path) -> AsyncIterator[MosquittoProcess]:
    """A private Mosquitto that queues at most 10 messages per client (2 in flight)."""
    async with private_mosquitto(tmp_path, {"max_queued_messages": "10", "max_inflight_messages": "2"}) as broker:
        yield broker


async def test_a_burst_the_broker_drops_is_detected_and_resynced(
    tight_mosquitto: MosquittoProcess,
    tmp_path: Path,
    clock: ManualClock,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """3,000 reports (12 MB) published while the gateway is held up: Mosquitto drops most of them (more than the
    sockets' buffers hold, and it queues only 10 more); the gateway notices its stall, subscribes again, and ends
    with every device's last retained value, the miss counted and logged."""
    nodes = _nodes(uuid.uuid4().hex[:6])
    host, port = tight_mosquitto.host, tight_mosquitto.port
    async with aiomqtt.Client(host, port, identifier=f"dev-{uuid.uuid4().hex[:8]}") as devices:
        await _announce(devices, prefix, nodes, 0.0)
    factory = GatewayFactory(
        clock,
        {
            "broker": BrokerSettings(host=host, port=port),
            "database": tmp_path / "gateway.sqlite3",
            "discovery_prefix": prefix,
            "client_id": f"gw-{uuid.uuid4().hex[:8]}",
            "state_flush_interval": 0.05,
        },
    )
    caplog.set_level(logging.INFO)
    async with factory(stall_seconds=STALL, resync_seconds=0) as gw:
        await eventually(lambda: sensor_values(gw, nodes) == [0.0] * DEVICES, timeout=10, what="every sensor at 0")
        published = threading.Event()
        handled = _hold_up(gw, published, lose=False)
        burst = asyncio.create_task(asyncio.to_thread(_burst, host, port, nodes, ROUNDS, published))
        await burst
        final = [float(ROUNDS)] * DEVICES
        await eventually(lambda: sensor_values(gw, nodes) == final, timeout=15, what="every sensor at its last value")
        assert gw.metrics.resyncs["gap"] == 1
        assert gw.metrics.recovered["states"] > 0, "the last values came from the broker's retained copies"
        assert gw.metrics.last_resync is not None and "held up" in gw.metrics.last_resync[1]
    # The broker really dropped reports: far fewer than were published reached the gateway (the resync's retained
    # copies included).
    assert handled[0] < DEVICES * ROUNDS / 2, f"{handled[0]} of {DEVICES * ROUNDS} reports reached the gateway"
    assert any("mqtt resync" in r.getMessage() for r in caplog.records)
    assert any("missed change recovered from the retained message (states)" in r.getMessage() for r in caplog.records)


async def test_a_stalled_gateway_resyncs_what_it_lost(
    broker: BrokerHandle, make_gateway: GatewayFactory, prefix: str, mqtt: aiomqtt.Client
) -> None:
    """On either broker: reports lost while the gateway is held up come back as the retained values, counted."""
    nodes = _nodes(uuid.uuid4().hex[:6])[:3]
    await _announce(mqtt, prefix, nodes, 0.0)
    async with make_gateway(stall_seconds=STALL, resync_seconds=0) as gw:
        await eventually(lambda: sensor_values(gw, nodes) == [0.0] * 3, timeout=10, what="every sensor at 0")
        # A change heard live is not counted as recovered (the broker forwards it without the retain flag).
        await mqtt.publish(f"rs/{nodes[0]}/state", b'{"t": 1.0}', qos=1, retain=True)
        await eventually(lambda: sensor_values(gw, nodes)[0] == 1.0, what="a live report")
        assert not gw.metrics.recovered
        published = threading.Event()
        published.set()  # held up for 2 * STALL only
        _hold_up(gw, published, lose=True)
        for node in nodes:
            await mqtt.publish(f"rs/{node}/state", b'{"t": 7.0}', qos=1, retain=True)
        await eventually(lambda: sensor_values(gw, nodes) == [7.0] * 3, timeout=10, what="the lost reports resynced")
        assert gw.metrics.resyncs["gap"] == 1
        # Those lost before the resync began come back from the retained copies (any after it arrive live).
        assert gw.metrics.recovered["states"] >= 1


async def test_a_resync_is_not_a_sign_of_life(
    broker: BrokerHandle, make_gateway: GatewayFactory, prefix: str, mqtt: aiomqtt.Client, clock: ManualClock
) -> None:
    """The retained copies a resync brings back leave last_seen and state_at alone (an hourly resync must not keep a
    dead device looking fresh); the resync is counted and journalled."""
    nodes = _nodes(uuid.uuid4().hex[:6])[:1]
    await _announce(mqtt, prefix, nodes, 3.0)
    async with make_gateway(resync_seconds=0) as gw:
        await eventually(lambda: sensor_values(gw, nodes) == [3.0], timeout=10, what="the sensor at 3")
        entity = gw.registry.get(f"sensor/{nodes[0]}/t")
        assert entity is not None
        seen, state_at = entity.last_seen, entity.state_at
        clock.advance(timedelta(hours=2))
        received = gw.metrics.received
        assert gw.resync("asked by the test")
        # The config and the state come back (the echo and the births may add more).
        await eventually(lambda: gw.metrics.received >= received + 2, what="the retained copies re-sent")
        await gw.persister.flush()
        assert (entity.last_seen, entity.state_at) == (seen, state_at)
        assert gw.metrics.resyncs == {"manual": 1} and not gw.metrics.recovered
        assert gw.metrics.last_resync == (clock.now(), "asked by the test")
