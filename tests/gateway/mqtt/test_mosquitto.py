"""Broker parity on Mosquitto itself: the machine's service on 127.0.0.1:1883, and Mosquitto's default limits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
from fwsim import BrokerAddress, UnitSim

from devices import DeviceKind
from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.config import BrokerSettings, GatewaySettings
from gateway.core.commands import CommandStatus
from gateway.mqtt.broker import free_port
from tests.support.brokers import mosquitto_binary, system_mosquitto_up, wait_port
from tests.support.polling import eventually

pytestmark = pytest.mark.mosquitto


async def _clear_retained(host: str, port: int, filters: list[str]) -> None:
    """Remove every retained message under ``filters`` (tests share the machine's broker)."""
    async with aiomqtt.Client(host, port, identifier=f"cleanup-{uuid.uuid4().hex[:6]}") as client:
        for topic_filter in filters:
            await client.subscribe(topic_filter, qos=0)
        topics: set[str] = set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                async for message in client.messages:
                    if message.retain and message.payload:
                        topics.add(str(message.topic))
        for topic in topics:
            await client.publish(topic, b"", qos=1, retain=True)


@contextlib.asynccontextmanager
async def _gateway(tmp_path: Path, port: int, prefix: str) -> AsyncIterator[Gateway]:
    settings = GatewaySettings(
        broker=BrokerSettings(host="127.0.0.1", port=port),
        database=tmp_path / "gw.sqlite3",
        discovery_prefix=prefix,
        client_id=f"gw-{uuid.uuid4().hex[:8]}",
        command_timeout=2.0,
        state_flush_interval=0.05,
    )
    async with Gateway(settings, clock=ManualClock()) as gw:
        await gw.wait_connected(10)
        yield gw


async def test_on_the_machines_mosquitto(tmp_path: Path) -> None:
    if not system_mosquitto_up():
        pytest.skip("no Mosquitto answers on 127.0.0.1:1883")
    prefix = f"ha{uuid.uuid4().hex[:8]}"
    try:
        async with (
            UnitSim(
                BrokerAddress(host="127.0.0.1", port=1883),
                unit="u900",
                discovery_prefix=prefix,
                base_topic=f"{prefix}-sim",
                command_delay=0.02,
            ) as sim,
            _gateway(tmp_path, 1883, prefix) as gw,
        ):
            await sim.wait_online(10)
            await eventually(
                lambda: len([e for e in gw.registry.entities() if e.available]) >= 7,
                what="unit discovered on the machine's Mosquitto",
            )
            lock = next(e for e in gw.registry.entities() if e.kind == DeviceKind.LOCK)
            result = await gw.commands.execute(lock.id, {"action": "lock"}, actor="test")
            assert result.status is CommandStatus.CONFIRMED
            await sim.lock.drop_offline()
            await eventually(lambda: lock.available is False, what="last will on Mosquitto")
    finally:
        await _clear_retained("127.0.0.1", 1883, [f"{prefix}/#", f"{prefix}-sim/#"])


async def test_all_2000_retained_configs_arrive_despite_mosquitto_default_limits(tmp_path: Path) -> None:
    """Mosquitto's defaults drop retained QoS 1 messages past ~1,020 to one subscriber; the gateway gets all."""
    binary = mosquitto_binary()
    if binary is None:
        pytest.skip("mosquitto is not installed")
    port = free_port()
    conf = tmp_path / "defaults.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\npersistence false\n")
    proc = await asyncio.create_subprocess_exec(
        binary, "-c", str(conf), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        await wait_port("127.0.0.1", port)
        prefix = "homeassistant"
        count = 2000
        async with aiomqtt.Client("127.0.0.1", port, identifier="publisher") as pub:
            for i in range(count):
                config = {
                    "state_topic": f"bulk/{i}/state",
                    "device_class": "temperature",
                    "unit_of_measurement": "°C",
                    "device": {"identifiers": [f"bulk-{i}"]},
                }
                await pub.publish(f"{prefix}/sensor/bulk{i}/t/config", json.dumps(config).encode(), qos=1, retain=True)
                await pub.publish(f"bulk/{i}/state", f"{20 + i % 5}".encode(), qos=1, retain=True)
        async with _gateway(tmp_path, port, prefix) as gw:
            await eventually(
                lambda: len(gw.registry.entities()) == count,
                timeout=30,
                what=f"{count} entities (have {len(gw.registry.entities())})",
            )
            await eventually(
                lambda: all(e.state is not None for e in gw.registry.entities()),
                timeout=30,
                what="every retained state",
            )
    finally:
        proc.kill()
        await proc.wait()
