"""Firmware rollouts: what staff see of each device's firmware, and a staged rollout with its devices' steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = [
    "DeviceFirmware",
    "DeviceStep",
    "Rollout",
    "RolloutDevice",
    "RolloutRules",
    "RolloutScope",
    "RolloutStatus",
]


class RolloutScope(StrEnum):
    """What staff asked to update."""

    DEVICE = "device"
    UNIT = "unit"
    PROPERTY = "property"


class RolloutStatus(StrEnum):
    """Where a rollout stands."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"  # stopped at a failed device; a report was filed


class DeviceStep(StrEnum):
    """Where one device of a rollout stands."""

    WAITING = "waiting"  # its stage has not started, or a command for it is pending
    INSTALLING = "installing"  # the install was sent; its progress is followed
    VERIFYING = "verifying"  # the new version is installed; its self-test probe runs
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # nothing to install when planned, or offline then
    NOT_STARTED = "not_started"  # the rollout stopped before its turn


FINISHED = frozenset({DeviceStep.DONE, DeviceStep.FAILED, DeviceStep.SKIPPED, DeviceStep.NOT_STARTED})


@dataclass(frozen=True, slots=True)
class RolloutRules:
    """How rollouts are staged and timed."""

    canary: int = 1  # devices in the first stage
    stage_size: int = 5  # devices in every later stage
    lock_share: float = 0.25  # at most this share of a rollout's locks in one stage (at least one)
    notice: timedelta = timedelta(0)  # residents are told this long before the first install
    install_timeout: timedelta = timedelta(minutes=90)  # a Zigbee OTA takes 10 to 40 minutes
    poll_seconds: float = 5.0  # how often the rollout loop looks at the clock without being woken


@dataclass(slots=True)
class RolloutDevice:
    """One device in a rollout: its stage, its step, and the version it goes from and to."""

    device_id: str
    unit_id: str | None
    entity_id: str
    stage: int
    kind: str | None
    status: DeviceStep
    from_version: str | None
    target_version: str | None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    reason: str | None = None


@dataclass(slots=True)
class Rollout:
    """A staged firmware rollout over some devices of one property."""

    id: str
    property_id: str
    scope: RolloutScope
    target: str
    status: RolloutStatus
    created_by: str | None
    created_at: datetime
    devices: list[RolloutDevice] = field(default_factory=list)
    reason: str | None = None
    finished_at: datetime | None = None

    @property
    def stages(self) -> int:
        """How many stages it has."""
        return 1 + max((d.stage for d in self.devices), default=-1)

    def current_stage(self) -> int | None:
        """The first stage with a device not finished, None when every device is."""
        return min((d.stage for d in self.devices if d.status not in FINISHED), default=None)

    def stage(self, number: int) -> list[RolloutDevice]:
        """The devices of one stage."""
        return [d for d in self.devices if d.stage == number]


@dataclass(frozen=True, slots=True)
class DeviceFirmware:
    """A device's firmware as its update entity reports it."""

    device_id: str
    unit_id: str | None
    entity_id: str
    name: str
    kind: str | None
    installed_version: str | None
    latest_version: str | None
    update_available: bool
    in_progress: bool
    update_percentage: float | None
    installable: bool
    available: bool | None
    rollout_id: str | None
