"""The device registry: discovery, state and availability ingest, routed by topic, never dying on bad input."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Protocol

from devices import (
    MAX_PAYLOAD_BYTES,
    DeviceCodecError,
    DiscoveryKey,
    EntityConfig,
    EntityState,
    parse_config,
    parse_discovery_topic,
)

from ..clock import Clock
from ..mqtt.transport import InboundMessage
from ..storage import DeviceRow, EntityRow, EventRow
from ..storage.records import parse_time
from .entity import Entity, StateError
from .metrics import Metrics, Rejection
from .ratelimit import RateLimiter

__all__ = ["EntityListener", "Registry"]

log = logging.getLogger(__name__)
_EXCERPT = 120
_THROTTLE_LOG_SECONDS = 10.0


class EntityListener(Protocol):
    """Told about every accepted change, synchronously, on the event loop."""

    def on_state(self, entity: Entity) -> None:
        """``entity.state`` was just replaced by a newly accepted report."""

    def on_availability(self, entity: Entity) -> None:
        """``entity.available`` just changed."""


TopicsChanged = Callable[[frozenset[str], frozenset[str]], None]


class Registry:
    """Every entity the gateway knows, indexed by id and by the topics it reports on."""

    def __init__(
        self,
        discovery_prefix: str,
        clock: Clock,
        metrics: Metrics | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.prefix = discovery_prefix
        self.clock = clock
        self.metrics = metrics or Metrics()
        self.limiter = limiter
        self._entities: dict[str, Entity] = {}
        self._state_routes: dict[str, set[str]] = {}
        self._availability_routes: dict[str, set[str]] = {}
        self._owners: dict[str, set[str]] = {}  # topic -> entities claiming it (all of one device)
        self._unique_ids: dict[str, str] = {}  # unique_id -> entity id
        self._by_device: dict[str, set[str]] = {}  # device id -> its live entities
        self._listeners: list[EntityListener] = []
        self._topics_changed: TopicsChanged | None = None
        self._dirty: set[str] = set()
        self._dirty_devices: dict[str, DeviceRow] = {}
        self._events: list[EventRow] = []

    # --- queries --------------------------------------------------------------------------------

    def get(self, entity_id: str) -> Entity | None:
        """The live entity with that id, removed ones excluded."""
        entity = self._entities.get(entity_id)
        return entity if entity is not None and entity.removed_at is None else None

    def entities(self) -> list[Entity]:
        """Every live entity, in id order."""
        return sorted((e for e in self._entities.values() if e.removed_at is None), key=lambda e: e.id)

    def entities_of_device(self, device_id: str) -> list[Entity]:
        """The live entities of one device, in id order."""
        return sorted((self._entities[k] for k in self._by_device.get(device_id, ())), key=lambda e: e.id)

    def device_ids(self) -> list[str]:
        """Ids of every device with a live entity."""
        return sorted(self._by_device)

    def topics(self) -> frozenset[str]:
        """Every state and availability topic to subscribe."""
        return frozenset(self._state_routes) | frozenset(self._availability_routes)

    def add_listener(self, listener: EntityListener) -> None:
        """Be told about accepted changes."""
        self._listeners.append(listener)

    def on_topics_changed(self, callback: TopicsChanged) -> None:
        """Be told which topics to subscribe (added, removed) as entities come and go."""
        self._topics_changed = callback

    # --- persistence hand-off --------------------------------------------------------------------

    def take_changes(self) -> tuple[list[DeviceRow], list[EntityRow], list[EventRow]]:
        """Rows changed since the last call (for the persister's next transaction)."""
        devices = list(self._dirty_devices.values())
        rows = [_row(self._entities[k]) for k in sorted(self._dirty)]
        events = self._events
        self._dirty_devices, self._dirty, self._events = {}, set(), []
        return devices, rows, events

    def restore_changes(self, devices: list[DeviceRow], rows: list[EntityRow], events: list[EventRow]) -> None:
        """Put back changes a failed write did not persist, so the next flush retries them."""
        for device in devices:
            self._dirty_devices.setdefault(device.id, device)
        self._dirty.update(r.key for r in rows)
        self._events = events + self._events

    def record_event(self, entity_key: str | None, type_: str, data: dict[str, object]) -> None:
        """Queue an event row for the next flush."""
        self._events.append(EventRow(self.clock.now().isoformat(), entity_key, type_, data))

    def load(self, rows: Iterable[EntityRow]) -> None:
        """Rebuild the live view from stored rows at start; rows that no longer parse are skipped."""
        for row in rows:
            try:
                key = parse_discovery_topic(self.prefix, f"{self.prefix}/{row.key}/config")
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
                    entity.state = _state_from_json(config, row.state)
                if row.state_error and row.state_error_at:
                    entity.state_error = StateError(row.state_error, "", datetime.fromisoformat(row.state_error_at))
            except (DeviceCodecError, ValueError) as exc:
                log.warning("stored entity no longer loads", extra={"entity": row.key, "error": str(exc)[:200]})
                continue
            self._entities[entity.id] = entity
            if entity.removed_at is None:
                self._route(entity)

    # --- ingest ------------------------------------------------------------------------------------

    def handle(self, message: InboundMessage) -> None:
        """Route one inbound message; refuse bad ones with a counted, logged reason."""
        self.metrics.received += 1
        if len(message.payload) > MAX_PAYLOAD_BYTES:
            self._reject(message, "payload_too_large", f"{len(message.payload)} bytes > {MAX_PAYLOAD_BYTES}")
            return
        if message.topic.startswith(self.prefix + "/") and message.topic.endswith("/config"):
            self._handle_discovery(message)
            return
        state_routes = tuple(self._state_routes.get(message.topic, ()))
        availability_routes = tuple(self._availability_routes.get(message.topic, ()))
        if not (state_routes or availability_routes):
            self.metrics.accepted["ignored"] += 1
            return
        device_id = self._entities[(state_routes or availability_routes)[0]].device_id
        if self.limiter is not None and not self.limiter.allow(device_id):
            self._throttled(device_id, message)
            return
        for entity_id in state_routes:
            self._handle_state(self._entities[entity_id], message)
        for entity_id in availability_routes:
            self._handle_availability(self._entities[entity_id], message)

    def _handle_discovery(self, message: InboundMessage) -> None:
        try:
            key = parse_discovery_topic(self.prefix, message.topic)
        except DeviceCodecError as exc:
            self._reject(message, exc.code, str(exc))
            return
        existing = self._entities.get(key.key)
        if not message.payload:
            if existing is not None and existing.removed_at is None:
                self._remove(existing)
            return
        try:
            config = parse_config(key.component, message.payload)
        except DeviceCodecError as exc:
            self._reject(message, exc.code, str(exc), entity_id=key.key)
            return
        device_id = _device_id(key, config)
        problem = self._conflict(key, config, device_id)
        if problem is not None:
            self._reject(message, problem[0], problem[1], entity_id=key.key)
            return
        raw = message.payload.decode()
        if existing is not None and existing.removed_at is None and existing.raw_config == raw:
            return  # a retained config seen again (reconnect, HA birth): nothing changed
        now = self.clock.now()
        if existing is not None and existing.removed_at is None:
            self._unroute(existing)
            existing.config, existing.raw_config, existing.device_id = config, raw, device_id
            entity = existing
            self.record_event(key.key, "rediscovered", {})
        else:
            entity = Entity(key=key, device_id=device_id, config=config, raw_config=raw, discovered_at=now)
            self._entities[key.key] = entity
            self.record_event(key.key, "discovered", {"kind": str(config.kind)})
            log.info("entity discovered", extra={"entity": key.key, "kind": str(config.kind)})
        info = config.device
        self._dirty_devices[device_id] = DeviceRow(
            id=device_id,
            name=info.name if info else None,
            manufacturer=info.manufacturer if info else None,
            model=info.model if info else None,
            sw_version=info.sw_version if info else None,
            first_seen=now.isoformat(),
        )
        self._route(entity)
        self.metrics.accepted["discovery"] += 1
        self._dirty.add(entity.id)

    def _conflict(self, key: DiscoveryKey, config: EntityConfig, device_id: str) -> tuple[str, str] | None:
        """Refuse configs that use discovery topics, or claim topics or ids owned by another device."""
        for topic in config.topics():
            if topic == self.prefix or topic.startswith(self.prefix + "/"):
                return "topic_conflict", f"topic {topic[:80]!r} lies in the discovery tree"
        for topic in config.owned_topics():
            claimants = self._owners.get(topic)
            owner = self._entities[next(iter(claimants))].device_id if claimants else None
            if owner is not None and owner != device_id:
                return "topic_conflict", f"topic {topic[:80]!r} belongs to device {owner!r}"
        holder = self._unique_ids.get(config.unique_id) if config.unique_id is not None else None
        if holder is not None and holder != key.key:
            return "unique_id_conflict", f"unique_id {config.unique_id!r} already used by {holder}"
        return None

    def _handle_state(self, entity: Entity, message: InboundMessage) -> None:
        now = self.clock.now()
        entity.last_seen = now
        entity.heard_since_start = True
        try:
            state = entity.config.decode_state(message.topic, message.payload, entity.state)
        except DeviceCodecError as exc:
            entity.state_error = StateError(exc.code, str(exc)[:200], now)
            self._dirty.add(entity.id)
            self._reject(message, exc.code, str(exc), entity_id=entity.id)
            return
        changed = state != entity.state
        entity.state, entity.state_at, entity.state_error = state, now, None
        self.metrics.accepted["state"] += 1
        self._dirty.add(entity.id)
        if changed:
            self.record_event(entity.id, "state", state.model_dump(mode="json"))
        for listener in self._listeners:
            listener.on_state(entity)

    def _handle_availability(self, entity: Entity, message: InboundMessage) -> None:
        entries = [e for e in entity.config.availability_entries() if e.topic == message.topic]
        verdicts = [v for v in (e.decode(message.payload) for e in entries) if v is not None]
        if not verdicts:
            self._reject(
                message, "availability_invalid", "payload is neither available nor not-available", entity_id=entity.id
            )
            return
        now = self.clock.now()
        entity.heard_since_start = True
        entity.availability_by_topic[message.topic] = verdicts[0]
        if entity.config.availability_mode == "all":
            available = all(entity.availability_by_topic.values())
        elif entity.config.availability_mode == "any":
            available = any(entity.availability_by_topic.values())
        else:
            available = verdicts[0]
        if available:
            entity.last_seen = now
        self.metrics.accepted["availability"] += 1
        self._dirty.add(entity.id)
        if available == entity.available:
            return
        entity.available, entity.availability_at = available, now
        self.record_event(entity.id, "online" if available else "offline", {})
        log.info("entity %s", "online" if available else "offline", extra={"entity": entity.id})
        for listener in self._listeners:
            listener.on_availability(entity)

    def _remove(self, entity: Entity) -> None:
        self._unroute(entity)
        entity.removed_at = self.clock.now()
        self._dirty.add(entity.id)
        self.record_event(entity.id, "removed", {})
        log.info("entity removed", extra={"entity": entity.id})

    def _throttled(self, device_id: str, message: InboundMessage) -> None:
        # Counted every time, logged at most every few seconds per device: a flood must not flood the log too.
        self.metrics.rejected["rate_limited"] += 1
        assert self.limiter is not None
        dropped = self.limiter.report_due(device_id, _THROTTLE_LOG_SECONDS)
        if dropped:
            detail = f"{dropped} messages over {self.limiter.rate:g}/s (burst {self.limiter.burst}) dropped"
            self.metrics.recent_rejections.append(
                Rejection(self.clock.now(), message.topic[:200], "rate_limited", detail)
            )
            log.warning(
                "device flooding its topics: messages dropped",
                extra={"device": device_id, "topic": message.topic[:200], "dropped": dropped, "reason": "rate_limited"},
            )

    def _reject(self, message: InboundMessage, reason: str, detail: str, *, entity_id: str | None = None) -> None:
        excerpt = message.payload[:_EXCERPT].decode("utf-8", "replace")
        self.metrics.reject(Rejection(self.clock.now(), message.topic[:200], reason, detail[:200]))
        log.warning(
            "refused message: %s",
            reason,
            extra={"topic": message.topic[:200], "reason": reason, "detail": detail[:200], "excerpt": excerpt},
        )
        if entity_id is not None and entity_id in self._entities:
            self.record_event(entity_id, "rejected", {"reason": reason, "detail": detail[:200]})

    # --- routing ---------------------------------------------------------------------------------

    def _route(self, entity: Entity) -> None:
        listened = _listened_topics(entity)
        added = frozenset(t for t in listened if not self._routed(t))
        for topic in entity.config.state_topics():
            self._state_routes.setdefault(topic, set()).add(entity.id)
        for entry in entity.config.availability_entries():
            self._availability_routes.setdefault(entry.topic, set()).add(entity.id)
        for topic in entity.config.owned_topics():
            self._owners.setdefault(topic, set()).add(entity.id)
        if entity.config.unique_id is not None:
            self._unique_ids[entity.config.unique_id] = entity.id
        self._by_device.setdefault(entity.device_id, set()).add(entity.id)
        self._notify_topics(added, frozenset())

    def _unroute(self, entity: Entity) -> None:
        listened = _listened_topics(entity)
        for routes in (self._state_routes, self._availability_routes):
            for topic in listened:
                ids = routes.get(topic)
                if ids is not None:
                    ids.discard(entity.id)
                    if not ids:
                        del routes[topic]
        for topic in entity.config.owned_topics():
            ids = self._owners.get(topic)
            if ids is not None:
                ids.discard(entity.id)
                if not ids:
                    del self._owners[topic]
        if entity.config.unique_id is not None:
            self._unique_ids.pop(entity.config.unique_id, None)
        siblings = self._by_device.get(entity.device_id)
        if siblings is not None:
            siblings.discard(entity.id)
            if not siblings:
                del self._by_device[entity.device_id]
        self._notify_topics(frozenset(), frozenset(t for t in listened if not self._routed(t)))

    def _routed(self, topic: str) -> bool:
        return topic in self._state_routes or topic in self._availability_routes

    def _notify_topics(self, added: frozenset[str], removed: frozenset[str]) -> None:
        if (added or removed) and self._topics_changed is not None:
            self._topics_changed(added, removed)


def _listened_topics(entity: Entity) -> frozenset[str]:
    return entity.config.state_topics() | {e.topic for e in entity.config.availability_entries()}


def _device_id(key: DiscoveryKey, config: EntityConfig) -> str:
    if config.device is not None and config.device.identifiers:
        return config.device.identifiers[0]
    return key.node_id or key.key


def _state_from_json(config: EntityConfig, stored: str) -> EntityState:
    return config.state_model.model_validate_json(stored)


def _row(entity: Entity) -> EntityRow:
    return EntityRow(
        key=entity.id,
        device_id=entity.device_id,
        component=str(entity.component),
        kind=str(entity.kind),
        # A removed entity gives its unique_id up (the index is unique): the same device may come back under
        # another discovery topic, and its new row must not collide with the old one.
        unique_id=None if entity.removed_at else entity.config.unique_id,
        name=entity.name,
        config=entity.raw_config,
        discovered_at=entity.discovered_at.isoformat(),
        removed_at=entity.removed_at.isoformat() if entity.removed_at else None,
        state=entity.state_json(),
        state_at=entity.state_at.isoformat() if entity.state_at else None,
        state_error=entity.state_error.code if entity.state_error else None,
        state_error_at=entity.state_error.at.isoformat() if entity.state_error else None,
        available=None if entity.available is None else int(entity.available),
        availability_at=entity.availability_at.isoformat() if entity.availability_at else None,
        last_seen=entity.last_seen.isoformat() if entity.last_seen else None,
    )
