"""aiomqtt's client with its reads done in bulk: many packets per socket wake-up, QoS 0 messages parsed in place.

aiomqtt (2.x) reads one packet per wake-up of the event loop (paho's ``loop_read`` ignores its ``max_packets`` for
QoS 0), with three ``recv`` calls per packet (the type byte, each length byte, the rest), then puts each message
on an ``asyncio.Queue`` whose iterator creates a task per message. Here the socket is read 64 KiB at a time and
every complete packet is handled in the same wake-up (as Home Assistant's MQTT client does, driving paho from the
loop's socket readiness). A plain QoS 0 PUBLISH, nearly all the gateway receives, is parsed straight from that
buffer (``wire.take_publishes``) and goes to ``sink`` without paho's message objects; every other packet (CONNACK,
SUBACK, PUBACK, PINGRESP, QoS 1 and 2, anything odd or malformed, one split across reads) is read by paho from the
same buffer, one at a time, in stream order. Everything else (connect, TLS, will, publish, subscribe, keep-alive,
disconnect errors) is aiomqtt's, unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Any, Self

import aiomqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from .hold import LIGHT_PACKETS, STREAM_SECONDS, ReadHold
from .wire import InboundMessage, take_publishes

__all__ = ["BulkReadClient", "Sink", "UndecodableTopic"]

Sink = Callable[[InboundMessage], None]
UndecodableTopic = Callable[[bytes], None]
ReadSignal = Callable[[], None]
_READ_SIZE = 65536
_PACKETS_PER_WAKEUP = 2000  # then yield to the loop (timers, the API) and carry on at the next turn
_PARSED = (mqtt.MQTTv31, mqtt.MQTTv311)  # MQTT 5 PUBLISHes carry properties (topic aliases...): paho reads them


class _RecvBuffer:
    """Serves paho's small reads, and the parser, from one large ``recv``; notes when the socket had no more."""

    def __init__(self, recv: Callable[[int], bytes]) -> None:
        self._recv = recv
        self.data = b""
        self.pos = 0
        self.exhausted = False
        self.plain = False  # a plain TCP socket: a read shorter than asked for means it had no more
        self.drained = False  # the last read was short on a plain socket
        self.bytes_read = 0  # from the socket, in all
        self._closed = False
        self._error: OSError | None = None

    @property
    def buffered(self) -> int:
        """Bytes read from the socket and not yet handled."""
        return len(self.data) - self.pos

    def reset(self) -> None:
        """Forget what a previous socket left."""
        self.data, self.pos, self.exhausted, self._closed, self._error = b"", 0, False, False, None
        self.drained = False

    def fill(self) -> bool:
        """Read what the socket has into the (used up) buffer; False when it had nothing (BlockingIOError).

        The end of the stream, or a failed read, is kept for paho's next read to meet, as it would have.
        """
        try:
            data = self._recv(_READ_SIZE)
        except BlockingIOError:
            self.exhausted = True
            return False
        except OSError as exc:
            self._error = exc
            return True
        if data:
            self.data, self.pos = data, 0
            self.bytes_read += len(data)
            self.drained = self.plain and len(data) < _READ_SIZE
        else:
            self._closed = True
        return True

    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes: from the buffer, else from one large read (BlockingIOError when none is waiting)."""
        if self.pos >= len(self.data):
            if self._error is None and not self._closed and not self.fill():
                raise BlockingIOError
            if self._error is not None:
                raise self._error
            if self._closed:
                return b""  # the peer closed: paho sees a lost connection
        end = self.pos + size
        chunk = self.data[self.pos : end]
        self.pos = min(end, len(self.data))
        return chunk


class BulkReadClient(aiomqtt.Client):
    """An ``aiomqtt.Client`` whose received messages go to ``sink`` (never to ``client.messages``, which then only
    raises when the connection is lost), read many packets per wake-up.

    ``on_undecodable`` gets the raw topic of a message whose topic is not UTF-8 (not delivered). ``on_backlog`` is
    called when a wake-up found more packets waiting than it handles in one go (the gateway is behind the broker),
    ``on_drained`` when a wake-up read everything the socket had. ``hold`` lets reads gather at a quiet rate
    (``gateway.mqtt.hold``); ``on_held_read`` is called after a held read.
    """

    def __init__(
        self,
        *args: Any,
        sink: Sink,
        on_undecodable: UndecodableTopic | None = None,
        on_backlog: ReadSignal | None = None,
        on_drained: ReadSignal | None = None,
        hold: ReadHold | None = None,
        on_held_read: ReadSignal | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._hold = hold or ReadHold()
        self._on_held_read = on_held_read or _nothing
        self._held: asyncio.TimerHandle | None = None
        self._release_soon: asyncio.Handle | None = None
        self._socket: Any = None
        self._sink = sink
        self._on_undecodable = on_undecodable or _ignore
        self._on_backlog = on_backlog or _nothing
        self._on_drained = on_drained or _nothing
        self._buffer = _RecvBuffer(self._client._sock_recv)
        setattr(self._client, "_sock_recv", self._buffer.recv)  # noqa: B010 - an instance attribute shadows it
        self._parse = self._client._protocol in _PARSED

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        """paho's callback, for what the parser left to paho (QoS 1 and 2, a topic that is not UTF-8)."""
        try:
            topic = message.topic
        except UnicodeDecodeError:
            self._on_undecodable(message._topic)
            return
        payload = message.payload
        self._sink(
            InboundMessage(topic, payload if type(payload) is bytes else bytes(payload), message.retain, message.qos)
        )

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._buffer.reset()
        # TLS (or a websocket) may hold bytes it has read but not handed out yet: only a plain socket's short read
        # says it had no more.
        self._buffer.plain = type(sock) is socket.socket
        loop = self._loop

        fd = sock.fileno()

        def opened() -> None:
            if self._client._sock is not sock:
                return  # closed before the loop got here (aiomqtt added a reader to it all the same)
            self._socket, self._hold.stream_until = sock, 0.0
            self._hold.attach(self._expedited)
            loop.add_reader(fd, self._readable)
            self._misc_task = loop.create_task(self._misc_loop())

        # paho calls this from the executor thread aiomqtt connects on.
        loop.call_soon_threadsafe(opened)

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._unhold()
        self._hold.detach(self._expedited)
        self._socket = None
        super()._on_socket_close(client, userdata, sock)

    # --- read coalescing (gateway.mqtt.hold) ---------------------------------------------------------

    def _readable(self) -> None:
        """The socket has bytes (while held: enough to read early, or the end of the stream): read them now, or let
        more gather."""
        if self._held is not None:
            # Enough gathered before the hold's time: a stream, read as it comes for a while.
            self._hold.early += 1
            self._hold.stream_until = self._loop.time() + STREAM_SECONDS
            self._release()
        elif self._may_hold() and not self._peer_closed():
            self._hold_for_more()
        else:
            self._read_ready()

    def _may_hold(self) -> bool:
        return self._hold.may_hold(self._loop.time())

    def _hold_for_more(self) -> None:
        """Wake on ``early_bytes`` waiting, or when the hold's time is up."""
        self._hold.holds += 1
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, self._hold.early_bytes)
        self._held = self._loop.call_later(self._hold.seconds, self._paced_read)

    def _peer_closed(self) -> bool:
        """Whether a plain socket's waiting bytes are only the end of the stream (not held: a lost broker is seen
        at once)."""
        if not self._buffer.plain:
            return False
        try:
            return bool(self._socket.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"")
        except OSError:
            return True  # an error to meet now, by reading

    def _paced_read(self) -> None:
        """The hold's time is up: read what gathered; while messages keep coming at a quiet rate, the next read is
        held as well, from now (no wake-up for the first byte of each), until a read finds nothing."""
        self._held = None
        handled = self._read_ready(paced=True)
        if handled and self._may_hold() and self._socket is not None:
            self._hold_for_more()
        else:
            self._unhold()
        self._on_held_read()

    def _release(self) -> None:
        """End the hold early and read everything waiting."""
        if self._unhold():
            self._read_ready()
            self._on_held_read()

    def _unhold(self) -> bool:
        """Cancel the hold, if any, and wake on any byte again; whether there was one."""
        held, self._held = self._held, None
        if self._release_soon is not None:
            self._release_soon.cancel()
            self._release_soon = None
        if held is not None:
            held.cancel()
        with contextlib.suppress(OSError, AttributeError):  # the connection is gone: the read meets it
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
        return held is not None

    def _expedited(self) -> None:
        """Someone needs answers at once: a held read is released at the loop's next turn."""
        if self._held is not None and self._release_soon is None:
            self._hold.early += 1
            self._release_soon = self._loop.call_soon(self._release)

    # --- connect, publish, subscribe, unsubscribe: their acknowledgements are waited for ---------------

    async def __aenter__(self) -> Self:
        with self._hold.expedite():  # the CONNACK
            await super().__aenter__()
        return self

    async def publish(self, *args: Any, **kwargs: Any) -> None:
        with self._hold.expedite():
            await super().publish(*args, **kwargs)

    async def subscribe(self, *args: Any, **kwargs: Any) -> Any:
        with self._hold.expedite():
            return await super().subscribe(*args, **kwargs)

    async def unsubscribe(self, *args: Any, **kwargs: Any) -> None:
        with self._hold.expedite():
            await super().unsubscribe(*args, **kwargs)

    def _read_ready(self, *, paced: bool = False) -> int:
        """The socket is readable: handle every complete packet waiting, up to ``_PACKETS_PER_WAKEUP``; how many.
        ``paced``: what a hold that ran its time gathered (however many, a quiet rate still)."""
        client, buffer, sink = self._client, self._buffer, self._sink
        buffer.exhausted = buffer.drained = False
        handled = parsed = 0
        bytes_before = buffer.bytes_read
        try:
            while handled < _PACKETS_PER_WAKEUP:
                if buffer.drained and buffer.pos >= len(buffer.data):
                    # A short read took all the socket had: no second recv to meet BlockingIOError (one a message at
                    # low rates); more arriving meanwhile wakes the loop again.
                    buffer.exhausted = True
                    break
                # paho in the middle of a packet (one split across reads) finishes it first.
                if self._parse and client._in_packet["command"] == 0:
                    if buffer.pos >= len(buffer.data) and not buffer.fill():
                        break
                    buffer.pos, taken = take_publishes(buffer.data, buffer.pos, _PACKETS_PER_WAKEUP - handled, sink)
                    handled += taken
                    parsed += taken
                    if handled >= _PACKETS_PER_WAKEUP:
                        break
                    if taken and buffer.pos >= len(buffer.data):
                        continue  # all taken: read on (paho would read the next packet, its own slow way)
                # The packet at hand is not one the parser takes (or not all here yet): paho reads exactly it.
                if _paho_read_one(client) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    return handled
                handled += 1
                if buffer.exhausted:
                    break
        except Exception as exc:  # noqa: BLE001 - as aiomqtt: a failed read is a lost connection
            if not self._disconnected.done():
                self._disconnected.set_exception(exc)
            return handled
        finally:
            if parsed:
                with client._msgtime_mutex:  # what paho notes of each packet it reads, for its keep-alive
                    client._last_bytes_received = mqtt.time_func()
            # Many packets gathered by a hold that ran its time are a quiet rate still (less than early_bytes a hold).
            heavy = handled >= LIGHT_PACKETS or buffer.bytes_read - bytes_before >= self._hold.early_bytes
            if heavy and not paced:
                self._hold.stream_until = self._loop.time() + STREAM_SECONDS
        if buffer.exhausted:
            self._on_drained()
            return handled
        self._on_backlog()
        # Packets left in our buffer, or decrypted TLS bytes left in the SSL object: the socket may never wake us for
        # them.
        pending = getattr(client._sock, "pending", None)
        if buffer.buffered or (pending is not None and pending() > 0):
            self._loop.call_soon(self._read_ready)
        return handled


def _paho_read_one(client: mqtt.Client) -> MQTTErrorCode:
    """paho's ``loop_read`` for one packet (it reads one per message in flight, which a parser must not let it)."""
    if client._sock is None:
        return MQTTErrorCode.MQTT_ERR_NO_CONN
    rc = client._packet_read()
    if rc > 0:
        return client._loop_rc_handle(rc)
    return MQTTErrorCode.MQTT_ERR_SUCCESS


def _nothing() -> None:
    """No one listens."""


def _ignore(topic: bytes) -> None:
    """No one listens."""
