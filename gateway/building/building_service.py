"""Properties, units, device bindings and residents' device names, kept in memory and in SQLite."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

import sqlite_utils

from ..accounts.models import Account, Principal
from ..audit import AuditLog
from ..clock import Clock
from ..errors import Conflict, InvalidRequest, NotFound
from ..storage import Database
from ..storage.records import transaction
from . import store
from .models import Binding, Property, Unit

__all__ = ["BindingHook", "BuildingService"]

BindingHook = Callable[[str, str], Awaitable[None]]
"""Told of a device bound or unbound: (device id, actor)."""

log = logging.getLogger(__name__)
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


class BuildingService:
    """The property layout; lookups (which unit has this device?) are in memory, changes written through."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        persist_devices: Callable[[], Awaitable[None]],
        *,
        audit: AuditLog,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit  # staff changes to the layout are recorded here
        self._persist_devices = persist_devices
        self._properties: dict[str, Property] = {}
        self._units: dict[str, Unit] = {}
        self._bindings: dict[str, Binding] = {}  # device id -> its current binding
        self._bound: list[BindingHook] = []
        self._unbound: list[BindingHook] = []

    async def load(self) -> None:
        """Read the layout from the database (at start)."""

        def read(db: sqlite_utils.Database) -> tuple[list[Property], list[Unit], list[Binding]]:
            return store.properties(db), store.units(db), store.active_bindings(db)

        props, units, bindings = await self._db.run(read)
        self._properties = {p.id: p for p in props}
        self._units = {u.id: u for u in units}
        self._bindings = {b.device_id: b for b in bindings}

    # --- properties and units ----------------------------------------------------------------------

    def properties(self) -> list[Property]:
        """Every property."""
        return sorted(self._properties.values(), key=lambda p: p.id)

    def property(self, property_id: str) -> Property:
        """The property; NotFound otherwise."""
        prop = self._properties.get(property_id)
        if prop is None:
            raise NotFound(f"no property {property_id!r}", code="property_not_found")
        return prop

    async def create_property(self, property_id: str, name: str, *, by: Principal) -> Property:
        """The operator creates a property (audited); Conflict if the id is taken."""
        _check_id(property_id, "id")
        now = self._clock.now()
        if not await self._db.run(lambda db: store.insert_property(db, property_id, name, now.isoformat())):
            raise Conflict(f"property {property_id!r} exists", code="property_exists", field="id")
        prop = Property(property_id, name, now)
        self._properties[property_id] = prop
        await self._audit.record(by, "property.create", property_id=prop.id, target=prop.id)
        return prop

    def units(self, property_id: str) -> list[Unit]:
        """The units of a property, by label."""
        return sorted((u for u in self._units.values() if u.property_id == property_id), key=lambda u: u.label)

    def unit(self, unit_id: str, property_id: str | None = None) -> Unit:
        """The unit (in that property, when given); NotFound otherwise, so ids of other properties do not leak."""
        unit = self._units.get(unit_id)
        if unit is None or (property_id is not None and unit.property_id != property_id):
            raise NotFound(f"no unit {unit_id!r}", code="unit_not_found")
        return unit

    async def create_unit(self, property_id: str, label: str, unit_id: str | None = None, *, by: Principal) -> Unit:
        """A manager creates a unit in a property (audited); Conflict if its id or label is taken."""
        self.property(property_id)
        unit_id = unit_id or uuid.uuid4().hex[:12]
        _check_id(unit_id, "id")
        now = self._clock.now()
        if not await self._db.run(lambda db: store.insert_unit(db, unit_id, property_id, label, now.isoformat())):
            raise Conflict(f"a unit with id {unit_id!r} or label {label!r} exists", code="unit_exists", field="label")
        unit = Unit(unit_id, property_id, label, now)
        self._units[unit_id] = unit
        await self._audit.record(by, "unit.create", property_id=property_id, unit_id=unit.id, target=unit.id)
        return unit

    # --- bindings ------------------------------------------------------------------------------------

    def on_bound(self, hook: BindingHook) -> None:
        """Run ``hook(device_id, actor)`` after each binding (the device's wiring is pinned there)."""
        self._bound.append(hook)

    def on_unbound(self, hook: BindingHook) -> None:
        """Run ``hook(device_id, actor)`` after each unbinding (the device's pinned wiring is released there)."""
        self._unbound.append(hook)

    def unit_of_device(self, device_id: str) -> str | None:
        """The unit a device is bound to now."""
        binding = self._bindings.get(device_id)
        return None if binding is None else binding.unit_id

    def unbound(self, device_ids: Iterable[str]) -> list[str]:
        """Those of ``device_ids`` bound to no unit, in the order given."""
        return [d for d in device_ids if d not in self._bindings]

    def binding(self, device_id: str) -> Binding | None:
        """A device's current binding."""
        return self._bindings.get(device_id)

    def devices_of_unit(self, unit_id: str) -> list[str]:
        """Ids of the devices bound to a unit."""
        return sorted(d for d, b in self._bindings.items() if b.unit_id == unit_id)

    async def bind(self, device_id: str, unit_id: str, actor: str) -> Binding:
        """Bind a discovered device to a unit; Conflict if it is bound already."""
        unit = self.unit(unit_id)
        now = self._clock.now()

        def insert(db: sqlite_utils.Database) -> str | None:
            with transaction(db):
                if not db.execute("SELECT 1 FROM devices WHERE id = ?", [device_id]).fetchone():
                    return "device_not_found"
                if db.execute(
                    "SELECT 1 FROM bindings WHERE device_id = ? AND unbound_at IS NULL", [device_id]
                ).fetchone():
                    return "device_already_bound"
                db.table("bindings").insert(
                    {"device_id": device_id, "unit_id": unit.id, "bound_at": now.isoformat(), "bound_by": actor}
                )
            return None

        # The binding references the device row, which the persister may not have written yet.
        await self._persist_devices()
        problem = await self._db.run(insert)
        if problem == "device_not_found":
            raise NotFound(f"no discovered device {device_id!r}", code="device_not_found")
        if problem == "device_already_bound":
            raise Conflict(
                f"device {device_id!r} is bound to a unit already; unbind it first", code="device_already_bound"
            )
        binding = Binding(device_id, unit.id, now, actor)
        self._bindings[device_id] = binding
        for hook in self._bound:
            await hook(device_id, actor)
        log.info("device bound", extra={"device": device_id, "unit": unit.id, "by": actor})
        return binding

    async def unbind(self, device_id: str, unit: Unit, *, by: Principal) -> None:
        """Staff unbind a device from the unit (audited); NotFound if it is not bound there."""
        unit_id, actor = unit.id, by.actor
        binding = self._bindings.get(device_id)
        if binding is None or binding.unit_id != unit_id:
            raise NotFound(f"device {device_id!r} is not bound to unit {unit_id!r}", code="device_not_found")
        now = self._clock.now().isoformat()

        def update(db: sqlite_utils.Database) -> None:
            with transaction(db):
                db.conn.execute(
                    "UPDATE bindings SET unbound_at = ?, unbound_by = ? WHERE device_id = ? AND unbound_at IS NULL",
                    (now, actor, device_id),
                )
                db.conn.execute("DELETE FROM device_names WHERE device_id = ? AND unit_id = ?", (device_id, unit_id))

        await self._db.run(update)
        del self._bindings[device_id]
        for hook in self._unbound:
            await hook(device_id, actor)
        log.info("device unbound", extra={"device": device_id, "unit": unit_id, "by": actor})
        await self._audit.record(by, "device.unbind", property_id=unit.property_id, unit_id=unit_id, target=device_id)

    # --- residents' names for their devices --------------------------------------------------------

    async def names(self, unit_id: str) -> dict[str, str]:
        """Device id -> the name the unit's resident gave it."""
        rows = await self._db.run(
            lambda db: db.execute("SELECT device_id, name FROM device_names WHERE unit_id = ?", [unit_id]).fetchall()
        )
        return {r[0]: r[1] for r in rows}

    async def set_name(self, unit_id: str, device_id: str, name: str | None, actor: str) -> None:
        """Name a device of the unit (None removes the name)."""
        if self.unit_of_device(device_id) != unit_id:
            raise NotFound(f"no device {device_id!r}", code="device_not_found")
        now = self._clock.now().isoformat()

        def write(db: sqlite_utils.Database) -> None:
            with transaction(db):
                db.conn.execute("DELETE FROM device_names WHERE unit_id = ? AND device_id = ?", (unit_id, device_id))
                if name is not None:
                    db.table("device_names").insert(
                        {"unit_id": unit_id, "device_id": device_id, "name": name, "set_by": actor, "set_at": now}
                    )

        await self._db.run(write)

    async def erase_personal_data(self, actor: str, replacement: str) -> int:
        """Delete the names a person gave devices and anonymise them in the command history; return rows changed."""

        def erase(db: sqlite_utils.Database) -> int:
            with transaction(db):
                names = db.conn.execute("DELETE FROM device_names WHERE set_by = ?", (actor,)).rowcount
            return names + store.anonymise_actor(db, actor, replacement)

        # History events wait in memory for the persister; written after this, they would still name the person.
        await self._persist_devices()
        return await self._db.run(erase)

    async def erase_resident(
        self, resident: Account, unit: Unit, replacement: str, *, by: Principal, sessions_revoked: int
    ) -> int:
        """The last step of a resident's move-out by a manager: ``erase_personal_data``, audited as the move-out."""
        anonymised = await self.erase_personal_data(resident.actor, replacement)
        await self._audit.record(
            by,
            "resident.move_out",
            property_id=unit.property_id,
            unit_id=unit.id,
            target=resident.id,
            detail={"sessions_revoked": sessions_revoked, "records_anonymised": anonymised},
        )
        return anonymised

    async def unit_events(
        self, unit_id: str, since: datetime, before: int | None, limit: int
    ) -> list[dict[str, object]]:
        """The unit's events newest first (see ``store.unit_events``)."""
        return await self._db.run(lambda db: store.unit_events(db, unit_id, since.isoformat(), before, limit))


def _check_id(value: str, field: str) -> None:
    if not _ID.match(value):
        raise InvalidRequest(
            "ids are 1-40 lower-case letters, digits and dashes, starting with a letter or digit",
            code="id_invalid",
            field=field,
        )
