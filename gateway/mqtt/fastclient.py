"""aiomqtt's client with paho read in bulk: many packets per socket wake-up, handed straight to a callback.

aiomqtt (2.x) reads one packet per wake-up of the event loop (paho's ``loop_read`` ignores its ``max_packets`` for
QoS 0), with three ``recv`` calls per packet (the type byte, each length byte, the rest), then puts each message
on an ``asyncio.Queue`` whose iterator creates a task per message. Measured on the bench, that path was 38 % of the
gateway's CPU per state message. Here the socket is read 64 KiB at a time into a buffer paho's reads are served
from, every complete packet is handled in the same wake-up (as Home Assistant's MQTT client does, driving paho
from the loop's socket readiness), and each message goes to ``sink`` synchronously, from paho's own callback.
Everything else (connect, TLS, will, publish, subscribe, keep-alive, disconnect errors) is aiomqtt's, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiomqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

__all__ = ["BulkReadClient", "RawSink"]

RawSink = Callable[[mqtt.MQTTMessage], None]
ReadSignal = Callable[[], None]
_READ_SIZE = 65536
_PACKETS_PER_WAKEUP = 2000  # then yield to the loop (timers, the API) and carry on at the next turn


class _RecvBuffer:
    """Serves paho's small reads from one large ``recv``; notes when the socket had nothing more to give."""

    def __init__(self, recv: Callable[[int], bytes]) -> None:
        self._recv = recv
        self._data = b""
        self._pos = 0
        self.exhausted = False

    @property
    def buffered(self) -> int:
        """Bytes read from the socket and not yet handed to paho."""
        return len(self._data) - self._pos

    def reset(self) -> None:
        """Forget what a previous socket left."""
        self._data, self._pos, self.exhausted = b"", 0, False

    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes: from the buffer, else from one large read (BlockingIOError when none is waiting)."""
        if self._pos >= len(self._data):
            try:
                data = self._recv(_READ_SIZE)
            except BlockingIOError:
                self.exhausted = True
                raise
            if not data:
                return data  # the peer closed: paho sees it as a lost connection
            self._data, self._pos = data, 0
        end = self._pos + size
        chunk = self._data[self._pos : end]
        self._pos = min(end, len(self._data))
        return chunk


class BulkReadClient(aiomqtt.Client):
    """An ``aiomqtt.Client`` whose received messages go to ``sink`` (never to ``client.messages``, which then only
    raises when the connection is lost), read many packets per wake-up.

    ``on_backlog`` is called when a wake-up found more packets waiting than it handles in one go (the gateway is
    behind the broker), ``on_drained`` when a wake-up read everything the socket had.
    """

    def __init__(
        self,
        *args: Any,
        sink: RawSink,
        on_backlog: ReadSignal | None = None,
        on_drained: ReadSignal | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._sink = sink
        self._on_backlog = on_backlog or _nothing
        self._on_drained = on_drained or _nothing
        self._buffer = _RecvBuffer(self._client._sock_recv)
        setattr(self._client, "_sock_recv", self._buffer.recv)  # noqa: B010 - an instance attribute shadows it

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._sink(message)

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        buffer = self._buffer
        buffer.reset()
        loop = self._loop

        def read() -> None:
            buffer.exhausted = False
            try:
                for _ in range(_PACKETS_PER_WAKEUP):
                    if client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                        return
                    if buffer.exhausted:
                        self._on_drained()
                        return
                self._on_backlog()
                # Packets left in our buffer, or decrypted TLS bytes left in the SSL object: the socket may never
                # wake us for them.
                pending = getattr(client._sock, "pending", None)
                if buffer.buffered or (pending is not None and pending() > 0):
                    loop.call_soon(read)
            except Exception as exc:  # noqa: BLE001 - as aiomqtt: a failed read is a lost connection
                if not self._disconnected.done():
                    self._disconnected.set_exception(exc)

        def create_misc_task() -> None:
            self._misc_task = loop.create_task(self._misc_loop())

        # paho calls this from the executor thread aiomqtt connects on.
        loop.call_soon_threadsafe(loop.add_reader, sock.fileno(), read)
        loop.call_soon_threadsafe(create_misc_task)


def _nothing() -> None:
    """No one listens."""
