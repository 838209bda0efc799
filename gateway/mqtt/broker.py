"""The embedded MQTT broker (amqtt) for a single machine out of the box."""

from __future__ import annotations

import asyncio
import logging
import socket
from types import TracebackType
from typing import Any, Self

from amqtt.broker import Broker
from amqtt.contexts import Action as AmqttAction
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.session import Session
from amqtt.utils import format_client_message, gen_client_id

from ..errors import ConfigError, TransportError
from .broker_auth import GateAuthPlugin, GateTopicPlugin, ScopeGate, Verifier
from .tls import TlsListener, is_loopback

__all__ = ["CONNECT_SECONDS", "EmbeddedBroker", "free_port"]

log = logging.getLogger(__name__)
_SHUTDOWN_SECONDS = 5.0
CONNECT_SECONDS = 10.0
"""A connection that has not sent its CONNECT this long after it was accepted is closed (amqtt waits for ever: a
client that connects and says nothing, or half a packet, would hold its connection and memory for good)."""


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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.streams: set[asyncio.StreamWriter] = set()  # every client connection, from its accept to its end
        self._handshaking: set[asyncio.StreamWriter] = set()  # accepted, CONNECT not read yet

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        # amqtt 0.12 leaves a connection open when its CONNECT cannot be read (garbage, a port scan) and has no hold
        # on one still in its handshake at shutdown: both stayed open until garbage-collected, after the event loop
        # at worst ("unclosed socket"). Each connection is known here, and closed when amqtt is done with it.
        self.streams.add(writer)
        self._handshaking.add(writer)
        deadline = asyncio.get_running_loop().call_later(CONNECT_SECONDS, self._connect_overdue, writer)
        try:
            await super().stream_connected(reader, writer, listener_name)
        finally:
            deadline.cancel()
            self.streams.discard(writer)
            self._handshaking.discard(writer)
            writer.close()

    def _connect_overdue(self, writer: asyncio.StreamWriter) -> None:
        if writer in self._handshaking:
            log.warning(
                "embedded broker: no CONNECT within %g s of connecting; closed",
                CONNECT_SECONDS,
                extra={"peer": str(writer.get_extra_info("peername"))},
            )
            writer.transport.abort()

    async def _handle_client_session(self, reader: Any, writer: Any, *args: Any) -> None:
        # Its CONNECT is read (amqtt calls this next, with the stream in its adapter): no longer on the clock.
        self._handshaking.discard(getattr(writer, "_writer", None))
        await super()._handle_client_session(reader, writer, *args)

    async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int], session: Any) -> None:
        holders = self._subscriptions.get(subscription[0], ())
        if any(holder is session for holder, _qos in holders):
            await super()._publish_retained_messages_for_subscription(subscription, session)


class _GatedBroker(_Broker):
    """amqtt's broker that authenticates a CONNECT before it deletes or takes over any session.

    amqtt 0.12 asks its authentication plugins only after it has acted on a CONNECT: a clean-session CONNECT
    deletes the session holding that client id, and any CONNECT takes over a connected one, before the password
    is looked at (one unauthenticated connection with the gateway's client id left it deaf for good). Here the
    plugins run right after CONNECT is read, and a refused client gets CONNACK "not authorised" and is closed
    before any session is touched; amqtt's later call for the same session is answered from that admission.
    """

    def __init__(self, *args: Any, gate: ScopeGate, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gate = gate
        self._admitted: dict[int, Session] = {}  # sessions admitted early, until amqtt asks about them

    async def _topic_filtering(self, session: Session, topic: str, action: AmqttAction) -> bool:
        # amqtt awaits this check while it walks its subscription table to deliver a message; through its plugin
        # manager the check suspends, another client's SUBSCRIBE grows the table, and the delivery dies half-way
        # ("dictionary changed size during iteration": the subscribers after that point never got the message).
        # The gate answers at once (GateTopicPlugin asks it the same).
        return self._gate.checks(session, topic, action)

    async def _authenticate(self, session: Session, listener: Any) -> bool:
        if self._admitted.pop(id(session), None) is session:
            return True
        return bool(await super()._authenticate(session, listener))

    async def _initialize_client_session(
        self, reader: Any, writer: Any, remote_address: str, remote_port: int
    ) -> tuple[BrokerProtocolHandler, Session]:
        # amqtt 0.12's own method, with the authentication moved up before the session table is changed.
        where = format_client_message(address=remote_address, port=remote_port)
        try:
            handler, client_session = await BrokerProtocolHandler.init_from_connect(
                reader, writer, self.plugins_manager
            )
        except AMQTTError as exc:
            self.logger.warning(f"[MQTT-3.1.0-1] {where}: Can't read first packet as CONNECT: {exc}")
            raise AMQTTError(exc) from exc
        except MQTTError as exc:
            self.logger.warning(f"Invalid connection from {where}")
            await writer.close()
            raise MQTTError(exc) from exc
        except NoDataError as exc:
            self.logger.error(f"No data from {where} : {exc}")  # noqa: TRY400 - amqtt's wording and level
            raise AMQTTError(exc) from exc

        if not await super()._authenticate(client_session, None):
            await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
            await writer.close()
            raise MQTTError(f"{where}: not authorised")

        if client_session.clean_session:
            if client_session.client_id:
                await self._delete_session(client_session.client_id)
            else:
                client_session.client_id = gen_client_id()
            client_session.parent = 0
        elif client_session.client_id in self._sessions:
            # The client id's owner resumes its session with this connection's will and credentials.
            existing, _ = self._sessions[client_session.client_id]
            for name in ("will_flag", "will_message", "will_topic", "will_qos", "keep_alive", "username", "password"):
                setattr(existing, name, getattr(client_session, name))
            client_session = existing
            client_session.parent = 1
        else:
            client_session.parent = 0

        delay = self.config.get("timeout-disconnect-delay", 0)
        if client_session.keep_alive > 0 and isinstance(delay, int):
            client_session.keep_alive += delay
        self._admitted[id(client_session)] = client_session
        return handler, client_session


class EmbeddedBroker:
    """An in-process amqtt broker on ``host:port``; an async context manager.

    Fine for one unit and for tests; a building should use Mosquitto (see deploy/mosquitto-dynsec.conf).

    With ``credentials`` (e.g. ``BrokerCredentials.verify``) every client must log in with a live credential and
    the client id it owns, and may publish and subscribe only within its scope (``gateway.mqtt.acl``); without,
    anyone may connect and do anything, as before.

    The plaintext listener is on a loopback address only (ConfigError otherwise): the building's network reaches
    the broker through ``tls``, a TLS listener (port 0: a free one), whose clients log in the same way.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        credentials: Verifier | None = None,
        tls: TlsListener | None = None,
    ) -> None:
        if not is_loopback(host):
            raise ConfigError(
                f"the embedded broker listens without TLS on loopback only, not on {host}: give the building's "
                "network a TLS listener (--listen-tls HOST:PORT)",
                field="listen_host",
            )
        self.host = host
        self.port = port if port is not None else free_port(host)
        if tls is not None and tls.port == 0:
            tls = TlsListener(tls.host, free_port(tls.host), tls.cert, tls.key)
        self.tls = tls
        self._gate = None if credentials is None else ScopeGate(credentials)
        self._broker: Broker | None = None

    @property
    def url(self) -> str:
        """The broker's URL, e.g. ``mqtt://127.0.0.1:1883``."""
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        """Start listening; raise TransportError if the port cannot be bound."""
        anonymous = "amqtt.plugins.authentication.AnonymousAuthPlugin"
        plugins: dict[str, dict[str, Any]] = {anonymous: {"allow_anonymous": True}}
        if self._gate is not None:
            plugins = {_dotted(GateAuthPlugin): {"gate": self._gate}, _dotted(GateTopicPlugin): {"gate": self._gate}}
        listeners: dict[str, dict[str, Any]] = {
            "default": {"type": "tcp", "bind": f"{self.host}:{self.port}", "max_connections": 0}
        }
        if self.tls is not None:
            listeners["tls"] = {
                "type": "tcp",
                "bind": f"{self.tls.host}:{self.tls.port}",
                "max_connections": 0,
                "ssl": True,
                "certfile": str(self.tls.cert),
                "keyfile": str(self.tls.key),
            }
        config = {"listeners": listeners, "plugins": plugins}
        broker = _Broker(config) if self._gate is None else _GatedBroker(config, gate=self._gate)
        try:
            await broker.start()
        except Exception as exc:
            where = f"{self.host}:{self.port}" + ("" if self.tls is None else f" and {self.tls.host}:{self.tls.port}")
            raise TransportError(f"embedded broker failed to start on {where}: {exc}") from exc
        self._broker = broker
        log.info("embedded broker listening", extra={"url": self.url, "tls_url": self.tls and self.tls.url})

    def drop(self, username: str) -> int:
        """Cut the connections of a revoked credential and forget its scope; how many client ids it held.

        Only with ``credentials``: its clients must log in again, which a revoked credential cannot.
        """
        if self._gate is None:
            return 0
        client_ids = self._gate.forget(username)
        if self._broker is not None:
            sessions = getattr(self._broker, "_sessions", {})
            for client_id in client_ids:
                _abort(sessions.get(client_id, (None, None))[1])
        return len(client_ids)

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
            _abort(handler)
        for writer in list(broker.streams):  # those still in their handshake too
            writer.transport.abort()
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


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _abort(handler: Any) -> None:
    """Cut a client's connection at once (an abrupt loss to the client; its last will fires)."""
    stream = getattr(getattr(handler, "writer", None), "_writer", None)
    transport = getattr(stream, "transport", None)
    if transport is not None:
        transport.abort()
