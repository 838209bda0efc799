"""The gateway's one MQTT connection: a reconnect supervisor over aiomqtt."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Self

import aiomqtt

from ..backoff import Backoff
from ..config import BrokerSettings
from ..errors import BrokerUnavailable
from ..tasks import stop_tasks
from .drops import DROPPED_TOPIC, DropCounter, DropReport
from .fastclient import BulkReadClient
from .hold import ReadHold
from .wire import InboundMessage

__all__ = [
    "Backoff",
    "Birth",
    "DropListener",
    "InboundMessage",
    "LinkState",
    "MqttLink",
    "ResyncListener",
    "Subscription",
]

log = logging.getLogger(__name__)

TCP_NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
STALL_SECONDS = 1.0
"""The event loop held up this long: the broker may have dropped QoS 0 messages to us meanwhile (see resubscribe)."""
RESYNC_MIN_SECONDS = 60.0
"""At most one gap-triggered resync this often: each makes the broker re-send every retained message."""
DROP_WINDOW_SECONDS = 15.0
"""A broker's drop counted as the gateway's own if the gateway was behind this recently (Mosquitto's counter comes
every ``sys_interval``, 10 s by default, and only once it changed; longer, and another client's drops soon after a
resync's retained flood were taken for the gateway's, measured on the bench)."""
CAUGHT_UP_SECONDS = 1.0
"""A resync for the broker's drops waits until the gateway has not been behind for this long: one sent while the
broker still drops would be lost with the rest."""
BEHIND_MESSAGES = 500
"""A wake-up that read this many messages before the socket ran dry counts as behind (fastclient's own backlog
signal needs 2,000, which large messages never reach before the buffers of both sockets are empty)."""
PROBE_MIN_SECONDS = 5.0
"""At most one re-read of the broker's retained drop counter this often, after a backlog was read."""
_GAP_TICK = 0.25
_SYNC_RETRY_SECONDS = 1.0
_CHUNK = 200  # topic filters per SUBSCRIBE packet
SESSION_TAKEN_OVER = 0x8E  # MQTT v5 DISCONNECT reason: another client connected with this client id
SHORT_SESSION_SECONDS = 2.0
"""A connection the broker ends sooner than this after it came up counts as cut short."""
SHORT_SESSIONS_SUSPECT = 3
"""Cut short this many times in a row: on MQTT 3.1.1 (no reason code) the sign of a client id used twice."""


class LinkState(StrEnum):
    """Where the supervisor is."""

    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    BACKOFF = "backoff"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Subscription:
    """A topic filter to (re)subscribe on every connection."""

    topic_filter: str
    qos: int = 0


@dataclass(frozen=True, slots=True)
class Birth:
    """A message published on every (re)connection, once subscribed."""

    topic: str
    payload: bytes
    retain: bool = False


MessageHandler = Callable[[InboundMessage], None]
StateListener = Callable[[LinkState], None]
ResyncListener = Callable[[str, str], None]
"""Told (reason, kind) of each resync; kind is a stable word: gap, drop, periodic, manual."""
DropListener = Callable[[DropReport], None]
"""Told of each increase of the broker's dropped-messages counter, and whether the gateway was behind meanwhile."""


class MqttLink:
    """Owns the broker connection: connects, resubscribes on every reconnect, publishes, fails fast when down."""

    def __init__(
        self,
        broker: BrokerSettings,
        *,
        client_id: str,
        subscriptions: Sequence[Subscription],
        on_message: MessageHandler,
        on_state: StateListener | None = None,
        will: aiomqtt.Will | None = None,
        births: Sequence[Birth] = (),
        backoff: Backoff | None = None,
        on_resync: ResyncListener | None = None,
        stall_seconds: float = STALL_SECONDS,
        watch_drops: bool = False,
        on_drops: DropListener | None = None,
        read_hold: float = 0.0,
        on_held_read: Callable[[], None] | None = None,
    ) -> None:
        """``watch_drops``: subscribe to the broker's count of dropped messages (``gateway.mqtt.drops``) and resync
        when it grows while the gateway is behind. ``read_hold``: at a quiet rate, let messages gather this long
        before reading them (``gateway.mqtt.hold``); ``on_held_read`` is called after each such read."""
        self.hold = ReadHold(read_hold)
        self._on_held_read = on_held_read
        self._broker = broker
        self._client_id = client_id
        self._desired: dict[str, int] = {s.topic_filter: s.qos for s in subscriptions}
        if watch_drops:
            self._desired[DROPPED_TOPIC] = 0  # a broker that does not publish it (amqtt) sends nothing: no harm
        self._subscribed: set[str] = set()
        # What the next sync sends: kept up to date as filters come and go, so that a sync costs what changed,
        # not a pass over every filter (5,000 devices announce one by one at start).
        self._to_subscribe: dict[str, int] = dict(self._desired)
        self._to_unsubscribe: set[str] = set()
        self._changed = asyncio.Event()
        self._on_message = on_message
        self._on_state = on_state
        self._will = will
        self._births = tuple(births)
        self._backoff = backoff or Backoff()
        self._state = LinkState.IDLE
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._tasks: asyncio.TaskGroup | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._subscriber: asyncio.Task[None] | None = None  # the current session's subscription syncer
        self.connections = 0
        self.handler_errors = 0
        self._closing = False
        self._connected_at: float | None = None
        self._short_sessions = 0
        self._session_deadline: asyncio.Timeout | None = None  # ends the current session early (reconnect())
        self._reset_reason: str | None = None
        # Messages paho read before the session's receive phase began, handed over in order when it does (so that
        # nothing is handled before the link says connected, as when aiomqtt queued them).
        self._early: list[InboundMessage] | None = []
        # Gap detection: why the broker may have dropped messages to us (None: no reason to think so), and how many
        # wake-ups read the socket dry (the watcher's sign that a backlog is gone).
        self._on_resync = on_resync
        self._stall_seconds = stall_seconds
        self._gap: str | None = None
        self._gap_kind = "gap"
        self._drained = 0
        # The broker's drop counter: when the gateway was last behind (a backlog, a stall), whether the counter should
        # be read again once that backlog is read (the live update may itself have been dropped), the drops not yet
        # resynced for.
        self._watch_drops = watch_drops
        self._on_drops = on_drops
        self._drops = DropCounter()
        self._behind_at: float | None = None
        self._probe_due = False
        self._last_probe: float | None = None
        self._pending_drops = 0
        self._read = 0  # messages since the last wake-up that read the socket dry
        self._watcher: asyncio.Task[None] | None = None
        self._last_resync: float | None = None
        self.resyncs = 0
        self.backlogs = 0

    @property
    def state(self) -> LinkState:
        """The supervisor's current state."""
        return self._state

    @property
    def client_id(self) -> str:
        """The MQTT client id this link connects with."""
        return self._client_id

    @property
    def connected(self) -> bool:
        """Whether a connection is up and subscribed."""
        return self._state is LinkState.CONNECTED

    def was_behind(self, within: float) -> bool:
        """Whether the link read a backlog (or the event loop stalled) in the last ``within`` seconds: a reply sent
        meanwhile may be queued behind the backlog, or dropped with it, without the link being deaf."""
        behind_at = self._behind_at
        return behind_at is not None and asyncio.get_running_loop().time() - behind_at <= within

    def reconnect(self, reason: str) -> bool:
        """End the current connection and let the supervisor connect (and subscribe) anew; False when not connected.

        For a connection that looks up but no longer delivers (its session taken over, its subscriptions lost): the
        broker cannot be trusted to say so, so the gateway's own liveness check decides.
        """
        deadline = self._session_deadline
        if deadline is None or not self.connected or self._reset_reason is not None:
            return False
        self._reset_reason = reason
        deadline.reschedule(asyncio.get_running_loop().time())  # the receive loop ends at once, cleanly
        return True

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until connected and subscribed; raise BrokerUnavailable on timeout."""
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError as exc:
            raise BrokerUnavailable(f"no connection to {self._broker.url} within {timeout} s") from exc

    def add_subscriptions(self, filters: Iterable[str], qos: int = 0) -> None:
        """Subscribe to ``filters`` now if connected, and on every reconnect."""
        for topic_filter in filters:
            unchanged = self._desired.get(topic_filter) == qos and topic_filter in self._subscribed
            self._desired[topic_filter] = qos
            self._to_unsubscribe.discard(topic_filter)
            if not unchanged:  # subscribing again would make the broker send its retained messages again
                self._to_subscribe[topic_filter] = qos
        self._changed.set()

    def remove_subscriptions(self, filters: Iterable[str]) -> None:
        """Stop subscribing to ``filters``."""
        for topic_filter in filters:
            self._desired.pop(topic_filter, None)
            self._to_subscribe.pop(topic_filter, None)
            if topic_filter in self._subscribed:
                self._to_unsubscribe.add(topic_filter)
        self._changed.set()

    def resubscribe(self, reason: str, kind: str = "gap") -> bool:
        """Subscribe to every filter again, so that the broker re-sends each one's retained messages; False when not
        connected (a new connection subscribes to everything anyway).

        MQTT says a SUBSCRIBE to a filter already subscribed replaces the subscription and re-sends the retained
        messages matching it: the latest retained config, state and availability of every device come back. What a
        device published without retain and the broker dropped does not.
        """
        self._forget_gap()
        if not self.connected:
            return False
        self._last_resync = asyncio.get_running_loop().time()
        self.resyncs += 1
        self._to_subscribe.update(self._desired)
        self._to_unsubscribe.difference_update(self._desired)
        self._changed.set()
        log.warning(
            "mqtt resync: subscribing to %d topic filters again so that the broker re-sends their retained "
            "messages (%s)",
            len(self._desired),
            reason,
            extra={"broker": self._broker.url, "reason": reason},
        )
        if self._on_resync is not None:
            self._on_resync(reason, kind)
        return True

    def expedite(self) -> contextlib.AbstractContextManager[None]:
        """A block that needs received messages at once (no read is held meanwhile; see ``gateway.mqtt.hold``)."""
        return self.hold.expedite()

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Publish and, for QoS 1, wait for the broker's PUBACK; raise BrokerUnavailable when down."""
        client = self._client
        if client is None or not self.connected:
            raise BrokerUnavailable(f"broker {self._broker.url} is not connected")
        try:
            await client.publish(topic, payload, qos=qos, retain=retain, timeout=10)
        except aiomqtt.MqttError as exc:
            raise BrokerUnavailable(f"publish to {topic!r} failed: {exc}") from exc

    async def __aenter__(self) -> Self:
        self._tasks = asyncio.TaskGroup()
        await self._tasks.__aenter__()
        self._supervisor = self._tasks.create_task(self._supervise(), name=f"mqtt-supervisor[{self._client_id}]")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing = True
        assert self._tasks is not None
        try:
            try:
                # Cancelled again until ended: aiomqtt's waits can swallow a cancellation (see stop_tasks).
                await stop_tasks([t for t in (self._supervisor, self._subscriber, self._watcher) if t is not None])
            finally:
                await self._tasks.__aexit__(None, None, None)  # the caller's exception propagates on its own
        finally:
            self._set_state(LinkState.CLOSED)

    def _set_state(self, state: LinkState) -> None:
        if state is self._state:
            return
        self._state = state
        if state is LinkState.CONNECTED:
            self._connected.set()
        else:
            self._connected.clear()
        log.info("mqtt link %s", state, extra={"broker": self._broker.url, "link_state": str(state)})
        if self._on_state is not None:
            self._on_state(state)

    def _make_client(self) -> BulkReadClient:
        b = self._broker
        tls: aiomqtt.TLSParameters | None = None
        if b.tls:
            tls = aiomqtt.TLSParameters(
                ca_certs=str(b.ca_file) if b.ca_file else None,
                cert_reqs=ssl.CERT_NONE if b.tls_insecure else ssl.CERT_REQUIRED,
            )
        self._early = []
        return BulkReadClient(
            b.host,
            b.port,
            identifier=self._client_id,
            username=b.username,
            password=b.password,
            keepalive=b.keepalive,
            will=self._will,
            clean_session=True,
            tls_params=tls,
            tls_insecure=b.tls_insecure if b.tls else None,
            timeout=10,
            socket_options=[TCP_NODELAY],
            sink=self._inbound,
            on_undecodable=self._undecodable,
            on_backlog=self._behind,
            on_drained=self._caught_up,
            hold=self.hold,
            on_held_read=self._on_held_read,
        )

    async def _supervise(self) -> None:
        attempt = 0
        while True:
            self._set_state(LinkState.CONNECTING)
            self._connected_at = None
            self._reset_reason = None
            try:
                async with self._make_client() as client:
                    await self._session(client)
                # Only reconnect() ends a session without an error: leaving the client sent a clean DISCONNECT.
                log.warning(
                    "mqtt link reset: %s",
                    self._reset_reason or "the broker ended the message stream",
                    extra={"broker": self._broker.url, "client_id": self._client_id},
                )
            except aiomqtt.MqttError as exc:
                if self._closing:
                    # aiomqtt reports our own cancellation as a lost connection; it is a shutdown.
                    raise asyncio.CancelledError from exc
                log.warning("mqtt link lost: %s", exc, extra={"broker": self._broker.url})
                self._explain_loss(exc)
            finally:
                self._client = None
            if self._connected_at is not None and self._short_sessions == 0:
                attempt = 0  # a connection that held: the next one starts from the shortest delay again
            self._set_state(LinkState.BACKOFF)
            delay = self._backoff.delay(attempt)
            attempt += 1
            await asyncio.sleep(delay)

    def _explain_loss(self, exc: aiomqtt.MqttError) -> None:
        """Say plainly when the loss is another client taking this client id over (else the link flaps unexplained)."""
        if self._connected_at is None:
            return  # never got connected: the warning above says why
        if _reason_code(exc) == SESSION_TAKEN_OVER:
            log.error(
                "the broker ended this session because another client connected with the same client id %r: "
                "give each gateway its own client id (--client-id)",
                self._client_id,
                extra={"broker": self._broker.url, "client_id": self._client_id},
            )
            self._short_sessions += 1  # and back off as for any session cut short
            return
        if time.monotonic() - self._connected_at >= SHORT_SESSION_SECONDS:
            self._short_sessions = 0
            return
        self._short_sessions += 1
        if self._short_sessions == SHORT_SESSIONS_SUSPECT:
            log.error(
                "the broker ended the connection right after connecting %d times in a row: another client probably "
                "connects with the same client id %r (each takes the session from the other); give each gateway "
                "its own client id (--client-id)",
                self._short_sessions,
                self._client_id,
                extra={"broker": self._broker.url, "client_id": self._client_id},
            )

    async def _session(self, client: aiomqtt.Client) -> None:
        self._subscribed = set()  # a clean session: every filter again
        self._to_subscribe, self._to_unsubscribe = dict(self._desired), set()
        await self._sync_subscriptions(client)
        self._client = client
        self.connections += 1
        self._connected_at = time.monotonic()
        assert self._tasks is not None
        try:
            # reconnect() ends the session through this deadline, from the moment the link says connected.
            async with asyncio.timeout(None) as deadline:
                self._session_deadline = deadline
                self._set_state(LinkState.CONNECTED)
                for birth in self._births:
                    await client.publish(birth.topic, birth.payload, qos=1, retain=birth.retain)
                self._subscriber = self._tasks.create_task(
                    self._sync_forever(client), name=f"mqtt-subscriber[{self._client_id}]"
                )
                self._watcher = self._tasks.create_task(self._watch_gaps(), name=f"mqtt-gaps[{self._client_id}]")
                await self._receive(client)
        except TimeoutError:
            if self._reset_reason is None:
                raise  # not ours
        finally:
            self._session_deadline = None
            # The next session subscribes to everything: the broker re-sends what is retained, its drop count too (a
            # new baseline: the broker may have restarted).
            self._forget_gap()
            self._drops.forget()
            await stop_tasks([t for t in (self._subscriber, self._watcher) if t is not None])
            self._subscriber = self._watcher = None

    def _forget_gap(self) -> None:
        """Nothing pending to resync for (a resync is under way, or the next session subscribes to everything)."""
        self._gap, self._gap_kind, self._pending_drops = None, "gap", 0

    def _behind(self) -> None:
        """A wake-up found more packets waiting than it handles at once: counted, not a resync by itself (a resync's
        own retained messages make such a backlog at a few thousand devices, which would resync for ever); a drop
        the broker reports meanwhile is the gateway's (see ``_read_drops``)."""
        self.backlogs += 1
        self._read = 0
        self._behind_at = asyncio.get_running_loop().time()
        self._probe_due = self._watch_drops

    def _caught_up(self) -> None:
        """A wake-up read the socket dry: resync now if something may have been dropped meanwhile; after a backlog,
        read the broker's drop counter again."""
        self._drained += 1
        if self._read >= BEHIND_MESSAGES:
            self._behind()
        self._read = 0
        if self._gap is not None and self._gap_due():
            self.resubscribe(self._gap, self._gap_kind)
        if self._probe_due:
            self._probe_drops()

    def _probe_drops(self) -> None:
        """Subscribe to the drop counter again: the broker re-sends its retained value (a live update sent while the
        gateway was behind may have been dropped like any other message, and the next comes only on a change)."""
        now = asyncio.get_running_loop().time()
        if not self.connected or (self._last_probe is not None and now - self._last_probe < PROBE_MIN_SECONDS):
            return
        self._probe_due, self._last_probe = False, now
        self._to_subscribe[DROPPED_TOPIC] = 0
        self._changed.set()

    def _read_drops(self, payload: bytes) -> None:
        """A reading of the broker's drop counter: an increase while the gateway was behind is the gateway's loss,
        and a resync (rate-limited like every gap's) follows once the backlog is read."""
        increase = self._drops.read(payload)
        if not increase:
            return
        # Behind now (a run of reads the socket has not run dry in yet: the backlog is only marked at its end), or
        # lately. Seen under CPU load: the reading came 1,915 messages into a run, before any backlog was marked.
        behind = self._read >= BEHIND_MESSAGES or self.was_behind(DROP_WINDOW_SECONDS)
        if self._on_drops is not None:
            self._on_drops(DropReport(increase, behind))
        if not behind:
            log.info(
                "the broker dropped %d messages to some client; the gateway was not behind, so not its loss",
                increase,
                extra={"broker": self._broker.url, "dropped": increase},
            )
            return
        self._pending_drops += increase
        log.warning(
            "the broker dropped %d messages while the gateway was behind: it resyncs once the backlog is read",
            increase,
            extra={"broker": self._broker.url, "dropped": increase},
        )
        if self._gap is None or self._gap_kind == "drop":
            self._gap_kind = "drop"
            self._gap = f"the broker reported {self._pending_drops} messages dropped while the gateway was behind"

    def _may_resync(self) -> bool:
        last = self._last_resync
        return last is None or asyncio.get_running_loop().time() - last >= RESYNC_MIN_SECONDS

    def _gap_due(self) -> bool:
        """Whether the pending gap's resync may go now: not too soon after the last, and for the broker's drops only
        once the gateway has caught up (a burst that still overflows the broker's queue would drop the resync too)."""
        if not self._may_resync():
            return False
        behind_at = self._behind_at
        return (
            self._gap_kind != "drop"
            or behind_at is None
            or asyncio.get_running_loop().time() - behind_at >= CAUGHT_UP_SECONDS
        )

    async def _watch_gaps(self) -> None:
        """Notice the event loop held up (a slow handler, a blocked thread): once the socket is quiet again, resync."""
        loop = asyncio.get_running_loop()
        drained = self._drained
        # While reads are held at a quiet rate, a tick of half the stall time: a stall of 1.5 times it is still always
        # seen, and at 67 messages a second the watcher's wake-ups (5 % of the gateway's CPU at 4 a second) halve.
        quiet_tick = max(_GAP_TICK, self._stall_seconds / 2)
        while True:
            tick = quiet_tick if self._gap is None and self.hold.quiet(loop.time()) else _GAP_TICK
            due = loop.time() + tick
            await asyncio.sleep(tick)
            late = loop.time() - due
            if late >= self._stall_seconds:
                self._behind_at, self._probe_due = loop.time(), self._watch_drops
                if self._gap is None:  # a drop already noted says more: how many the broker dropped
                    self._gap, self._gap_kind = f"the gateway's event loop was held up for {late:.1f} s", "gap"
            elif self._gap is not None and self._drained == drained and self._gap_due():
                self.resubscribe(self._gap, self._gap_kind)  # nothing read for a tick: the backlog is gone
            drained = self._drained

    async def _sync_forever(self, client: aiomqtt.Client) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                await self._sync_subscriptions(client)
            except aiomqtt.MqttError as exc:
                # A lost connection: the receive loop sees it too and the supervisor reconnects (this task is stopped
                # with the session). A SUBACK late behind a backlog (aiomqtt gives up after its timeout) must not end
                # the syncing for the rest of the session: what was not acknowledged is sent again.
                log.warning("subscription update failed, trying again in %g s: %s", _SYNC_RETRY_SECONDS, exc)
                await asyncio.sleep(_SYNC_RETRY_SECONDS)
                self._changed.set()

    async def _sync_subscriptions(self, client: aiomqtt.Client) -> None:
        gone, self._to_unsubscribe = sorted(self._to_unsubscribe), set()
        for start in range(0, len(gone), _CHUNK):
            chunk = gone[start : start + _CHUNK]
            try:
                await client.unsubscribe(chunk)
            except aiomqtt.MqttError:
                self._to_unsubscribe.update(f for f in gone[start:] if f not in self._desired)
                raise
            self._subscribed.difference_update(chunk)
            for topic_filter in chunk:  # wanted again while the UNSUBSCRIBE was on its way
                if topic_filter in self._desired:
                    self._to_subscribe[topic_filter] = self._desired[topic_filter]
        new, self._to_subscribe = sorted(self._to_subscribe.items()), {}
        for start in range(0, len(new), _CHUNK):
            pairs = new[start : start + _CHUNK]
            try:
                await client.subscribe(pairs)
            except aiomqtt.MqttError:
                for topic_filter, _qos in new[start:]:  # not acknowledged: again, as wanted now
                    if topic_filter in self._desired:
                        self._to_subscribe.setdefault(topic_filter, self._desired[topic_filter])
                raise
            for topic_filter, _qos in pairs:
                self._subscribed.add(topic_filter)
                if topic_filter not in self._desired:  # removed while the SUBSCRIBE was on its way
                    self._to_unsubscribe.add(topic_filter)
        if self._to_subscribe or self._to_unsubscribe:
            self._changed.set()

    def _inbound(self, inbound: InboundMessage) -> None:
        """The client's sink, in the wake-up that read the message: deliver it now, or keep it for ``_receive``."""
        self._read += 1
        if self._early is None:
            self._deliver(inbound)
        else:
            self._early.append(inbound)

    def _deliver(self, inbound: InboundMessage) -> None:
        if inbound.topic == DROPPED_TOPIC:
            self._read_drops(inbound.payload)
            return
        try:
            self._on_message(inbound)
        except Exception:
            # A handler bug must not take the link down for every other device.
            self.handler_errors += 1
            log.exception("message handler failed", extra={"topic": inbound.topic[:200]})

    def _undecodable(self, topic: bytes) -> None:
        self.handler_errors += 1
        log.warning("message on a topic that is not UTF-8 ignored", extra={"topic": repr(topic[:200])})

    async def _receive(self, client: aiomqtt.Client) -> None:
        early, self._early = self._early or [], None
        try:
            for inbound in early:
                self._deliver(inbound)
            # Not kept for the session's lifetime: at a start these are the broker's whole retained flood (at 5,000
            # devices ~12,000 messages, ~5 MB).
            del early
            # Messages go to _inbound as the client reads them; the iterator only raises when the connection is lost.
            async for _ in client.messages:
                pass
        finally:
            self._early = []


def _reason_code(exc: BaseException) -> int | None:
    """The MQTT reason code behind ``exc`` (aiomqtt chains the disconnect's code as the cause), if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, aiomqtt.MqttCodeError) and seen.rc is not None:
            return seen.rc if isinstance(seen.rc, int) else int(seen.rc.value)
        seen = seen.__cause__
    return None
