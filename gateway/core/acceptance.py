"""Whether a discovery config is accepted when the device plane is enforced, and which publisher owns each device.

A config is accepted only from the namespace of the live credential that owns its node id: every topic it names
inside that credential's roots, and its device id either new or already that credential's. The first owner of a
device id keeps it (recorded in ``device_owners``): another publisher claiming it is refused, never merged. A
publisher's new, unbound devices are capped per property, so a flood of fake configs costs only that property's
pending list, and revoking the flooding credential frees it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from devices import DiscoveryKey, EntityConfig

from ..clock import Clock
from ..errors import StorageError
from ..storage import Database
from ..storage.records import DeviceOwnerRow, write_device_owners
from .owners import DeviceOwners, Owner

__all__ = ["Acceptance", "DeviceOwner", "DeviceView", "Refusal"]

log = logging.getLogger(__name__)

UNOWNED = "(unowned)"
"""The publisher key of configs no live credential owns: one key, so a flood of them is logged as one publisher."""
_NOBODY = ""
"""The holder of a device whose live entities no single live credential owns (no credential id is empty)."""


@dataclass(frozen=True, slots=True)
class DeviceOwner:
    """Who published a device first, and so owns its id: a broker credential of a property."""

    credential_id: str
    property_id: str | None
    claimed_at: datetime


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a config is refused (a stable code and a detail), and whose refusal it is (for rate-limited logs)."""

    code: str
    detail: str
    publisher: str


class DeviceView(Protocol):
    """What acceptance reads of the registry: the live entities of a device."""

    def device_keys(self, device_id: str) -> list[DiscoveryKey]:
        """Discovery keys of the device's live entities."""
        ...

    def has_device(self, device_id: str) -> bool:
        """Whether the device has a live entity."""
        ...


class Acceptance:
    """The enforced device plane's acceptance decision, and the record of each device's owner."""

    def __init__(
        self,
        owners: DeviceOwners,
        db: Database,
        clock: Clock,
        *,
        unbound_devices_per_property: int,
        entities_per_device: int,
    ) -> None:
        self.owners = owners
        self._db = db
        self._clock = clock
        self._unbound_cap = unbound_devices_per_property
        self._entities_cap = entities_per_device
        self._devices: dict[str, DeviceOwner] = {}  # device id -> its recorded owner
        self._by_property: dict[str | None, set[str]] = {}  # property id -> its devices with a recorded owner
        self._unwritten: dict[str, DeviceOwner] = {}
        self._is_bound: Callable[[str], bool] = lambda _device_id: False

    def use_bindings(self, is_bound: Callable[[str], bool]) -> None:
        """Say which devices are bound to a unit (those do not count as pending)."""
        self._is_bound = is_bound

    def load(self, rows: Iterable[DeviceOwnerRow]) -> None:
        """The recorded owners, at start."""
        for row in rows:
            self._remember(row.device_id, DeviceOwner(row.credential_id, row.property_id, _time(row.claimed_at)))

    # --- queries --------------------------------------------------------------------------------------

    def owner_of_device(self, device_id: str) -> DeviceOwner | None:
        """The device's recorded owner (revoked or not)."""
        return self._devices.get(device_id)

    def property_of_device(self, device_id: str, view: DeviceView) -> str | None:
        """The property whose credential published the device: its recorded owner's, else (a device discovered
        before the plane was enforced) that of the one live credential owning all its entities' node ids."""
        recorded = self._devices.get(device_id)
        if recorded is not None:
            return recorded.property_id
        owner = self._derived_owner(view.device_keys(device_id))
        return None if owner is None else owner.property_id

    def pending(self, property_id: str | None, view: DeviceView) -> int:
        """How many devices of the property's live credentials are discovered but bound to no unit."""
        return sum(
            1
            for device_id in self._by_property.get(property_id, ())
            if self.owners.is_live(self._devices[device_id].credential_id)
            and view.has_device(device_id)
            and not self._is_bound(device_id)
        )

    # --- decisions ------------------------------------------------------------------------------------

    def admit(self, key: DiscoveryKey, config: EntityConfig, device_id: str, view: DeviceView) -> Owner | Refusal:
        """The owner a config is accepted from, or why it is refused."""
        owner = self._node_owner(key)
        if isinstance(owner, Refusal):
            return owner
        publisher = owner.credential_id
        for topic in sorted(config.topics()):
            if not owner.covers(topic):
                return Refusal(
                    "topic_outside_namespace",
                    f"topic {topic[:80]!r} lies outside the topic roots of node id {key.node_id!r}'s credential",
                    publisher,
                )
        siblings = view.device_keys(device_id)
        holder = self._holder(device_id, siblings)
        if holder is not None and holder != owner.credential_id:
            return Refusal("device_id_taken", f"device id {device_id[:64]!r} belongs to another publisher", publisher)
        if all(k.key != key.key for k in siblings):
            if len(siblings) >= self._entities_cap:
                return Refusal(
                    "device_entities_limit", f"device {device_id[:64]!r} has {len(siblings)} entities", publisher
                )
            if not siblings and not self._is_bound(device_id):
                pending = self.pending(owner.property_id, view)
                if pending >= self._unbound_cap:
                    return Refusal(
                        "unbound_devices_limit",
                        f"property {owner.property_id!r} has {pending} unbound devices pending; bind or remove some",
                        publisher,
                    )
        return owner

    def may_remove(self, key: DiscoveryKey, device_id: str, view: DeviceView) -> Refusal | None:
        """Why an empty config may not remove an entity of ``device_id`` (None: it may): it must come from the
        device's owner too."""
        owner = self._node_owner(key)
        if isinstance(owner, Refusal):
            return owner
        holder = self._holder(device_id, view.device_keys(device_id))
        if holder is not None and holder != owner.credential_id:
            return Refusal(
                "device_id_taken", f"device id {device_id[:64]!r} belongs to another publisher", owner.credential_id
            )
        return None

    def claim(self, device_id: str, owner: Owner) -> None:
        """Record ``owner`` as the device's owner if it has none yet (written with the next flush)."""
        if device_id in self._devices:
            return
        claimed = DeviceOwner(owner.credential_id, owner.property_id, self._clock.now())
        self._remember(device_id, claimed)
        self._unwritten[device_id] = claimed
        log.info(
            "device owner recorded",
            extra={"device": device_id, "credential": owner.credential_id, "property": owner.property_id},
        )

    # --- storage --------------------------------------------------------------------------------------

    async def write(self) -> bool:
        """Write the owners recorded since the last write (a ``Persister.also_write`` writer); StorageError keeps
        them for the next attempt."""
        if not self._unwritten:
            return False
        batch, self._unwritten = self._unwritten, {}
        rows = [DeviceOwnerRow(d, o.credential_id, o.property_id, o.claimed_at.isoformat()) for d, o in batch.items()]
        try:
            await self._db.run(lambda db: write_device_owners(db, rows))
        except StorageError:
            self._unwritten = {**batch, **self._unwritten}
            raise
        return True

    # --- helpers --------------------------------------------------------------------------------------

    def _node_owner(self, key: DiscoveryKey) -> Owner | Refusal:
        owner = None if key.node_id is None else self.owners.owner_of(key.node_id)
        if owner is None:
            node = "no node id" if key.node_id is None else f"node id {key.node_id!r}"
            return Refusal("node_id_unowned", f"no live broker credential owns {node}", UNOWNED)
        return owner

    def _holder(self, device_id: str, siblings: list[DiscoveryKey]) -> str | None:
        """The credential id the device belongs to; None if it is free, ``_NOBODY`` if no live credential may
        claim it (its live entities were published under node ids of several, or of none)."""
        recorded = self._devices.get(device_id)
        if recorded is not None:
            return recorded.credential_id
        if not siblings:
            return None
        owner = self._derived_owner(siblings)
        return _NOBODY if owner is None else owner.credential_id

    def _derived_owner(self, keys: list[DiscoveryKey]) -> Owner | None:
        owners = {None if k.node_id is None else self.owners.owner_of(k.node_id) for k in keys}
        if len(owners) != 1:
            return None
        return next(iter(owners))

    def _remember(self, device_id: str, owner: DeviceOwner) -> None:
        self._devices[device_id] = owner
        self._by_property.setdefault(owner.property_id, set()).add(device_id)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)
