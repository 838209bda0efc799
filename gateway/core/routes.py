"""Which live entities listen on which topics, own which topics and unique ids, and belong to which device."""

from __future__ import annotations

from collections.abc import Callable

from devices import DiscoveryKey, EntityConfig

from .entity import Entity

__all__ = ["TopicRoutes", "TopicsChanged"]

TopicsChanged = Callable[[frozenset[str], frozenset[str]], None]
"""Told which topics to subscribe (added) and unsubscribe (removed)."""


class TopicRoutes:
    """Indexes of the live entities by topic, unique id and device; says which topics start or stop mattering."""

    def __init__(self) -> None:
        self._state: dict[str, set[str]] = {}
        self._availability: dict[str, set[str]] = {}
        self._owners: dict[str, dict[str, str]] = {}  # topic -> {entity id: device id} (all of one device)
        self._unique_ids: dict[str, str] = {}  # unique_id -> entity id
        self._by_device: dict[str, set[str]] = {}  # device id -> its live entities
        self._topics_changed: TopicsChanged | None = None

    def on_topics_changed(self, callback: TopicsChanged) -> None:
        """Be told which topics to subscribe (added, removed) as entities come and go."""
        self._topics_changed = callback

    def topics(self) -> frozenset[str]:
        """Every state and availability topic to subscribe."""
        return frozenset(self._state) | frozenset(self._availability)

    def state_listeners(self, topic: str) -> tuple[str, ...]:
        """Ids of the entities whose state arrives on ``topic``."""
        return tuple(self._state.get(topic, ()))

    def availability_listeners(self, topic: str) -> tuple[str, ...]:
        """Ids of the entities whose availability arrives on ``topic``."""
        return tuple(self._availability.get(topic, ()))

    def of_device(self, device_id: str) -> frozenset[str]:
        """Ids of the device's live entities."""
        return frozenset(self._by_device.get(device_id, ()))

    def has_device(self, device_id: str) -> bool:
        """Whether the device has a live entity."""
        return device_id in self._by_device

    def device_ids(self) -> list[str]:
        """Ids of every device with a live entity."""
        return sorted(self._by_device)

    def conflict(self, prefix: str, key: DiscoveryKey, config: EntityConfig, device_id: str) -> tuple[str, str] | None:
        """Why ``config`` is refused (code, detail): it uses discovery topics, or claims topics or ids owned by
        another device; None when it may be routed."""
        for topic in config.topics():
            if topic == prefix or topic.startswith(prefix + "/"):
                return "topic_conflict", f"topic {topic[:80]!r} lies in the discovery tree"
        # Command topics too: one a config does not own (an update entity's install topic, a bridge's) must still
        # not be another device's, or an install would publish its payload on that device's command topic.
        for topic in sorted(config.owned_topics() | config.command_topics()):
            claimants = self._owners.get(topic)
            owner = next(iter(claimants.values())) if claimants else None
            if owner is not None and owner != device_id:
                return "topic_conflict", f"topic {topic[:80]!r} belongs to device {owner!r}"
        holder = self._unique_ids.get(config.unique_id) if config.unique_id is not None else None
        if holder is not None and holder != key.key:
            return "unique_id_conflict", f"unique_id {config.unique_id!r} already used by {holder}"
        return None

    def owner_of(self, topic: str) -> str | None:
        """The device that owns ``topic`` (reports or takes commands on it), if any."""
        claimants = self._owners.get(topic)
        return next(iter(claimants.values())) if claimants else None

    def add(self, entity: Entity) -> None:
        """Route ``entity``'s topics to it."""
        listened = _listened_topics(entity)
        added = frozenset(t for t in listened if not self._routed(t))
        for topic in entity.config.state_topics():
            self._state.setdefault(topic, set()).add(entity.id)
        for entry in entity.config.availability_entries():
            self._availability.setdefault(entry.topic, set()).add(entity.id)
        for topic in entity.config.owned_topics():
            self._owners.setdefault(topic, {})[entity.id] = entity.device_id
        if entity.config.unique_id is not None:
            self._unique_ids[entity.config.unique_id] = entity.id
        self._by_device.setdefault(entity.device_id, set()).add(entity.id)
        self._notify(added, frozenset())

    def remove(self, entity: Entity) -> None:
        """Stop routing to ``entity`` (as routed by its current config and device)."""
        listened = _listened_topics(entity)
        for routes in (self._state, self._availability):
            for topic in listened:
                ids = routes.get(topic)
                if ids is not None:
                    ids.discard(entity.id)
                    if not ids:
                        del routes[topic]
        for topic in entity.config.owned_topics():
            owners = self._owners.get(topic)
            if owners is not None:
                owners.pop(entity.id, None)
                if not owners:
                    del self._owners[topic]
        if entity.config.unique_id is not None:
            self._unique_ids.pop(entity.config.unique_id, None)
        siblings = self._by_device.get(entity.device_id)
        if siblings is not None:
            siblings.discard(entity.id)
            if not siblings:
                del self._by_device[entity.device_id]
        self._notify(frozenset(), frozenset(t for t in listened if not self._routed(t)))

    def _routed(self, topic: str) -> bool:
        return topic in self._state or topic in self._availability

    def _notify(self, added: frozenset[str], removed: frozenset[str]) -> None:
        if (added or removed) and self._topics_changed is not None:
            self._topics_changed(added, removed)


def _listened_topics(entity: Entity) -> frozenset[str]:
    return entity.config.state_topics() | {e.topic for e in entity.config.availability_entries()}
