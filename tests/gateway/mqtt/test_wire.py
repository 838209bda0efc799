"""The QoS 0 PUBLISH parser, alone on crafted bytes and inside the bulk reader: a byte stream gives the same messages,
in stream order with what paho reads (QoS 1, SUBACK), however it is split across reads; a malformed packet is a lost
connection, as it was when paho read everything."""

from __future__ import annotations

import asyncio
import socket
import struct

import aiomqtt
import pytest

from gateway.mqtt.fastclient import BulkReadClient
from gateway.mqtt.wire import InboundMessage, take_publishes


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish(topic: bytes | str, payload: bytes, *, retain: bool = False, qos: int = 0, mid: int = 0) -> bytes:
    """A PUBLISH packet as a broker sends it (MQTT 3.1.1)."""
    name = topic.encode() if isinstance(topic, str) else topic
    body = struct.pack("!H", len(name)) + name + (struct.pack("!H", mid) if qos else b"") + payload
    return bytes([0x30 | qos << 1 | int(retain)]) + _length(len(body)) + body


def suback(mid: int) -> bytes:
    """A SUBACK granting QoS 0 to one filter."""
    return bytes([0x90, 3]) + struct.pack("!H", mid) + b"\x00"


def take_all(data: bytes, limit: int = 10_000) -> tuple[list[InboundMessage], int]:
    got: list[InboundMessage] = []
    pos, taken = take_publishes(data, 0, limit, got.append)
    assert taken == len(got)
    return got, pos


# The parser alone


def test_messages_with_every_length_encoding_retain_and_empty_payload() -> None:
    """Remaining lengths of 1 to 4 bytes, the retain bit and an empty payload come out as sent, in order."""
    # Bodies of 127/128, 16,383/16,384 and 2,097,151/2,097,152 bytes: each side of 1/2, 2/3 and 3/4 length bytes
    # ("t/é" is 4 bytes, after 2 of its length).
    sizes = [0, 10, 121, 122, 16_377, 16_378, 2_097_145, 2_097_146]
    packets = [publish("t/é", bytes([n % 251]) * n, retain=n % 2 == 1) for n in sizes]
    assert [len(_length(n + 6)) for n in sizes] == [1, 1, 1, 2, 2, 3, 3, 4]
    stream = b"".join(packets)
    got, pos = take_all(stream)
    assert pos == len(stream)
    assert got == [InboundMessage("t/é", bytes([n % 251]) * n, n % 2 == 1, 0) for n in sizes]


@pytest.mark.parametrize(
    "packet",
    [
        publish("t", b"x", qos=1, mid=7),
        publish("t", b"x", qos=2, mid=7),
        bytes([0x38]) + publish("t", b"x")[1:],  # DUP on QoS 0: not allowed, paho's to judge
        suback(3),
        publish("", b"x"),  # no topic: MQTT 3.1.1 forbids it
        publish(b"t\xff", b"x"),  # not UTF-8
        b"\x30\x05\x00\x09abc",  # a topic longer than its packet
        b"\x30\xff\xff\xff\xff\x01",  # a remaining length of 5 bytes
        b"\x30\x01\x00",  # too short to hold a topic length
    ],
)
def test_stops_at_a_packet_it_does_not_take(packet: bytes) -> None:
    """Anything but a well-formed QoS 0 PUBLISH stops the parser there, after the messages before it."""
    before = publish("a", b"1")
    got, pos = take_all(before + packet + publish("b", b"2"))
    assert got == [InboundMessage("a", b"1", False, 0)]
    assert pos == len(before)


def test_a_packet_not_all_here_is_left_whole() -> None:
    """Every prefix of a packet (a 3-byte length among them) is left where it starts."""
    first = publish("a", b"1")
    packet = publish("s/1", b"y" * 20_000, retain=True)
    for cut in range(len(packet)):
        got, pos = take_all(first + packet[:cut])
        assert (got, pos) == ([InboundMessage("a", b"1", False, 0)], len(first)), cut


def test_takes_at_most_the_limit() -> None:
    stream = b"".join(publish(f"t/{n}", b"x") for n in range(5))
    got, pos = take_all(stream, limit=3)
    assert [m.topic for m in got] == ["t/0", "t/1", "t/2"]
    assert pos == len(b"".join(publish(f"t/{n}", b"x") for n in range(3)))


# Inside the bulk reader: a client on one end of a socket pair, as if connected; the test is the broker


class _Wire:
    """A BulkReadClient whose socket is one end of a socket pair; ``send`` writes the other end and lets the client
    read once (one ``recv`` of what was sent), so that each send is one read."""

    def __init__(self, protocol: aiomqtt.ProtocolVersion | None = None, *, plain: bool = False) -> None:
        self.events: list[object] = []
        self.client = BulkReadClient(
            "127.0.0.1",
            1,
            identifier="wire-test",
            protocol=protocol,
            sink=self.events.append,
            on_undecodable=lambda topic: self.events.append(("undecodable", topic)),
        )
        self.ours, self.broker = socket.socketpair()
        self.ours.setblocking(False)
        self.broker.settimeout(5)
        paho = self.client._client
        paho._sock = self.ours
        paho.on_subscribe = lambda *args: self.events.append(("suback", args[2]))
        self.client._connected.set_result(None)  # aiomqtt reports a lost connection only once connected
        self.client._buffer.reset()
        self.client._buffer.plain = plain  # as connecting sets it for a plain TCP socket: a short read ends a wake-up

    def send(self, data: bytes) -> None:
        self.broker.sendall(data)
        self.client._read_ready()

    def close(self) -> None:
        self.client._client._sock = None
        self.ours.close()
        self.broker.close()


async def _read_sent(wire: _Wire, size: int) -> bytes:
    """What the client wrote to the broker (paho writes from the loop's writer callback)."""
    for _ in range(20):
        await asyncio.sleep(0)
    return wire.broker.recv(size)


# A payload made of PUBLISH packets: a read that begins inside it must not be taken for packets.
DECOY = publish("decoy", b"!") * 20

STREAM = [
    publish("dev/1/state", b'{"on":true}'),
    publish("dev/2/state", DECOY, retain=True),  # a 2-byte remaining length
    publish("dev/3/state", b""),
    publish("dev/4/set", b"q1", qos=1, mid=7),  # paho's: delivered in place and acknowledged
    suback(3),  # paho's: its callback in place
    publish("dev/5/state", b"last"),
]
EXPECTED = [
    InboundMessage("dev/1/state", b'{"on":true}', False, 0),
    InboundMessage("dev/2/state", DECOY, True, 0),
    InboundMessage("dev/3/state", b"", False, 0),
    InboundMessage("dev/4/set", b"q1", False, 1),
    ("suback", 3),
    InboundMessage("dev/5/state", b"last", False, 0),
]


@pytest.mark.parametrize("plain", [False, True], ids=["tls-like", "plain"])
async def test_a_stream_split_at_every_byte_arrives_whole_and_in_order(plain: bool) -> None:
    """The stream sent in two reads, cut at each byte in turn (inside a length, a topic, paho's packets): the same
    messages and SUBACK, in stream order, and the QoS 1 message acknowledged."""
    stream = b"".join(STREAM)
    for cut in range(len(stream) + 1):
        wire = _Wire(plain=plain)
        try:
            wire.send(stream[:cut])
            wire.send(stream[cut:])
            assert wire.events == EXPECTED, cut
            assert not wire.client._disconnected.done()
            assert await _read_sent(wire, 4) == b"\x40\x02\x00\x07", cut  # PUBACK, mid 7
        finally:
            wire.close()


@pytest.mark.parametrize("plain", [False, True], ids=["tls-like", "plain"])
async def test_a_stream_read_one_byte_at_a_time(plain: bool) -> None:
    stream = b"".join(STREAM)
    wire = _Wire(plain=plain)
    try:
        for n in range(len(stream)):
            wire.send(stream[n : n + 1])
        assert wire.events == EXPECTED
    finally:
        wire.close()


async def test_a_topic_that_is_not_utf8_is_reported_and_the_rest_delivered() -> None:
    wire = _Wire()
    try:
        wire.send(publish("a", b"1") + publish(b"bad\xff", b"2") + publish("c", b"3"))
        assert wire.events == [
            InboundMessage("a", b"1", False, 0),
            ("undecodable", b"bad\xff"),
            InboundMessage("c", b"3", False, 0),
        ]
        assert not wire.client._disconnected.done()
    finally:
        wire.close()


@pytest.mark.parametrize(
    "malformed",
    [
        b"\x30\xff\xff\xff\xff\x01",  # a remaining length of 5 bytes
        publish("", b"x"),  # an empty topic
        b"\x30\x05\x00\x09abc",  # a topic longer than its packet
        b"\xf0\x00",  # a packet type MQTT 3.1.1 does not have
    ],
)
async def test_a_malformed_packet_is_a_lost_connection(malformed: bytes) -> None:
    """The messages before it are delivered, then the connection counts as lost (never a crash of the loop)."""
    wire = _Wire()
    try:
        wire.send(publish("a", b"1") + malformed + publish("b", b"2"))
        assert wire.events == [InboundMessage("a", b"1", False, 0)]
        assert wire.client._disconnected.done()
        assert wire.client._disconnected.exception() is not None
    finally:
        wire.close()


async def test_the_peer_closing_is_a_lost_connection() -> None:
    wire = _Wire()
    try:
        wire.broker.sendall(publish("a", b"1"))
        wire.broker.shutdown(socket.SHUT_WR)
        wire.client._read_ready()
        assert wire.events == [InboundMessage("a", b"1", False, 0)]
        error = wire.client._disconnected.exception()
        assert isinstance(error, aiomqtt.MqttError)
    finally:
        wire.close()


async def test_received_bytes_count_for_the_keep_alive() -> None:
    """paho pings, then gives up on the broker, by when it last received anything: parsed messages count."""
    wire = _Wire()
    try:
        paho = wire.client._client
        paho._last_bytes_received = 0.0
        wire.send(publish("a", b"1"))
        assert paho._last_bytes_received > 0.0
    finally:
        wire.close()


async def test_mqtt5_is_left_to_paho() -> None:
    """An MQTT 5 PUBLISH carries properties (a topic alias among them) the parser does not read: paho reads them."""
    aliased = b"\x31\x0b\x00\x03a/b\x03\x23\x00\x01hi"  # retained; properties: topic alias 1; payload "hi"
    plain = b"\x30\x08\x00\x03a/b\x00hi"  # no properties
    wire = _Wire(aiomqtt.ProtocolVersion.V5)
    try:
        wire.send(aliased + plain)
        assert wire.events == [InboundMessage("a/b", b"hi", True, 0), InboundMessage("a/b", b"hi", False, 0)]
    finally:
        wire.close()


class _ChunkSocket:
    """A socket whose reads return the given chunks one by one, then nothing waiting: data arriving mid-wake-up."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def recv(self, size: int) -> bytes:
        if not self.chunks:
            raise BlockingIOError
        return self.chunks.pop(0)

    def pending(self) -> int:
        return 0


async def test_messages_arriving_during_a_wake_up_are_parsed_too() -> None:
    """Reads that each end on a packet boundary: every QoS 0 message is taken by the parser, none by paho's path."""
    wire = _Wire()
    try:
        paho = wire.client._client
        paho._sock = _ChunkSocket([publish(f"t/{n}", b"x" * n) for n in range(5)])  # type: ignore[assignment]
        paho.on_message = lambda *args: wire.events.append("paho's path")
        wire.client._read_ready()
        assert wire.events == [InboundMessage(f"t/{n}", b"x" * n, False, 0) for n in range(5)]
    finally:
        wire.close()


async def test_a_short_read_of_a_plain_socket_ends_the_wake_up_and_the_next_one_reads_on() -> None:
    """On a plain socket a read shorter than asked for took all it had: the wake-up ends there (no second read to
    find nothing), and what arrived meanwhile is read at the next wake-up, in order."""
    wire = _Wire(plain=True)
    try:
        paho = wire.client._client
        chunks = [publish("t/0", b"a"), publish("t/1", b"bb") + suback(3), publish("t/2", b"")]
        paho._sock = _ChunkSocket(chunks)  # type: ignore[assignment]
        wire.client._read_ready()
        assert wire.events == [InboundMessage("t/0", b"a", False, 0)]
        wire.client._read_ready()
        wire.client._read_ready()
        assert wire.events == [
            InboundMessage("t/0", b"a", False, 0),
            InboundMessage("t/1", b"bb", False, 0),
            ("suback", 3),
            InboundMessage("t/2", b"", False, 0),
        ]
        wire.client._read_ready()  # nothing waiting: nothing delivered, the connection still up
        assert len(wire.events) == 4 and not wire.client._disconnected.done()
    finally:
        wire.close()
