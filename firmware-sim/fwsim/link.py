"""One device's MQTT connection: last will, TCP_NODELAY, reconnects with backoff, and abrupt drops."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Awaitable, Callable, Iterable

import aiomqtt

from devices import Publish

from .address import BrokerAddress
from .backoff import Backoff

__all__ = ["TCP_NODELAY", "DeviceLink", "DeviceOffline"]

log = logging.getLogger(__name__)

TCP_NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
_GOODBYE_TIMEOUT = 2.0

OnConnect = Callable[[aiomqtt.Client], Awaitable[None]]
OnMessage = Callable[[aiomqtt.Client, aiomqtt.Message], Awaitable[None]]


class DeviceOffline(RuntimeError):
    """The device has no broker connection right now."""


class DeviceLink:
    """Keeps one device's MQTT client connected; ``run()`` is the supervisor loop."""

    # On every (re)connect it subscribes to ``topics()`` (QoS 1), awaits ``on_connect`` (the device
    # announces itself) and then feeds every message to ``on_message``.

    def __init__(
        self,
        address: BrokerAddress,
        *,
        client_id: str,
        will: Callable[[], Publish],
        topics: Callable[[], Iterable[str]],
        on_connect: OnConnect,
        on_message: OnMessage,
        backoff: Backoff | None = None,
        keepalive: int = 15,
        timeout: float = 5.0,
        connect_gate: asyncio.Semaphore | None = None,
    ) -> None:
        self.address = address
        self.client_id = client_id
        self.connections = 0
        self._will = will
        self._topics = topics
        self._on_connect = on_connect
        self._on_message = on_message
        self._backoff = backoff or Backoff()
        self._keepalive = keepalive
        self._timeout = timeout
        # Shared by a fleet's devices, held from connecting until announced: thousands coming online at once (after
        # a broker restart) in one process each wait over 5 s for their CONNACK, SUBACK or PUBACKs, time out and
        # start again, for ever; a few dozen at a time come online in about a millisecond each.
        self._connect_gate = connect_gate
        self._rng = random.Random()
        self._client: aiomqtt.Client | None = None
        self._online = asyncio.Event()
        self._down = asyncio.Event()
        self._down.set()
        self._released = asyncio.Event()
        self._released.set()
        self._offline_until: float | None = None

    @property
    def client(self) -> aiomqtt.Client | None:
        """The connected, subscribed client, or None."""
        return self._client

    @property
    def is_online(self) -> bool:
        """Whether connected and announced."""
        return self._online.is_set()

    @property
    def held_offline(self) -> bool:
        """Whether a fault keeps the device off the broker."""
        return not self._released.is_set()

    async def wait_online(self, timeout: float | None = None) -> None:
        """Wait until connected and announced; raise TimeoutError after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            await self._online.wait()

    async def wait_offline(self, timeout: float | None = None) -> None:
        """Wait until no connection is up; raise TimeoutError after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            await self._down.wait()

    def drop(self, seconds: float | None) -> None:
        """Cut the connection abruptly and stay off the broker until ``release()`` (or for ``seconds``)."""
        loop = asyncio.get_running_loop()
        self._offline_until = None if seconds is None else loop.time() + seconds
        self._released.clear()
        self._online.clear()
        client, self._client = self._client, None
        if client is not None:
            _cut(client)

    def release(self) -> None:
        """End an offline spell; the supervisor reconnects at once."""
        self._offline_until = None
        self._released.set()

    async def send(self, publishes: Iterable[Publish]) -> None:
        """Publish if connected; while offline, skip (the device republishes on reconnect)."""
        client = self._client
        if client is None:
            return
        try:
            for p in publishes:
                await client.publish(p.topic, p.payload, qos=p.qos, retain=p.retain)
        except aiomqtt.MqttError as exc:
            log.debug("%s: publish failed (%s); republishing on reconnect", self.client_id, exc)

    async def send_now(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        """Publish at QoS 1 or raise DeviceOffline / aiomqtt.MqttError."""
        client = self._client
        if client is None:
            raise DeviceOffline(f"{self.client_id} is offline")
        await client.publish(topic, payload, qos=1, retain=retain)

    async def goodbye(self, last: Publish) -> None:
        """Graceful shutdown: publish ``last`` (offline) ourselves, since a clean DISCONNECT suppresses the will."""
        client = self._client
        if client is None or not self._online.is_set():
            return
        self._online.clear()
        try:
            async with asyncio.timeout(_GOODBYE_TIMEOUT):
                # Stop deliveries first: closing a socket with unread data resets the connection.
                await client.unsubscribe(list(self._topics()))
                await client.publish(last.topic, last.payload, qos=last.qos, retain=last.retain)
        except (aiomqtt.MqttError, TimeoutError) as exc:
            log.debug("%s: could not say goodbye (%s)", self.client_id, exc)

    async def run(self) -> None:
        """The supervisor: connect, serve, and reconnect with capped exponential backoff + jitter, forever."""
        attempt = 0
        while True:
            await self._wait_released()
            connections = self.connections
            try:
                await self._session()
            except (aiomqtt.MqttError, OSError) as exc:
                if self.held_offline:
                    log.info("%s: offline (fault)", self.client_id)
                    continue
                log.info("%s: connection lost or refused: %s", self.client_id, exc)
            if self.connections != connections:
                attempt = 0
            delay = self._backoff.delay(attempt, self._rng)
            attempt += 1
            await asyncio.sleep(delay)

    async def _wait_released(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._released.is_set():
            until = self._offline_until
            remaining = None if until is None else until - loop.time()
            if remaining is not None and remaining <= 0:
                self.release()
                break
            try:
                async with asyncio.timeout(remaining):
                    await self._released.wait()
            except TimeoutError:
                continue

    def _new_client(self) -> aiomqtt.Client:
        will = self._will()
        return aiomqtt.Client(
            self.address.host,
            self.address.port,
            username=self.address.username,
            password=self.address.password,
            identifier=self.client_id,
            will=aiomqtt.Will(will.topic, will.payload, qos=will.qos, retain=will.retain),
            clean_session=True,
            keepalive=self._keepalive,
            timeout=self._timeout,
            tls_context=self.address.tls_context(),
        )

    async def _session(self) -> None:
        # Held from the connect until the device is announced (or the attempt fails): see ``connect_gate``.
        gate = _Gate(self._connect_gate)
        await gate.enter()
        try:
            client = self._new_client()
            try:
                await client.__aenter__()
            except asyncio.CancelledError:
                _abandon(client)
                raise
            try:
                await self._serve(client, gate)
            finally:
                self._client = None
                self._online.clear()
                self._down.set()
                try:
                    await client.__aexit__(None, None, None)
                finally:
                    _abandon(client)
        finally:
            gate.leave()

    async def _serve(self, client: aiomqtt.Client, gate: _Gate) -> None:
        sock = client._client.socket()
        if isinstance(sock, socket.socket):
            sock.setsockopt(*TCP_NODELAY)
        self.connections += 1
        self._down.clear()
        if self.held_offline:  # dropped while connecting
            _cut(client)
        await client.subscribe([(topic, 1) for topic in self._topics()])
        self._client = client
        await self._on_connect(client)
        self._online.set()
        gate.leave()
        log.info("%s: online (connection %d)", self.client_id, self.connections)
        lost = client._disconnected
        async for message in client.messages:
            await _unless_lost(self._on_message(client, message), lost)


async def _unless_lost(work: Awaitable[None], lost: asyncio.Future[None]) -> None:
    """Await ``work``, or raise MqttError at once if the connection is lost first.

    aiomqtt's publish waits its full timeout for a PUBACK that a lost connection will never bring: a device
    answering Home Assistant's birth (every device at once) when the broker stops would notice the loss seconds late.
    """
    task = asyncio.ensure_future(work)
    try:
        await asyncio.wait((task, lost), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait((task,))  # never raises: our own cancellation still propagates
            if not task.cancelled():
                task.exception()  # retrieved: what it raised while being cancelled does not matter now
    if task.done() and not task.cancelled():
        task.result()  # its own error, if any
        return
    if not lost.cancelled():
        lost.exception()  # retrieved here: the session's end returns early on a lost connection
    raise aiomqtt.MqttError("connection lost while handling a message")


class _Gate:
    """One hold of a fleet's connect gate (or of none), released once."""

    def __init__(self, semaphore: asyncio.Semaphore | None) -> None:
        self._semaphore = semaphore
        self._held = False

    async def enter(self) -> None:
        """Wait for a place (at once without a gate)."""
        if self._semaphore is not None:
            await self._semaphore.acquire()
            self._held = True

    def leave(self) -> None:
        """Give the place back; a second call does nothing."""
        if self._held and self._semaphore is not None:
            self._held = False
            self._semaphore.release()


def _cut(client: aiomqtt.Client) -> None:
    """Shut the TCP connection down without an MQTT DISCONNECT, so the broker publishes the will."""
    sock = client._client.socket()
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError as exc:
            log.debug("socket shutdown failed: %s", exc)


def _abandon(client: aiomqtt.Client) -> None:
    """Close paho's socket if a failed connection left it open (paho's close also unregisters it)."""
    if client._client.socket() is not None:
        client._client._sock_close()
