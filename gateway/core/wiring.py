"""An entity's wiring: what the gateway's commands and its reading of reports depend on, as a frozen model with a
stable digest, the difference between two wirings, and the port through which discovery asks about pinned ones."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from devices import DiscoveryKey, EntityConfig

__all__ = ["COSMETIC_FIELDS", "EntityWiring", "FieldChange", "WiringCheck", "device_digest", "diff", "wiring_of"]

COSMETIC_FIELDS = frozenset({"name", "unique_id", "device", "origin"})
"""Config fields that change nothing a command or a report's meaning depends on (names, firmware versions); every
other field, present or defaulted, is wiring: a field added to a device model later counts unless listed here."""


class EntityWiring(BaseModel):
    """One entity's wiring: its component, device, every non-cosmetic config field and the topics it owns."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entity_id: str
    component: str
    device_id: str
    fields: dict[str, Any]
    owned_topics: tuple[str, ...]

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical JSON of everything but the entity id (stable across restarts and versions)."""
        body = {"component": self.component, "device_id": self.device_id, "fields": self.fields}
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def flat(self) -> dict[str, Any]:
        """Every wiring field by name, the device and component among them (what a diff compares)."""
        return {"component": self.component, "device_id": self.device_id, **self.fields}


class FieldChange(BaseModel):
    """One wiring field as pinned and as the device now says (None: absent on that side)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    pinned: Any
    now: Any


def wiring_of(key: DiscoveryKey, config: EntityConfig, device_id: str) -> EntityWiring:
    """The canonical wiring of an entity with ``config`` under ``device_id``."""
    fields = config.model_dump(mode="json", exclude=set(COSMETIC_FIELDS))
    return EntityWiring(
        entity_id=key.key,
        component=str(key.component),
        device_id=device_id,
        fields=json.loads(json.dumps(fields, sort_keys=True)),
        owned_topics=tuple(sorted(config.owned_topics())),
    )


def diff(pinned: EntityWiring | None, now: EntityWiring | None) -> tuple[FieldChange, ...]:
    """The fields that differ, by name (an added or removed entity differs in every field)."""
    before = {} if pinned is None else pinned.flat()
    after = {} if now is None else now.flat()
    return tuple(
        FieldChange(field=name, pinned=before.get(name), now=after.get(name))
        for name in sorted(before.keys() | after.keys())
        if before.get(name) != after.get(name)
    )


def device_digest(wirings: list[EntityWiring]) -> str:
    """A device's digest: over its entities' ids and digests, in id order."""
    parts = sorted(f"{w.entity_id}={w.digest}" for w in wirings)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class WiringCheck(Protocol):
    """Asked by discovery before a config is accepted: whether it is refused because it claims topics pinned to
    another bound device (even one whose config was removed); (code, detail) if so, None when it may go on (a
    changed wiring of a pinned entity is accepted and then held, not refused)."""

    def __call__(self, key: DiscoveryKey, config: EntityConfig, device_id: str) -> tuple[str, str] | None: ...
