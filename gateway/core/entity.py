"""The gateway's live view of one discovered entity."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from devices import Component, DeviceKind, DiscoveryKey, EntityConfig, EntityState

__all__ = ["Entity", "StateError"]


@dataclass(frozen=True, slots=True)
class StateError:
    """Why the latest state report was refused; the previous good state is kept."""

    code: str
    detail: str
    at: datetime


@dataclass(slots=True)
class Entity:
    """A discovered entity: its config, last good state, availability and last-seen time."""

    key: DiscoveryKey
    device_id: str
    config: EntityConfig
    raw_config: str
    discovered_at: datetime
    state: EntityState | None = None
    state_at: datetime | None = None
    state_error: StateError | None = None
    available: bool | None = None
    availability_at: datetime | None = None
    last_seen: datetime | None = None
    removed_at: datetime | None = None
    availability_by_topic: dict[str, bool] = field(default_factory=dict)
    # False for what the database remembers from before a restart (or the broker link's loss), until the device (or
    # its shared availability topic) reports again: a device that went away meanwhile must not look available or
    # fresh.
    heard_since_start: bool = False
    # True while its wiring differs from the one pinned when staff bound its device (gateway.core.wiring): no
    # command goes to it and its reports are not applied until staff approve or the device says the pinned again.
    held: bool = False

    @property
    def id(self) -> str:
        """Stable textual id (the discovery path)."""
        return self.key.key

    @property
    def component(self) -> Component:
        """HA component."""
        return self.key.component

    @property
    def kind(self) -> DeviceKind:
        """What it is for residents and policy."""
        return self.config.kind

    @property
    def state_valid(self) -> bool:
        """False when the latest report was refused and ``state`` is the last good one."""
        return self.state_error is None

    @property
    def name(self) -> str:
        """Display name: the config's, else the device's, else the object id."""
        device_name = self.config.device.name if self.config.device else None
        return self.config.name or device_name or self.key.object_id

    def stale_reason(self, now: datetime, silence: timedelta) -> str | None:
        """Why the shown state may not be the device's real one now, or None when it is fresh.

        ``held`` (its wiring changed since staff bound it: nothing it reports is trusted), ``offline`` (last will
        or availability), ``never_reported``, ``not_heard_since_start`` (remembered from before the gateway's
        restart or its broker link's loss, nothing heard since), ``invalid_report`` (the last report was refused),
        ``expired`` (older than the device's own ``expire_after``), or ``silent`` (a device with no availability
        topic that has said nothing for ``silence``).
        """
        if self.held:
            return "held"
        if self.available is False:
            return "offline"
        if self.state is None or self.state_at is None:
            return "never_reported"
        if not self.heard_since_start:
            return "not_heard_since_start"
        if self.state_error is not None:
            return "invalid_report"
        expire_after = self.config.expire_after
        if expire_after and now - self.state_at > timedelta(seconds=expire_after):
            return "expired"
        if not self.config.availability_entries() and (self.last_seen is None or now - self.last_seen > silence):
            return "silent"
        return None

    def state_json(self) -> str | None:
        """The last good state as stored."""
        return None if self.state is None else self.state.model_dump_json()

    def summary(self) -> dict[str, object]:
        """A JSON-ready view for logs, CLI output and the API."""
        return {
            "id": self.id,
            "device_id": self.device_id,
            "name": self.name,
            "component": str(self.component),
            "kind": str(self.kind),
            "available": self.available,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "state": None if self.state is None else json.loads(self.state.model_dump_json()),
            "state_at": self.state_at.isoformat() if self.state_at else None,
            "state_valid": self.state_valid,
            "state_error": None if self.state_error is None else self.state_error.code,
        }
