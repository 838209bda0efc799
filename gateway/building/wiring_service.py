"""Pinned wiring of bound devices: pinned when staff bind a device, a later change held until staff approve it (or
the device says the pinned wiring again), the pinned topics reserved until staff unbind the device."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, Self

import sqlite_utils

from devices import DiscoveryKey, EntityConfig

from ..audit import Actor, AuditLog
from ..clock import Clock
from ..core.entity import Entity
from ..core.journal import JournalEvent
from ..core.registry import Registry
from ..core.wiring import EntityWiring, FieldChange, device_digest, diff, wiring_of
from ..errors import Conflict, NotFound
from ..storage import Database
from ..storage.records import transaction
from ..tasks import TaskOwner
from .building_service import BuildingService

__all__ = ["DeviceWiring", "EntityWiringView", "Pin", "WiringService"]

log = logging.getLogger(__name__)

EntityStatus = Literal["pinned", "changed", "added", "removed"]
DeviceStatus = Literal["pinned", "held", "removed", "unpinned"]


@dataclass(frozen=True, slots=True)
class Pin:
    """The wiring staff approved for one entity of a bound device."""

    wiring: EntityWiring
    at: datetime
    by: str | None


@dataclass(frozen=True, slots=True)
class Hold:
    """An entity whose wiring differs from its pin (or that has none, added to a bound device)."""

    device_id: str
    wiring: EntityWiring
    since: datetime
    rejected_at: datetime | None = None
    rejected_by: str | None = None


@dataclass(frozen=True, slots=True)
class EntityWiringView:
    """One entity of a device as staff see its wiring: pinned, changed, added or removed, and what changed."""

    entity_id: str
    status: EntityStatus
    changes: tuple[FieldChange, ...]


@dataclass(frozen=True, slots=True)
class DeviceWiring:
    """A device's wiring: ``held`` while any entity is held, ``removed`` when a pinned entity's config is gone (its
    topics stay reserved until staff unbind it), ``unpinned`` for a device nobody bound."""

    device_id: str
    status: DeviceStatus
    digest: str | None
    held_since: datetime | None
    rejected_at: datetime | None
    entities: tuple[EntityWiringView, ...]


class WiringService:
    """Keeps the pins and holds; is the registry's wiring check and one of its change listeners; ``async with`` runs
    the writer that stores holds and audits them (a hold is found on the event loop, synchronously)."""

    def __init__(self, db: Database, clock: Clock, registry: Registry, building: BuildingService, *, audit: AuditLog):
        self._db = db
        self._clock = clock
        self._registry = registry
        self._building = building
        self._audit = audit
        self._pins: dict[str, Pin] = {}  # entity id -> pin
        # Reserved topic -> device, and the pinned devices: asked for every config, rebuilt only when pins change
        # (a pass over every pin per config made a start with many bound devices quadratic).
        self._pin_index: tuple[dict[str, str], frozenset[str]] | None = None
        self._holds: dict[str, Hold] = {}  # entity id -> hold
        self._writes: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
        self._tasks = TaskOwner()
        registry.check_wiring(self.refusal)
        registry.add_change_listener(self)
        building.on_bound(self.pin_device)
        building.on_unbound(self.unpin_device)

    # --- start and stop ----------------------------------------------------------------------------

    async def load(self) -> None:
        """Read pins and holds; pin bound devices that have none yet (bound before pinning existed); assess every
        live entity (a config changed while the gateway was down is held now)."""
        rows = await self._db.run(lambda db: list(db.table("wiring").rows))
        for row in rows:
            if row["pinned"] is not None:
                self._pins[row["entity_key"]] = Pin(
                    EntityWiring.model_validate_json(row["pinned"]), _time(row["pinned_at"]), row["pinned_by"]
                )
                self._pin_index = None
            if row["pending"] is not None:
                self._holds[row["entity_key"]] = Hold(
                    row["device_id"],
                    EntityWiring.model_validate_json(row["pending"]),
                    _time(row["held_since"]),
                    _optional_time(row["rejected_at"]),
                    row["rejected_by"],
                )
        pinned_devices = self._index()[1]
        for device_id in sorted({e.device_id for e in self._registry.entities()} - pinned_devices):
            if self._building.binding(device_id) is not None:
                await self.pin_device(device_id, "system")
        for entity in self._registry.entities():
            self._assess(entity)

    async def __aenter__(self) -> Self:
        await self._tasks.__aenter__()
        self._tasks.start(self._write_forever(), "wiring-writer")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._tasks.__aexit__(exc_type, exc, tb)
        await self._drain()  # what was found before the stop is stored and audited still

    # --- the registry's wiring check ----------------------------------------------------------------

    def refusal(self, key: DiscoveryKey, config: EntityConfig, device_id: str) -> tuple[str, str] | None:
        """``topic_reserved`` for a config claiming a topic pinned to another device (see ``WiringCheck``)."""
        owners = self._reserved()
        for topic in sorted(config.owned_topics()):
            owner = owners.get(topic)
            if owner is not None and owner != device_id:
                return "topic_reserved", f"topic {topic[:80]!r} is pinned to bound device {owner!r}"
        return None

    def reserved_topics(self) -> dict[str, str]:
        """Topic -> the bound device it is pinned to (kept while the device's config is removed)."""
        return dict(self._reserved())

    def _reserved(self) -> dict[str, str]:
        return self._index()[0]

    def _index(self) -> tuple[dict[str, str], frozenset[str]]:
        if self._pin_index is None:
            reserved = {t: p.wiring.device_id for p in self._pins.values() for t in p.wiring.owned_topics}
            self._pin_index = reserved, frozenset(p.wiring.device_id for p in self._pins.values())
        return self._pin_index

    # --- ChangeListener ------------------------------------------------------------------------------

    def on_discovered(self, entity: Entity, at: datetime) -> None:
        """A config was accepted: hold the entity if its wiring differs from the pinned one, release it if not."""
        self._assess(entity)

    def on_removed(self, entity: Entity) -> None:
        """A config was removed: its hold ends with it (its pin, and so its topics, stay until staff unbind)."""
        if self._holds.pop(entity.id, None) is not None:
            self._queue(self._store_pending(entity.id, entity.device_id, None))

    def on_touched(self, entity: Entity) -> None:
        """Nothing to do."""

    def on_state(self, entity: Entity) -> None:
        """Nothing to do."""

    def on_availability(self, entity: Entity) -> None:
        """Nothing to do."""

    def on_event(self, event: JournalEvent) -> None:
        """Nothing to do."""

    # --- views ---------------------------------------------------------------------------------------

    def held(self, entity_id: str) -> bool:
        """Whether the entity is held now."""
        return entity_id in self._holds

    def device(self, device_id: str) -> DeviceWiring:
        """The device's wiring as staff see it: each pinned, changed, added or removed entity with its changes."""
        pins = {k: p for k, p in self._pins.items() if p.wiring.device_id == device_id}
        live = {e.id: e for e in self._registry.entities_of_device(device_id)}
        views: list[EntityWiringView] = []
        for entity_id in sorted(pins.keys() | live.keys()):
            pin, entity, hold = pins.get(entity_id), live.get(entity_id), self._holds.get(entity_id)
            pinned = None if pin is None else pin.wiring
            if entity is None:
                views.append(EntityWiringView(entity_id, "removed", ()))
            elif hold is not None:
                views.append(EntityWiringView(entity_id, "changed" if pin else "added", diff(pinned, hold.wiring)))
            else:
                views.append(EntityWiringView(entity_id, "pinned", ()))
        holds = [h for k, h in self._holds.items() if k in live]
        status: DeviceStatus = "unpinned" if not pins and not holds else "pinned"
        if holds:
            status = "held"
        elif any(v.status == "removed" for v in views):
            status = "removed"
        rejected = [h.rejected_at for h in holds if h.rejected_at is not None]
        return DeviceWiring(
            device_id,
            status,
            device_digest([p.wiring for p in pins.values()]) if pins else None,
            min((h.since for h in holds), default=None),
            max(rejected) if len(rejected) == len(holds) and rejected else None,
            tuple(views),
        )

    # --- use cases -----------------------------------------------------------------------------------

    async def pin_device(self, device_id: str, actor: str) -> None:
        """Pin the wiring of the device's live entities now (at binding); any hold of them ends."""
        now = self._clock.now()
        pins = {e.id: Pin(self._wiring(e), now, actor) for e in self._registry.entities_of_device(device_id)}
        # In memory first, with no await before: a config arriving meanwhile is judged against these pins.
        self._pins.update(pins)
        self._pin_index = None
        for entity in self._registry.entities_of_device(device_id):
            entity.held = False
            self._holds.pop(entity.id, None)
        await self._db.run(lambda db: _write_pins(db, device_id, pins))
        log.info("device wiring pinned", extra={"device": device_id, "entities": sorted(pins), "by": actor})

    async def unpin_device(self, device_id: str, actor: str) -> None:
        """Forget the device's pins and holds (at unbinding): its topics are free again, its entities trusted as
        any unbound device's are."""
        self._pins = {k: p for k, p in self._pins.items() if p.wiring.device_id != device_id}
        self._pin_index = None
        for entity_id in [k for k, h in self._holds.items() if h.device_id == device_id]:
            del self._holds[entity_id]
        for entity in self._registry.entities_of_device(device_id):
            self._holds.pop(entity.id, None)
            entity.held = False
        await self._db.run(lambda db: _delete_device(db, device_id))
        log.info("device wiring unpinned", extra={"device": device_id, "by": actor})

    async def approve(self, property_id: str, device_id: str, *, by: Actor) -> DeviceWiring:
        """Staff pin the device's changed wiring and release its hold (audited); 404 ``device_not_found`` for a
        device not bound in the property, 409 ``device_not_held`` when nothing awaits approval."""
        unit_id = self._bound_unit(property_id, device_id)
        held = [e for e in self._registry.entities_of_device(device_id) if e.id in self._holds]
        if not held:
            raise Conflict(f"device {device_id!r} has no wiring change to approve", code="device_not_held")
        now, actor = self._clock.now(), by.account.id
        changes = {e.id: self._changes(e.id) for e in held}
        pins = {e.id: Pin(self._holds[e.id].wiring, now, actor) for e in held}
        self._pins.update(pins)
        self._pin_index = None
        for entity in held:
            del self._holds[entity.id]
            entity.held = False
            self._registry.record_event(entity.id, "wiring_approved", {"digest": pins[entity.id].wiring.digest})
        await self._db.run(lambda db: _write_pins(db, device_id, pins))
        log.warning("device wiring change approved", extra={"device": device_id, "by": actor})
        await self._audit.record(
            by,
            "device.wiring_approve",
            property_id=property_id,
            unit_id=unit_id,
            target=device_id,
            detail={"entities": {k: [c.model_dump(mode="json") for c in v] for k, v in changes.items()}},
        )
        return self.device(device_id)

    async def reject(self, property_id: str, device_id: str, *, by: Actor) -> DeviceWiring:
        """Staff refuse the change (audited): the device stays held until it says its pinned wiring again or staff
        unbind it; 404 and 409 as ``approve``."""
        unit_id = self._bound_unit(property_id, device_id)
        held = [e for e in self._registry.entities_of_device(device_id) if e.id in self._holds]
        if not held:
            raise Conflict(f"device {device_id!r} has no wiring change to reject", code="device_not_held")
        now, actor = self._clock.now(), by.account.id
        for entity in held:
            hold = self._holds[entity.id]
            self._holds[entity.id] = Hold(hold.device_id, hold.wiring, hold.since, now, actor)
        keys = [e.id for e in held]
        await self._db.run(lambda db: _write_rejected(db, keys, now, actor))
        await self._audit.record(
            by,
            "device.wiring_reject",
            property_id=property_id,
            unit_id=unit_id,
            target=device_id,
            detail={"entities": keys},
        )
        return self.device(device_id)

    # --- internals -----------------------------------------------------------------------------------

    def _bound_unit(self, property_id: str, device_id: str) -> str:
        binding = self._building.binding(device_id)
        if binding is None or self._building.unit(binding.unit_id).property_id != property_id:
            raise NotFound(f"no bound device {device_id!r}", code="device_not_found")
        return binding.unit_id

    def _wiring(self, entity: Entity) -> EntityWiring:
        return wiring_of(entity.key, entity.config, entity.device_id)

    def _changes(self, entity_id: str) -> tuple[FieldChange, ...]:
        pin, hold = self._pins.get(entity_id), self._holds.get(entity_id)
        return diff(None if pin is None else pin.wiring, None if hold is None else hold.wiring)

    def _assess(self, entity: Entity) -> None:
        """Hold or release ``entity`` by its wiring now against its pin; record, store and audit a change."""
        pin = self._pins.get(entity.id)
        # The wiring (a dump, a canonical JSON and its digest) only when there is a pin or a hold to compare it
        # with: an entity of an unbound device, never held, needs none (at a start of 5,000 devices every entity).
        wiring: EntityWiring | None = None
        if pin is not None:
            wiring = self._wiring(entity)
            trusted = pin.wiring.digest == wiring.digest
        else:
            # An entity added to a bound device, or one that moved to a device bound meanwhile.
            bound = self._building.binding(entity.device_id) is not None
            trusted = not bound and entity.device_id not in self._index()[1]
        entity.held = not trusted
        previous = self._holds.get(entity.id)
        if trusted and previous is None:
            return
        if wiring is None:
            wiring = self._wiring(entity)
        if trusted:
            if previous is not None:
                del self._holds[entity.id]
                self._registry.record_event(entity.id, "wiring_restored", {"digest": wiring.digest})
                log.info("device wiring back to the pinned one: hold released", extra={"entity": entity.id})
                self._queue(self._store_pending(entity.id, entity.device_id, None))
                self._queue(self._audit_hold(entity.id, entity.device_id, "device.wiring_restored", {}))
            return
        if previous is not None and previous.wiring.digest == wiring.digest:
            return  # held already for this very wiring (a retained config seen again, a restart)
        self._holds[entity.id] = Hold(entity.device_id, wiring, self._clock.now())
        changes = [c.model_dump(mode="json") for c in self._changes(entity.id)]
        data = {"device_id": entity.device_id, "digest": wiring.digest, "added": pin is None, "changes": changes}
        self._registry.record_event(entity.id, "wiring_changed", data)
        log.warning(
            "bound device's wiring changed: held until staff approve",
            extra={"entity": entity.id, "device": entity.device_id, "fields": [c["field"] for c in changes]},
        )
        self._queue(self._store_pending(entity.id, entity.device_id, self._holds[entity.id]))
        self._queue(self._audit_hold(entity.id, entity.device_id, "device.wiring_changed", data))

    def _queue(self, write: Callable[[], Awaitable[None]]) -> None:
        self._writes.put_nowait(write)

    def _store_pending(self, entity_id: str, device_id: str, hold: Hold | None) -> Callable[[], Awaitable[None]]:
        async def store() -> None:
            await self._db.run(lambda db: _write_pending(db, entity_id, device_id, hold))

        return store

    def _audit_hold(
        self, entity_id: str, device_id: str, action: str, detail: dict[str, Any]
    ) -> Callable[[], Awaitable[None]]:
        binding = self._building.binding(device_id)
        unit = None if binding is None else self._building.unit(binding.unit_id)

        async def record() -> None:
            await self._audit.record(
                None,
                action,
                property_id=None if unit is None else unit.property_id,
                unit_id=None if unit is None else unit.id,
                target=device_id,
                detail={"entity": entity_id, **detail},
            )

        return record

    async def _write_forever(self) -> None:
        while True:
            write = await self._writes.get()
            await self._run(write)

    async def _drain(self) -> None:
        while not self._writes.empty():
            await self._run(self._writes.get_nowait())

    async def _run(self, write: Callable[[], Awaitable[None]]) -> None:
        try:
            await write()
        except Exception:  # a failed write must not stop the next ones; the hold itself is in memory
            log.exception("cannot store a wiring hold")


def _write_pins(db: sqlite_utils.Database, device_id: str, pins: dict[str, Pin]) -> None:
    with transaction(db):
        for entity_id, pin in pins.items():
            db.conn.execute(
                "INSERT INTO wiring (entity_key, device_id, pinned_digest, pinned, pinned_at, pinned_by) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(entity_key) DO UPDATE SET device_id = excluded.device_id, "
                "pinned_digest = excluded.pinned_digest, pinned = excluded.pinned, pinned_at = excluded.pinned_at, "
                "pinned_by = excluded.pinned_by, pending_digest = NULL, pending = NULL, held_since = NULL, "
                "rejected_at = NULL, rejected_by = NULL",
                (
                    entity_id,
                    device_id,
                    pin.wiring.digest,
                    pin.wiring.model_dump_json(),
                    pin.at.isoformat(),
                    pin.by,
                ),
            )


def _delete_device(db: sqlite_utils.Database, device_id: str) -> None:
    with transaction(db):
        db.conn.execute("DELETE FROM wiring WHERE device_id = ?", (device_id,))


def _write_rejected(db: sqlite_utils.Database, keys: list[str], at: datetime, actor: str) -> None:
    with transaction(db):
        db.conn.executemany(
            "UPDATE wiring SET rejected_at = ?, rejected_by = ? WHERE entity_key = ?",
            [(at.isoformat(), actor, k) for k in keys],
        )


def _write_pending(db: sqlite_utils.Database, entity_id: str, device_id: str, hold: Hold | None) -> None:
    with transaction(db):
        if hold is None:
            db.conn.execute(
                "UPDATE wiring SET pending_digest = NULL, pending = NULL, held_since = NULL, rejected_at = NULL, "
                "rejected_by = NULL WHERE entity_key = ?",
                (entity_id,),
            )
            db.conn.execute("DELETE FROM wiring WHERE entity_key = ? AND pinned IS NULL", (entity_id,))
            return
        db.conn.execute(
            "INSERT INTO wiring (entity_key, device_id, pending_digest, pending, held_since) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(entity_key) DO UPDATE SET pending_digest = excluded.pending_digest, "
            "pending = excluded.pending, held_since = excluded.held_since, rejected_at = NULL, rejected_by = NULL",
            (entity_id, device_id, hold.wiring.digest, hold.wiring.model_dump_json(), hold.since.isoformat()),
        )


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _optional_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
