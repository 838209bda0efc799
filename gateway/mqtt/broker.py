"""The embedded MQTT broker (amqtt) for a single machine out of the box."""

from __future__ import annotations

import asyncio
import logging
import socket
from types import TracebackType
from typing import Any, Self

from amqtt.broker import Broker

from ..errors import TransportError

__all__ = ["EmbeddedBroker", "free_port"]

log = logging.getLogger(__name__)
_SHUTDOWN_SECONDS = 5.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class _Broker(Broker):  # type: ignore[misc]  # amqtt ships no type information
    """amqtt's broker, sending a client only the retained messages of its own subscriptions.

    amqtt 0.12 calls ``_publish_retained_messages_for_subscription`` on every connection for every topic filter
    that any client subscribed to: a new client got the retained messages of topics it never asked for (another
    unit's lock state), the work grew with clients x retained topics (a reconnect storm of a few hundred devices
    never settled), and the loop iterated the subscription table while other clients changed it ("dictionary
    changed size during iteration": that connection was dropped). Only a filter the session itself holds is
    served; a SUBSCRIBE adds the filter before amqtt serves it, so real subscriptions get theirs as before.
    """

    async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int], session: Any) -> None:
        holders = self._subscriptions.get(subscription[0], ())
        if any(holder is session for holder, _qos in holders):
            await super()._publish_retained_messages_for_subscription(subscription, session)


class EmbeddedBroker:
    """An in-process amqtt broker on ``host:port``; an async context manager.

    Fine for one unit and for tests; a building should use Mosquitto (see deploy/mosquitto.conf).
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self._broker: Broker | None = None

    @property
    def url(self) -> str:
        """The broker's URL, e.g. ``mqtt://127.0.0.1:1883``."""
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        """Start listening; raise TransportError if the port cannot be bound."""
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}", "max_connections": 0}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        broker = _Broker(config)
        try:
            await broker.start()
        except Exception as exc:
            raise TransportError(f"embedded broker failed to start on {self.host}:{self.port}: {exc}") from exc
        self._broker = broker
        log.info("embedded broker listening", extra={"url": self.url})

    async def stop(self) -> None:
        """Stop the broker, dropping every client connection (their last wills fire)."""
        broker, self._broker = self._broker, None
        if broker is None:
            return
        # amqtt's shutdown() waits on each session's reader and can hang on one that is mid-handshake,
        # so stop accepting and cut every client connection first; clients see an abrupt loss, as
        # they would if the broker machine went away, and the sessions then unwind at once.
        for server in getattr(broker, "_servers", {}).values():
            server.instance.close()
        for _session, handler in list(getattr(broker, "_sessions", {}).values()):
            stream = getattr(getattr(handler, "writer", None), "_writer", None)
            transport = getattr(stream, "transport", None)
            if transport is not None:
                transport.abort()
        try:
            async with asyncio.timeout(_SHUTDOWN_SECONDS):
                await broker.shutdown()
        except TimeoutError:
            log.warning("embedded broker shutdown did not finish in %s s", _SHUTDOWN_SECONDS)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
