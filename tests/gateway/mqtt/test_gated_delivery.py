"""The gated embedded broker delivers every message while clients come and go (as a simulated unit starts beside
the gateway): amqtt asks its topic check while it walks its subscription table, and the check must not let another
client's SUBSCRIBE change that table half-way through a delivery."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiomqtt

from tests.support.secure_brokers import embedded_secured

MESSAGES = 300


async def test_every_message_is_delivered_while_other_clients_subscribe(tmp_path: Path) -> None:
    async with embedded_secured(tmp_path) as broker:
        username, password = broker.gateway

        def gateway_client(client_id: str) -> aiomqtt.Client:
            return aiomqtt.Client(
                broker.host, broker.port, username=username, password=password, identifier=client_id, timeout=5
            )

        async def churn(stop: asyncio.Event) -> None:
            # New filters, each a new key in the broker's subscription table, while messages are delivered.
            async with gateway_client(f"churn-{uuid.uuid4().hex[:6]}") as churner:
                n = 0
                while not stop.is_set():
                    await churner.subscribe(f"churn/{n}", qos=0)
                    n += 1

        async with (
            gateway_client("early") as early,
            gateway_client("observer") as observer,
            gateway_client("publisher") as publisher,
        ):
            # A subscription earlier in the table than the observer's: a delivery suspended on its topic check
            # while the table grows would end before it reaches the observer.
            await early.subscribe("t/+", qos=0)
            await observer.subscribe("t/#", qos=1)
            stop = asyncio.Event()
            async with asyncio.TaskGroup() as tasks:
                for _ in range(4):
                    tasks.create_task(churn(stop), name="churn")
                for i in range(MESSAGES):
                    await publisher.publish(f"t/{i}", str(i).encode(), qos=1)
                await publisher.publish("t/end", b"end", qos=1)
                got = []
                async with asyncio.timeout(20):
                    async for message in observer.messages:
                        if str(message.topic) == "t/end":
                            break
                        got.append(int(bytes(message.payload)))
                stop.set()
    assert sorted(got) == list(range(MESSAGES))
