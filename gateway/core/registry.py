"""The device registry: discovery, state and availability ingest, routed by topic, never dying on bad input."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import TypeVar

from devices import (
    MAX_PAYLOAD_BYTES,
    DeviceCodecError,
    DiscoveryKey,
    EntityConfig,
    EntityState,
    parse_config,
    parse_discovery_topic,
)
from devices.base import same_state

from ..clock import Clock
from ..mqtt.transport import InboundMessage
from ..storage import EntityRow
from ..storage.records import parse_time
from .acceptance import Acceptance, Refusal
from .changes import ChangeListener, Changes, EntityListener
from .entity import Entity, StateError
from .expect import Expectation, Match, ReportWatch
from .ingest import Refusals, availability_after, device_id_of
from .journal import Journal, StateData
from .metrics import Metrics
from .owners import Owner
from .ratelimit import RateLimiter
from .routes import TopicRoutes, TopicsChanged
from .wiring import WiringCheck

__all__ = ["EntityListener", "Registry"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class Registry:
    """Every entity the gateway knows, indexed by id and by the topics it reports on."""

    def __init__(
        self,
        discovery_prefix: str,
        clock: Clock,
        metrics: Metrics | None = None,
        limiter: RateLimiter | None = None,
        *,
        acceptance: Acceptance | None = None,
    ) -> None:
        self.prefix = discovery_prefix
        self._discovery_root = discovery_prefix + "/"
        self.clock = clock
        self.metrics = metrics or Metrics()
        self.limiter = limiter
        # None: the device plane is open and configs are taken as they come; else who may publish what.
        self.acceptance = acceptance
        self._journal = Journal(clock)
        self._refusals = Refusals(self.metrics, clock, limiter)
        self._entities: dict[str, Entity] = {}
        self._routes = TopicRoutes()
        self._changes = Changes()
        self._journal.add_reader(self._changes.event)
        self._reports = ReportWatch()
        self._changes.add_listener(self._reports)
        self._wiring: WiringCheck | None = None
        # The latest message on each routed availability topic. A topic shared by many entities (a bridge's
        # ``bridge/state``) is subscribed once: its retained message is not sent again for an entity discovered
        # later, which gets it from here instead.
        self._availability_seen: dict[str, InboundMessage] = {}

    # --- queries --------------------------------------------------------------------------------

    def get(self, entity_id: str) -> Entity | None:
        """The live entity with that id, removed ones excluded."""
        entity = self._entities.get(entity_id)
        return entity if entity is not None and entity.removed_at is None else None

    def entities(self) -> list[Entity]:
        """Every live entity, in id order."""
        return sorted(self.live_entities(), key=lambda e: e.id)

    def live_entities(self) -> Iterator[Entity]:
        """Every live entity, in no particular order (a pass over all of them that needs none)."""
        return (e for e in self._entities.values() if e.removed_at is None)

    def entities_of_device(self, device_id: str) -> list[Entity]:
        """The live entities of one device, in id order."""
        return sorted((self._entities[k] for k in self._routes.of_device(device_id)), key=lambda e: e.id)

    def device_ids(self) -> list[str]:
        """Ids of every device with a live entity."""
        return self._routes.device_ids()

    def device_keys(self, device_id: str) -> list[DiscoveryKey]:
        """Discovery keys of the device's live entities."""
        return [self._entities[k].key for k in sorted(self._routes.of_device(device_id))]

    def foreign_command_topic(self, entity: Entity) -> str | None:
        """A command topic of ``entity`` that another device owns (announced after it), or None."""
        for topic in sorted(entity.config.command_topics()):
            owner = self._routes.owner_of(topic)
            if owner is not None and owner != entity.device_id:
                return topic
        return None

    def has_device(self, device_id: str) -> bool:
        """Whether the device has a live entity."""
        return self._routes.has_device(device_id)

    def published_for(self, device_id: str, property_id: str) -> bool:
        """Whether the device was published by a credential of that property, or of none (the simulated unit's,
        or a device from before the plane was enforced); with the device plane open (no credentials to go by),
        every device is."""
        if self.acceptance is None:
            return True
        published = self.acceptance.property_of_device(device_id, self)
        return published is None or published == property_id

    def topics(self) -> frozenset[str]:
        """Every state and availability topic to subscribe."""
        return self._routes.topics()

    # --- listeners ------------------------------------------------------------------------------

    def add_listener(self, listener: EntityListener) -> None:
        """Be told about accepted changes."""
        self._changes.add_listener(listener)

    def add_change_listener(self, listener: ChangeListener) -> None:
        """Be told about every change to an entity's record and every event recorded in the journal."""
        self._changes.add_change_listener(listener)

    def on_topics_changed(self, callback: TopicsChanged) -> None:
        """Be told which topics to subscribe (added, removed) as entities come and go."""
        self._routes.on_topics_changed(callback)

    def check_wiring(self, check: WiringCheck) -> None:
        """Ask ``check`` about every config before accepting it (topics pinned to another bound device)."""
        self._wiring = check

    def expect(self, entity_ids: Iterable[str], match: Match[T], *, offline: T | None = None) -> Expectation[T]:
        """Await verdicts on the entities' next reports until closed (see ``ReportWatch.expect``)."""
        return self._reports.expect(entity_ids, match, offline=offline)

    def record_event(self, entity_key: str | None, type_: str, data: Mapping[str, object]) -> None:
        """Record an event in the journal; change listeners (the persister among them) are told at once."""
        self._journal.record(entity_key, type_, data)

    # --- start ----------------------------------------------------------------------------------

    def load(self, rows: Iterable[EntityRow]) -> None:
        """Rebuild the live view from stored rows at start; rows that no longer parse are skipped."""
        for entity in _loadable(self.prefix, rows):
            self._entities[entity.id] = entity
            if entity.removed_at is None:
                self._routes.add(entity)

    # --- ingest ------------------------------------------------------------------------------------

    def handle(self, message: InboundMessage) -> None:
        """Route one inbound message; refuse bad ones with a counted, logged reason."""
        self.metrics.received += 1
        if len(message.payload) > MAX_PAYLOAD_BYTES:
            self._reject(message, "payload_too_large", f"{len(message.payload)} bytes > {MAX_PAYLOAD_BYTES}")
            return
        if message.topic.startswith(self._discovery_root) and message.topic.endswith("/config"):
            self._handle_discovery(message)
            return
        state_routes = self._routes.state_listeners(message.topic)
        availability_routes = self._routes.availability_listeners(message.topic)
        if not (state_routes or availability_routes):
            self.metrics.accepted["ignored"] += 1
            return
        if not self._refusals.allow(self._limit_key(message.topic, state_routes), message):
            return
        for entity_id in state_routes:
            self._handle_state(self._entities[entity_id], message)
        if availability_routes:
            self._availability_seen[message.topic] = message
        for entity_id in availability_routes:
            self._handle_availability(self._entities[entity_id], message)

    def _limit_key(self, topic: str, state_routes: tuple[str, ...]) -> str:
        """Whose token bucket a message on a routed topic takes from: the device whose state topic it is (a state
        topic belongs to one device), else the topic's own (an availability topic may be a bridge's, shared by all
        its devices: charging one of them would let the bridge's status drown that device's reports)."""
        if state_routes:
            return self._entities[state_routes[0]].device_id
        return "\x00availability:" + topic  # the NUL keeps it apart from every real device id

    def _handle_discovery(self, message: InboundMessage) -> None:
        try:
            key = parse_discovery_topic(self.prefix, message.topic)
        except DeviceCodecError as exc:
            self._reject(message, exc.code, str(exc))
            return
        existing = self._entities.get(key.key)
        if not message.payload:
            if existing is not None and existing.removed_at is None:
                refusal = self._may_remove(key, existing.device_id)
                if refusal is not None:
                    self._refuse(message, refusal, entity_id=key.key)
                    return
                self._remove(existing)
            return
        # (surrogateescape: bytes that are not UTF-8 never equal a stored config, and parse_config refuses them.)
        raw = message.payload.decode("utf-8", "surrogateescape")
        try:
            # The same bytes parse to the same model: a retained config seen again (every reconnection, HA's birth)
            # is not parsed and validated again; it is still admitted and checked below as any other.
            if existing is not None and existing.removed_at is None and existing.raw_config == raw:
                config = existing.config
            else:
                config = parse_config(key.component, message.payload)
        except DeviceCodecError as exc:
            self._reject(message, exc.code, str(exc), entity_id=key.key)
            return
        device_id = device_id_of(key, config)
        admitted = self._admit(key, config, device_id)
        if isinstance(admitted, Refusal):
            self._refuse(message, admitted, entity_id=key.key)
            return
        # (A bound device's pinned wiring is checked here, once the config is known to come from its owner.)
        problem = self._routes.conflict(self.prefix, key, config, device_id)
        if problem is None and self._wiring is not None:
            problem = self._wiring(key, config, device_id)
        if problem is not None:
            self._reject(message, problem[0], problem[1], entity_id=key.key)
            return
        if existing is not None and existing.removed_at is None and existing.raw_config == raw:
            return  # a retained config seen again (reconnect, HA birth): nothing changed
        now = self.clock.now()
        if existing is not None and existing.removed_at is None:
            self._routes.remove(existing)
            existing.config, existing.raw_config, existing.device_id = config, raw, device_id
            entity = existing
            self.record_event(key.key, "rediscovered", {})
        else:
            entity = Entity(key=key, device_id=device_id, config=config, raw_config=raw, discovered_at=now)
            self._entities[key.key] = entity
            self.record_event(key.key, "discovered", {"kind": str(config.kind)})
            log.info("entity discovered", extra={"entity": key.key, "kind": str(config.kind)})
        if self.acceptance is not None and admitted is not None:
            self.acceptance.claim(device_id, admitted)
        self._routes.add(entity)
        self.metrics.accepted["discovery"] += 1
        self._changes.discovered(entity, now)
        self._apply_seen_availability(entity)

    def _apply_seen_availability(self, entity: Entity) -> None:
        """Give a newly (re)configured entity what its availability topics last said, when another entity's
        subscription already received it (the broker sends a retained message once per subscription)."""
        for topic in sorted({e.topic for e in entity.config.availability_entries()}):
            seen = self._availability_seen.get(topic)
            if seen is not None:
                self._handle_availability(entity, seen)

    def link_lost(self) -> None:
        """The broker connection dropped: what any device said about its availability may have changed unheard, so
        every entity is unknown (``available`` None, not fresh) until it or its bridge speaks again; the retained
        last wills come back with the resubscription."""
        self._availability_seen.clear()
        for entity in self._entities.values():
            if entity.removed_at is not None:
                continue
            entity.availability_by_topic.clear()
            if entity.available is None and not entity.heard_since_start:
                continue
            entity.available, entity.heard_since_start = None, False
            self._changes.touched(entity)

    def _handle_state(self, entity: Entity, message: InboundMessage) -> None:
        if entity.held:
            return  # its wiring changed and staff have not approved it: its reports are not trusted (core.wiring)
        now = self.clock.now()
        # A retained copy re-sent by a resync of an entity heard since the connection came up: it says nothing of
        # the device being alive now (an hourly resync must not keep a dead device's last_seen and state_at fresh).
        replay = message.retain and entity.heard_since_start
        if not replay:
            entity.last_seen = now
            entity.heard_since_start = True
        try:
            state = entity.config.decode_state(message.topic, message.payload, entity.state)
        except DeviceCodecError as exc:
            if replay:
                return  # refused when it was first heard
            entity.state_error = StateError(exc.code, str(exc)[:200], now)
            self._changes.touched(entity)
            self._reject(message, exc.code, str(exc), entity_id=entity.id)
            return
        changed = not same_state(state, entity.state)
        if replay and not changed:
            return
        if changed and message.retain and entity.state_at is not None:
            self._recovered(entity, "states")
            entity.last_seen = now  # it said something new since it was last heard
        entity.state, entity.state_at, entity.state_error = state, now, None
        self.metrics.accepted["state"] += 1
        if changed:
            # Stamped with the report's own time, and serialised once, by the writer (the row's state is the same).
            self._journal.record(entity.id, "state", StateData(state), now)
        self._changes.state(entity)

    def _handle_availability(self, entity: Entity, message: InboundMessage) -> None:
        available = availability_after(entity, message)
        if available is None:
            self._reject(
                message, "availability_invalid", "payload is neither available nor not-available", entity_id=entity.id
            )
            return
        now = self.clock.now()
        replay = message.retain and entity.heard_since_start  # as for states: a resync's copy is not a sign of life
        if replay and available == entity.available:
            return
        entity.heard_since_start = True
        if available:
            entity.last_seen = now
        self.metrics.accepted["availability"] += 1
        if available == entity.available:
            self._changes.touched(entity)
            return
        if message.retain and entity.available is not None:
            self._recovered(entity, "availability")
        entity.available, entity.availability_at = available, now
        self.record_event(entity.id, "online" if available else "offline", {})
        log.info("entity %s", "online" if available else "offline", extra={"entity": entity.id})
        self._changes.availability(entity)

    def _recovered(self, entity: Entity, what: str) -> None:
        """A change first heard from a retained copy (a resync, a reconnect, a start): the live message was missed
        (the gateway was away, or the broker dropped it), the latest value is recovered, any between are not."""
        self.metrics.recovered[what] += 1
        log.info("missed change recovered from the retained message (%s)", what, extra={"entity": entity.id})

    def _remove(self, entity: Entity) -> None:
        self._routes.remove(entity)
        listened = self._routes.topics()
        for topic in [t for t in self._availability_seen if t not in listened]:
            del self._availability_seen[topic]  # nobody listens to it any more: kept no longer
        entity.removed_at = self.clock.now()
        self.record_event(entity.id, "removed", {})
        log.info("entity removed", extra={"entity": entity.id})
        self._changes.removed(entity)

    def _admit(self, key: DiscoveryKey, config: EntityConfig, device_id: str) -> Owner | Refusal | None:
        """The owner a config is accepted from (None with the device plane open), or why it is refused."""
        return None if self.acceptance is None else self.acceptance.admit(key, config, device_id, self)

    def _may_remove(self, key: DiscoveryKey, device_id: str) -> Refusal | None:
        return None if self.acceptance is None else self.acceptance.may_remove(key, device_id, self)

    def _refuse(self, message: InboundMessage, refusal: Refusal, *, entity_id: str) -> None:
        """A refusal of the acceptance rules: counted, logged and journalled at most once a minute per publisher,
        so a flood costs the flooder's log lines, not everyone's."""
        logged = self._refusals.reject(message, refusal.code, refusal.detail, publisher=refusal.publisher)
        if logged and entity_id in self._entities:
            self.record_event(entity_id, "rejected", {"reason": refusal.code, "detail": refusal.detail[:200]})

    def _reject(self, message: InboundMessage, reason: str, detail: str, *, entity_id: str | None = None) -> None:
        self._refusals.reject(message, reason, detail)
        if entity_id is not None and entity_id in self._entities:
            self.record_event(entity_id, "rejected", {"reason": reason, "detail": detail[:200]})


def _loadable(prefix: str, rows: Iterable[EntityRow]) -> Iterator[Entity]:
    """The stored entities that still parse (the others are logged and skipped)."""
    for row in rows:
        try:
            key = parse_discovery_topic(prefix, f"{prefix}/{row.key}/config")
            config = parse_config(key.component, row.config.encode())
            entity = Entity(
                key=key,
                device_id=row.device_id,
                config=config,
                raw_config=row.config,
                discovered_at=datetime.fromisoformat(row.discovered_at),
                # Unknown until the device says so again: the stored value is what it said before the restart.
                available=None,
                availability_at=parse_time(row.availability_at),
                last_seen=parse_time(row.last_seen),
                removed_at=parse_time(row.removed_at),
                state_at=parse_time(row.state_at),
            )
            if row.state is not None:
                entity.state = _state_from_json(entity, row.state)
            if row.state_error and row.state_error_at:
                entity.state_error = StateError(row.state_error, "", datetime.fromisoformat(row.state_error_at))
        except (DeviceCodecError, ValueError) as exc:
            log.warning("stored entity no longer loads", extra={"entity": row.key, "error": str(exc)[:200]})
            continue
        yield entity


def _state_from_json(entity: Entity, stored: str) -> EntityState:
    return entity.config.state_model.model_validate_json(stored)
