"""The device core: storage, registry, MQTT link, persister, commands and connectivity, as one async context manager
(the domain services around it are composed in gateway.services)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from functools import partial
from types import TracebackType
from typing import Self

import aiomqtt

from .clock import Clock, SystemClock
from .config import GatewaySettings
from .connectivity import BrokerEcho, ConnectivityTracker, LinkLiveness
from .core.acceptance import Acceptance
from .core.commands import INTERRUPTED, CommandService
from .core.metrics import Metrics
from .core.owners import CredentialOwners
from .core.persister import Persister
from .core.ratelimit import RateLimiter
from .core.registry import Registry
from .errors import BrokerUnavailable, StorageError
from .mqtt import credential_store
from .mqtt.drops import DropReport
from .mqtt.transport import Birth, InboundMessage, LinkState, MqttLink, Subscription
from .storage import Database
from .storage.records import (
    fail_unfinished_commands,
    finish_run,
    heartbeat_run,
    load_device_owners,
    load_entities,
    start_run,
)
from .storage.retry import StorageRetry
from .tasks import TaskOwner

__all__ = ["Gateway"]

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 30.0


class Gateway:
    """The device core; ``async with Gateway(settings) as gw`` starts it, leaving stops it cleanly."""

    def __init__(self, settings: GatewaySettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.metrics = Metrics()
        self.db = Database(settings.database)
        limiter = RateLimiter(settings.device_rate_per_second, settings.device_burst)
        # The live broker credentials as owners of node ids and topic roots (told of changes by BrokerCredentials).
        self.owners = CredentialOwners(settings.discovery_prefix)
        self.acceptance = (
            Acceptance(
                self.owners,
                self.db,
                self.clock,
                unbound_devices_per_property=settings.unbound_devices_per_property,
                entities_per_device=settings.entities_per_device,
            )
            if settings.device_plane == "enforced"
            else None
        )
        self.registry = Registry(
            settings.discovery_prefix, self.clock, self.metrics, limiter, acceptance=self.acceptance
        )
        prefix = settings.discovery_prefix
        self.status_topic = f"aptgateway/{settings.client_id}/status"
        self.link = MqttLink(
            settings.broker,
            client_id=settings.client_id,
            subscriptions=[
                Subscription(f"{prefix}/+/+/config", settings.subscribe_qos),
                Subscription(f"{prefix}/+/+/+/config", settings.subscribe_qos),
            ],
            on_message=self._on_message,
            on_state=self._on_link_state,
            will=aiomqtt.Will(self.status_topic, b"offline", qos=1, retain=True),
            births=[
                # Our own status, retained: whoever watches this gateway sees it up (the will says offline).
                Birth(self.status_topic, b"online", retain=True),
                # Home Assistant's birth message is kept: Zigbee2MQTT, Tasmota and ESPHome answer only it by
                # republishing their discovery configs (and Zigbee2MQTT its states, which it does not retain), and a
                # restarted gateway shows a remembered device as unknown until it reports again. A real Home
                # Assistant on the same broker is not misled for longer than a moment: the message is not retained
                # (HA's own will is never overwritten), and its only effect on devices is the same republish HA asks
                # for itself.
                Birth(f"{prefix}/status", b"online"),
            ],
            on_resync=self._on_resync,
            stall_seconds=settings.stall_seconds,
            watch_drops=True,
            on_drops=self._on_drops,
            read_hold=settings.read_hold_seconds,
            # A held read is a batch already: written at once, not a flush interval later (one wake-up fewer).
            on_held_read=lambda: self.persister.flush_soon(),  # noqa: PLW0108 - the persister comes later
        )
        self.echo = BrokerEcho(self.link, f"aptgateway/{settings.client_id}/echo")
        self.link.add_subscriptions([self.echo.topic_filter], qos=1)
        self.connectivity = ConnectivityTracker(
            self.db,
            self.clock,
            self.registry,
            settings.uplink,
            device_silence=timedelta(seconds=settings.device_silence_seconds),
            device_check_seconds=settings.device_check_seconds,
            link_connected=lambda: self.link.connected,
        )
        self.registry.add_listener(self.connectivity)
        self.liveness = LinkLiveness(
            self.link,
            self.echo,
            self.clock,
            interval=settings.liveness_seconds,
            timeout=settings.liveness_timeout_seconds,
            on_deaf=self.connectivity.on_link_deaf,
        )
        self.persister = Persister(self.registry, self.db, settings.state_flush_interval)
        self.commands = CommandService(
            self.registry, self.link, self.db, self.clock, settings.command_timeout, self.persister.ensure_stored
        )
        self.persister.also_write(self.commands.write_outcomes)
        if self.acceptance is not None:
            self.persister.also_write(self.acceptance.write)
        self.unclean_previous_run: dict[str, object] | None = None
        self._run_id: int | None = None
        self._tasks = TaskOwner()
        self._stack: contextlib.AsyncExitStack | None = None

    async def __aenter__(self) -> Self:
        # Everything started is stopped in reverse order, whether the start completes or fails half-way.
        async with contextlib.AsyncExitStack() as stack:
            await self.db.open()
            stack.push_async_callback(self._close_db)
            stack.push_async_callback(self._record_stop)
            await self._load_owners()
            await self.persister.merge()  # what the last run appended (all of it, after an unclean stop)
            rows = await self.db.run(load_entities)
            self.registry.load(rows)
            self.persister.note_stored(r.key for r in rows)
            now = self.clock.now().isoformat()
            self._run_id, self.unclean_previous_run = await self.db.run(lambda db: start_run(db, now))
            if self.unclean_previous_run is not None:
                log.warning("previous run did not stop cleanly", extra={"run": self.unclean_previous_run})
                await self.connectivity.record_unclean_stop(self.unclean_previous_run, self.clock.now())
            # A command still pending here was in flight when the last run died, or had its outcome answered but not
            # yet written (outcomes are written with the persister's flush, every state_flush_interval; a clean
            # stop flushes them and ends each command in flight as gateway_stopping): nothing waits for it any more,
            # so end it rather than leave it pending for ever. It is never re-sent; whether the device obeyed is
            # unknown, so it is failed as ``interrupted``, not confirmed.
            unfinished = await self.db.run(
                partial(
                    fail_unfinished_commands,
                    reason=INTERRUPTED,
                    detail="the gateway stopped before recording an outcome (found unfinished at the next start); "
                    "whether the device obeyed is unknown (see its reported state)",
                    finished_at=now,
                )
            )
            if unfinished:
                log.warning(
                    "commands left unfinished by the previous run failed as interrupted",
                    extra={"commands": unfinished, "reason": INTERRUPTED},
                )
            self.registry.on_topics_changed(self._on_topics_changed)
            self.link.add_subscriptions(self.registry.topics(), self.settings.subscribe_qos)
            await stack.enter_async_context(self.connectivity)
            await stack.enter_async_context(self.link)
            stack.push_async_callback(self._say_offline)
            await stack.enter_async_context(self._tasks)
            self._tasks.start(self.persister.run(), "gateway-persister")
            self._tasks.start(self._heartbeat(), "gateway-heartbeat")
            self._tasks.start(self.liveness.run(), "gateway-liveness")
            if self.settings.resync_seconds:
                self._tasks.start(self._resync_periodically(self.settings.resync_seconds), "gateway-resync")
            self._stack = stack.pop_all()
        log.info(
            "gateway started", extra={"broker": self.settings.broker.url, "entities": len(self.registry.entities())}
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            # Not the outer exception: given a CancelledError the parts would skip the rest of the shutdown
            # (flush, clean-stop record). It still propagates from here.
            await stack.aclose()

    async def _load_owners(self) -> None:
        credentials = await self.db.run(lambda db: credential_store.where(db, None, include_revoked=False))
        self.owners.load(credentials)
        if self.acceptance is not None:
            self.acceptance.load(await self.db.run(load_device_owners))
            return
        log.warning(
            "device plane OPEN: discovery configs are accepted from anyone on the broker, whatever node id, topics "
            "or device id they claim; run on a broker that gives every device its own scoped credential and set "
            "device_plane to 'enforced'",
            extra={"broker": self.settings.broker.url},
        )

    async def _say_offline(self) -> None:
        if not self.link.connected:
            return
        try:
            await self.link.publish(self.status_topic, b"offline", qos=1, retain=True)
        except BrokerUnavailable as exc:
            # The link dropped between the check and the publish (say, another client took the session): the
            # broker publishes the will for a connection it lost, and a clean stop must stay a clean stop.
            log.warning("could not say offline at stop: %s", exc, extra={"topic": self.status_topic})

    async def _record_stop(self) -> None:
        try:
            await self.persister.flush()
            await self.persister.merge()  # the file as other tools read it: every table whole
            if self._run_id is not None:
                run_id, now = self._run_id, self.clock.now().isoformat()
                await self.db.run(lambda db: finish_run(db, run_id, now))
        except StorageError as exc:
            # Stopping all the same: the next start finds this run unfinished and records it as an unclean stop.
            log.error("cannot record the stop: %s", exc, extra={"code": exc.code})  # noqa: TRY400

    async def _close_db(self) -> None:
        await self.db.close()
        log.info("gateway stopped")

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Wait for the broker link to be up and subscribed."""
        await self.link.wait_connected(timeout)

    def _on_topics_changed(self, added: frozenset[str], removed: frozenset[str]) -> None:
        if added:
            self.link.add_subscriptions(added, self.settings.subscribe_qos)
        if removed:
            self.link.remove_subscriptions(removed)

    def _on_message(self, message: InboundMessage) -> None:
        if self.echo.owns(message.topic):
            self.echo.handle(message)
        else:
            self.registry.handle(message)

    def resync(self, reason: str) -> bool:
        """Have the broker re-send every retained config, state and availability (see ``MqttLink.resubscribe``);
        False when the link is down (its next connection does it anyway)."""
        return self.link.resubscribe(reason, "manual")

    def _on_resync(self, reason: str, kind: str) -> None:
        self.metrics.resynced(self.clock.now(), reason, kind)
        self.registry.record_event(None, "resync", {"reason": reason, "kind": kind})

    def _on_drops(self, report: DropReport) -> None:
        self.metrics.broker_dropped["while_behind" if report.behind else "not_behind"] += report.count
        self.registry.record_event(None, "broker_dropped", {"count": report.count, "while_behind": report.behind})

    async def _resync_periodically(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            self.link.resubscribe(f"periodic, every {seconds:g} s", "periodic")

    def _on_link_state(self, state: LinkState) -> None:
        self.connectivity.on_link_state(state)
        if state is LinkState.CONNECTED:
            self.registry.record_event(None, "broker_connected", {"broker": self.settings.broker.url})
            if self.link.connections > 1:  # a new connection subscribes to everything: a resync of its own
                self._on_resync("reconnected to the broker", "reconnect")
        elif state is LinkState.BACKOFF:
            self.registry.link_lost()
            self.registry.record_event(None, "broker_disconnected", {"broker": self.settings.broker.url})

    async def _heartbeat(self) -> None:
        # A heartbeat that cannot be written (disk full, read-only) is said and tried again, sooner; it must never
        # end the task group, which would stop the whole gateway until someone restarts it by hand.
        assert self._run_id is not None
        run_id = self._run_id
        retry = StorageRetry(log, "cannot record the heartbeat", cap=HEARTBEAT_SECONDS)
        while True:
            await asyncio.sleep(retry.delay() if retry.failures else HEARTBEAT_SECONDS)
            try:
                await self.db.run(partial(heartbeat_run, run_id=run_id, now=self.clock.now().isoformat()))
            except StorageError as exc:
                retry.failed(exc)
            else:
                retry.succeeded()
