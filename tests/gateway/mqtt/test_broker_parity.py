"""Broker parity: what the gateway relies on holds on the embedded broker exactly as on Mosquitto."""

from __future__ import annotations

import asyncio
import uuid

import aiomqtt

from tests.support.brokers import BrokerHandle

CLIENTS = 100


async def _received(client: aiomqtt.Client, seconds: float) -> list[tuple[str, bytes]]:
    got: list[tuple[str, bytes]] = []
    try:
        async with asyncio.timeout(seconds):
            async for message in client.messages:
                payload = message.payload
                got.append((str(message.topic), payload if isinstance(payload, bytes) else str(payload).encode()))
    except TimeoutError:
        pass
    return got


async def test_a_client_gets_the_retained_messages_of_its_own_subscriptions_only(broker: BrokerHandle) -> None:
    """A device connecting must not be sent another unit's retained lock state because the gateway subscribed it."""
    tag = uuid.uuid4().hex[:8]
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"pub-{tag}") as pub:
        await pub.publish(f"{tag}/u1/lock/state", b"LOCKED", qos=1, retain=True)
        await pub.publish(f"{tag}/u2/own/state", b"mine", qos=1, retain=True)
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"gateway-{tag}") as gateway:
        await gateway.subscribe(f"{tag}/+/lock/state", qos=0)
        assert await _received(gateway, 0.5) == [(f"{tag}/u1/lock/state", b"LOCKED")]
        async with aiomqtt.Client(broker.host, broker.port, identifier=f"device-{tag}") as device:
            await device.subscribe(f"{tag}/u2/own/state", qos=1)
            # Its own subscription's retained message comes (so the check below can tell), nothing else does.
            assert await _received(device, 1.0) == [(f"{tag}/u2/own/state", b"mine")]


async def test_a_hundred_devices_connecting_at_once_all_come_up_with_their_retained_state(broker: BrokerHandle) -> None:
    """A reconnect storm while the gateway holds a wildcard over their retained states: every device connects."""
    tag = uuid.uuid4().hex[:8]
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"seed-{tag}") as seed:
        for i in range(CLIENTS):
            await seed.publish(f"{tag}/dev{i}/state", f"s{i}".encode(), qos=1, retain=True)
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"gateway-{tag}") as gateway:
        await gateway.subscribe(f"{tag}/+/state", qos=0)
        up: list[int] = []

        async def device(i: int) -> None:
            async with aiomqtt.Client(broker.host, broker.port, identifier=f"dev{i}-{tag}", timeout=10) as client:
                await client.subscribe([(f"{tag}/dev{i}/set", 1), (f"{tag}/dev{i}/state", 1)])
                got = await _received(client, 1.5)
                assert got == [(f"{tag}/dev{i}/state", f"s{i}".encode())], got
                up.append(i)

        async with asyncio.timeout(30):
            results = await asyncio.gather(*(device(i) for i in range(CLIENTS)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        assert not failures, f"{len(failures)} of {CLIENTS} devices failed, e.g. {failures[:3]!r}"
        assert sorted(up) == list(range(CLIENTS))
