"""Read coalescing (gateway.mqtt.hold) through a real broker: quiet messages are read together after the hold, a
burst and an expedited block are read at once, a lost broker is seen at once, and nothing is lost or reordered."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import aiomqtt
import pytest

from gateway.config import BrokerSettings
from gateway.mqtt.hold import EARLY_BYTES, STREAM_SECONDS, ReadHold
from gateway.mqtt.transport import InboundMessage, MqttLink, Subscription
from tests.support.brokers import BrokerHandle
from tests.support.polling import eventually


class Reads:
    """What the link delivered, each message with the number of the held read it came in (0: before the first)."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.batch: list[int] = []
        self.at: list[float] = []
        self.held_reads = 0
        self.probes = 0

    def on_message(self, message: InboundMessage) -> None:
        if message.topic.endswith("/probe"):
            self.probes += 1
            return
        self.messages.append(message)
        self.batch.append(self.held_reads)
        self.at.append(asyncio.get_running_loop().time())

    def on_held_read(self) -> None:
        self.held_reads += 1


def _link(broker: BrokerHandle, topic: str, reads: Reads, hold: float) -> MqttLink:
    return MqttLink(
        BrokerSettings(host=broker.host, port=broker.port),
        client_id=f"hold-{uuid.uuid4().hex[:8]}",
        subscriptions=[Subscription(f"{topic}/#", 0)],
        on_message=reads.on_message,
        read_hold=hold,
        on_held_read=reads.on_held_read,
    )


async def _publisher(broker: BrokerHandle) -> aiomqtt.Client:
    return aiomqtt.Client(broker.host, broker.port, identifier=f"pub-{uuid.uuid4().hex[:8]}")


async def _settled(link: MqttLink, pub: aiomqtt.Client, topic: str, reads: Reads) -> None:
    """Connected and subscribed: a probe published inside an expedited block has come back (then forgotten)."""
    await link.wait_connected(10)
    with link.expedite():
        while not reads.probes:
            await pub.publish(f"{topic}/probe", b"probe", qos=0)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)  # a second probe still on its way
    reads.held_reads = 0
    link.hold.holds = link.hold.early = 0


@pytest.fixture
def topic() -> str:
    return f"hold/{uuid.uuid4().hex[:8]}"


async def test_quiet_messages_wait_for_the_hold_and_are_read_together(broker: BrokerHandle, topic: str) -> None:
    """Ten messages 10 ms apart: none is handled before the hold's time, all ten in one held read, in order."""
    reads = Reads()
    hold = 1.0
    async with _link(broker, topic, reads, hold) as link, await _publisher(broker) as pub:
        await _settled(link, pub, topic, reads)
        loop = asyncio.get_running_loop()
        first = loop.time()
        for seq in range(10):
            await pub.publish(f"{topic}/s", str(seq).encode(), qos=0)
            await asyncio.sleep(0.01)
        await eventually(lambda: len(reads.messages) == 10, timeout=10, what="ten messages")
        assert [m.payload for m in reads.messages] == [str(i).encode() for i in range(10)]
        assert reads.at[0] - first >= hold * 0.9, "the first message was held for the hold's time"
        assert set(reads.batch) == {0}, f"one held read took all ten: {reads.batch}"
        assert reads.held_reads >= 1 and link.hold.holds >= 1


async def test_a_steady_quiet_stream_is_read_a_hold_at_a_time_without_losing_any(
    broker: BrokerHandle, topic: str
) -> None:
    """Messages every 20 ms for 1.5 s with a 0.3 s hold: every message arrives once, in order, in a handful of
    held reads (not one wake-up each)."""
    reads = Reads()
    async with _link(broker, topic, reads, 0.3) as link, await _publisher(broker) as pub:
        await _settled(link, pub, topic, reads)
        for seq in range(75):
            await pub.publish(f"{topic}/s", str(seq).encode(), qos=0)
            await asyncio.sleep(0.02)
        await eventually(lambda: len(reads.messages) == 75, timeout=10, what="75 messages")
        assert [m.payload for m in reads.messages] == [str(i).encode() for i in range(75)]
        assert len(set(reads.batch)) <= 15, f"read in {len(set(reads.batch))} batches"


async def test_a_burst_is_read_before_the_hold_is_up(broker: BrokerHandle, topic: str) -> None:
    """Far more than EARLY_BYTES arriving during a 30 s hold wakes the reader at once (the socket's low-water mark):
    every message, in order, long before the hold's time."""
    reads = Reads()
    count, size = 400, 200
    assert count * size > 2 * EARLY_BYTES
    async with _link(broker, topic, reads, 30.0) as link, await _publisher(broker) as pub:
        await _settled(link, pub, topic, reads)
        for seq in range(count):
            await pub.publish(f"{topic}/b", f"{seq}:".encode() + b"x" * size, qos=0)
        await eventually(lambda: len(reads.messages) == count, timeout=10, what="the burst, long before 30 s")
        assert [int(m.payload.split(b":")[0]) for m in reads.messages] == list(range(count))
        assert link.hold.early >= 1


async def test_after_a_burst_and_a_quiet_spell_reads_are_held_again(broker: BrokerHandle, topic: str) -> None:
    """A burst is read as it comes; STREAM_SECONDS after it, quiet messages are held again, even right after a
    small read at once (a stream's signs are counted per read, not over the connection's life)."""
    reads = Reads()
    async with _link(broker, topic, reads, 1.0) as link, await _publisher(broker) as pub:
        await _settled(link, pub, topic, reads)
        for _ in range(400):
            await pub.publish(f"{topic}/b", b"x" * 200, qos=0)
        await eventually(lambda: len(reads.messages) == 400, timeout=10, what="the burst")
        await asyncio.sleep(STREAM_SECONDS + 0.5)
        with link.expedite():  # a command's answer, say: a read at once, of one small message
            await pub.publish(f"{topic}/c", b"answer", qos=0)
            await eventually(lambda: len(reads.messages) == 401, timeout=5, what="the answer")
        holds, batch = link.hold.holds, reads.held_reads
        first = asyncio.get_running_loop().time()
        for seq in range(5):
            await pub.publish(f"{topic}/q", str(seq).encode(), qos=0)
            await asyncio.sleep(0.01)
        await eventually(lambda: len(reads.messages) == 406, timeout=10, what="five quiet messages")
        assert link.hold.holds > holds, "the quiet messages were held"
        assert set(reads.batch[401:]) == {batch}, f"in one held read: {reads.batch[401:]}"
        assert reads.at[401] - first >= 0.9


async def test_an_expedited_block_reads_at_once(broker: BrokerHandle, topic: str) -> None:
    """A message held by a 30 s hold is read as soon as a block needs answers at once, and inside the block nothing
    is held; after it, reads are held again."""
    reads = Reads()
    async with _link(broker, topic, reads, 30.0) as link, await _publisher(broker) as pub:
        await _settled(link, pub, topic, reads)
        await pub.publish(f"{topic}/e", b"held", qos=0)
        await eventually(lambda: link.hold.holds >= 1, timeout=10, what="the read held")
        await asyncio.sleep(0.2)
        assert reads.messages == []
        with link.expedite():
            await eventually(lambda: len(reads.messages) == 1, timeout=5, what="the held message, released")
            await pub.publish(f"{topic}/e", b"at once", qos=0)
            await eventually(lambda: len(reads.messages) == 2, timeout=5, what="a message inside the block")
        holds = link.hold.holds
        await pub.publish(f"{topic}/e", b"held again", qos=0)
        await eventually(lambda: link.hold.holds > holds, timeout=10, what="held again after the block")
        await asyncio.sleep(0.2)
        assert [m.payload for m in reads.messages] == [b"held", b"at once"]


async def test_a_lost_broker_is_seen_at_once_while_reads_are_held(broker: BrokerHandle, topic: str) -> None:
    """The broker going away while a read is held (30 s) is noticed at once: the end of the stream wakes the
    reader whatever the low-water mark."""
    reads = Reads()
    async with _link(broker, topic, reads, 30.0) as link:
        async with await _publisher(broker) as pub:
            await _settled(link, pub, topic, reads)
            await pub.publish(f"{topic}/l", b"held", qos=0)
            await eventually(lambda: link.hold.holds >= 1, timeout=10, what="the read held")
        await broker.stop()
        await eventually(lambda: not link.connected, timeout=5, what="the lost broker noticed")
        assert [m.payload for m in reads.messages] == [b"held"], "the held message was read before the end"


def test_a_hold_cannot_be_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        ReadHold(-1.0)


def test_expedite_releases_every_attached_reader_and_nests() -> None:
    hold = ReadHold(1.0)
    released: list[str] = []
    release_a: Callable[[], None] = lambda: released.append("a")  # noqa: E731
    hold.attach(release_a)
    assert hold.may_hold(0.0)
    with hold.expedite():
        assert not hold.may_hold(0.0)
        with hold.expedite():
            assert hold.urgent
        assert hold.urgent
    assert hold.may_hold(0.0) and released == ["a", "a"]
    hold.detach(release_a)
    hold.detach(release_a)  # twice: no error
    with hold.expedite():
        pass
    assert released == ["a", "a"]
    assert not ReadHold(0.0).may_hold(0.0)
    hold.stream_until = 5.0  # a stream seen: nothing held before then
    assert not hold.may_hold(4.0) and not hold.quiet(4.0)
    assert hold.may_hold(5.0)
