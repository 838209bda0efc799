"""The link's bulk reader: a burst arrives whole and in order, many packets per wake-up, through a real broker; a
handler that fails on one message does not cost the others."""

from __future__ import annotations

import asyncio
import uuid

import aiomqtt

from gateway.config import BrokerSettings
from gateway.mqtt.transport import InboundMessage, MqttLink, Subscription
from tests.support.brokers import BrokerHandle

BURST = 1500  # within the private brokers' queue limits (QoS 1 all the way)


async def test_a_burst_arrives_whole_and_in_order(broker: BrokerHandle) -> None:
    """1,500 QoS 1 messages published back to back reach the handler once each, in publish order, with payloads
    intact (paho's reads are served from one large recv, so packets straddle buffer boundaries)."""
    topic = f"bulk/{uuid.uuid4().hex[:8]}"
    received: list[InboundMessage] = []
    done = asyncio.Event()

    def on_message(message: InboundMessage) -> None:
        received.append(message)
        if len(received) >= BURST:
            done.set()

    settings = BrokerSettings(host=broker.host, port=broker.port)
    link = MqttLink(
        settings,
        client_id=f"bulk-{uuid.uuid4().hex[:8]}",
        subscriptions=[Subscription(topic, 1)],
        on_message=on_message,
    )
    async with link:
        await link.wait_connected(10)
        async with aiomqtt.Client(broker.host, broker.port, identifier=f"pub-{uuid.uuid4().hex[:8]}") as pub:
            for seq in range(BURST):
                # Sizes vary so that packet boundaries fall anywhere in the 64 KiB reads.
                await pub.publish(topic, f"{seq}:".encode() + b"x" * (seq % 700), qos=1)
        async with asyncio.timeout(30):
            await done.wait()
    assert [int(m.payload.split(b":")[0]) for m in received] == list(range(BURST))
    assert all(len(m.payload) == len(f"{i}:") + i % 700 for i, m in enumerate(received))
    assert {m.topic for m in received} == {topic}
    assert link.handler_errors == 0


async def test_a_failing_handler_costs_only_its_message(broker: BrokerHandle) -> None:
    """The handler raising on one message (counted) leaves the link up and the next messages delivered."""
    topic = f"bulk/{uuid.uuid4().hex[:8]}"
    received: list[bytes] = []
    done = asyncio.Event()

    def on_message(message: InboundMessage) -> None:
        if message.payload == b"boom":
            raise RuntimeError("handler bug")
        received.append(message.payload)
        if message.payload == b"last":
            done.set()

    settings = BrokerSettings(host=broker.host, port=broker.port)
    link = MqttLink(
        settings,
        client_id=f"bulk-{uuid.uuid4().hex[:8]}",
        subscriptions=[Subscription(topic, 1)],
        on_message=on_message,
    )
    async with link:
        await link.wait_connected(10)
        async with aiomqtt.Client(broker.host, broker.port, identifier=f"pub-{uuid.uuid4().hex[:8]}") as pub:
            for payload in (b"first", b"boom", b"last"):
                await pub.publish(topic, payload, qos=1)
        async with asyncio.timeout(10):
            await done.wait()
        assert link.connected
    assert received == [b"first", b"last"]
    assert link.handler_errors == 1


async def test_filters_added_and_removed_while_subscribing_end_as_last_asked(broker: BrokerHandle) -> None:
    """Filters come and go while SUBSCRIBEs are on their way (devices announced and removed at start): what the
    link ends up subscribed to is what was last asked, seen by what it receives."""
    base = f"sync/{uuid.uuid4().hex[:8]}"
    topics = [f"{base}/{n}" for n in range(600)]  # three SUBSCRIBE packets
    received: set[str] = set()
    settings = BrokerSettings(host=broker.host, port=broker.port)
    link = MqttLink(
        settings,
        client_id=f"sync-{uuid.uuid4().hex[:8]}",
        subscriptions=[Subscription(f"{base}/done", 1)],
        on_message=lambda m: received.add(m.topic),
    )
    async with link:
        await link.wait_connected(10)
        link.add_subscriptions(topics, qos=1)
        await asyncio.sleep(0)  # the sync starts on the first chunk
        link.remove_subscriptions(topics[::2])  # some of them already on their way
        link.add_subscriptions(topics[:10], qos=1)  # and a few of those wanted again
        wanted = (set(topics) - set(topics[::2])) | set(topics[:10])
        async with asyncio.timeout(20):
            while link._subscribed != wanted | {f"{base}/done"} or link._to_subscribe or link._to_unsubscribe:
                await asyncio.sleep(0.05)
        async with aiomqtt.Client(broker.host, broker.port, identifier=f"pub-{uuid.uuid4().hex[:8]}") as pub:
            for topic in topics:
                await pub.publish(topic, b"x", qos=1)
            await pub.publish(f"{base}/done", b"x", qos=1)
        async with asyncio.timeout(20):
            while f"{base}/done" not in received:
                await asyncio.sleep(0.05)
    assert received - {f"{base}/done"} == wanted


async def test_qos0_and_qos1_messages_interleaved_arrive_once_each_in_order(broker: BrokerHandle) -> None:
    """Messages on a filter subscribed at QoS 0 (parsed in place) and on one at QoS 1 (read by paho), published
    interleaved: each arrives once, in publish order per topic, with its QoS and retain flag (the retained one
    delivered on subscribing, the live ones not)."""
    base = f"mixed/{uuid.uuid4().hex[:8]}"
    plain, acked = f"{base}/q0", f"{base}/q1"
    count = 400
    received: dict[str, list[InboundMessage]] = {plain: [], acked: []}
    done = asyncio.Event()

    def on_message(message: InboundMessage) -> None:
        received[message.topic].append(message)
        if len(received[plain]) == count + 1 and len(received[acked]) == count:
            done.set()

    async with aiomqtt.Client(broker.host, broker.port, identifier=f"pub-{uuid.uuid4().hex[:8]}") as pub:
        await pub.publish(plain, b"retained", qos=1, retain=True)
        link = MqttLink(
            BrokerSettings(host=broker.host, port=broker.port),
            client_id=f"mixed-{uuid.uuid4().hex[:8]}",
            subscriptions=[Subscription(plain, 0), Subscription(acked, 1)],
            on_message=on_message,
        )
        async with link:
            await link.wait_connected(10)
            for seq in range(count):
                await pub.publish(plain, f"{seq}:".encode() + b"p" * (seq % 300), qos=1)
                await pub.publish(acked, f"{seq}:".encode() + b"a" * (seq % 300), qos=1)
            async with asyncio.timeout(30):
                await done.wait()
        await pub.publish(plain, b"", qos=1, retain=True)
    first, *live = received[plain]
    assert (first.payload, first.retain, first.qos) == (b"retained", True, 0)
    assert [m.payload for m in live] == [f"{seq}:".encode() + b"p" * (seq % 300) for seq in range(count)]
    assert {(m.retain, m.qos) for m in live} == {(False, 0)}
    assert [m.payload for m in received[acked]] == [f"{seq}:".encode() + b"a" * (seq % 300) for seq in range(count)]
    assert {(m.retain, m.qos) for m in received[acked]} == {(False, 1)}
    assert link.handler_errors == 0
