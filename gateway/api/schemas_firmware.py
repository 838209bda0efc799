"""Request and response bodies of device firmware and firmware rollouts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from ..firmware import DeviceFirmware, DeviceStep, Rollout, RolloutScope, RolloutStatus
from .schemas import Request, Response

__all__ = ["DeviceFirmwareOut", "RolloutDeviceOut", "RolloutOut", "RolloutRequest", "firmware_out", "rollout_out"]

Target = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class DeviceFirmwareOut(Response):
    """A device's firmware as its update entity reports it."""

    device_id: str
    unit_id: str | None
    entity_id: str
    name: str
    kind: str | None = Field(description="The device's main kind (lock, light, ...)")
    installed_version: str | None
    latest_version: str | None
    update_available: bool
    in_progress: bool
    update_percentage: float | None
    installable: bool = Field(description="The device announces an install command")
    available: bool | None
    rollout_id: str | None = Field(description="The running rollout the device is in, if any")


class RolloutRequest(Request):
    """Update a device, a unit or the whole property, in stages."""

    scope: RolloutScope
    target: Target | None = Field(
        default=None, description="The device id or unit id (scope device or unit); none for the property"
    )


class RolloutDeviceOut(Response):
    """One device of a rollout."""

    device_id: str
    unit_id: str | None
    stage: int = Field(description="0 is the first stage (the canary); -1 for a device skipped when planned")
    kind: str | None
    status: DeviceStep
    from_version: str | None
    target_version: str | None
    started_at: datetime | None
    finished_at: datetime | None
    reason: str | None


class RolloutOut(Response):
    """A staged firmware rollout."""

    id: str
    property_id: str
    scope: RolloutScope
    target: str
    status: RolloutStatus
    reason: str | None
    created_by: str | None
    created_at: datetime
    finished_at: datetime | None
    stages: int
    current_stage: int | None
    devices: list[RolloutDeviceOut]


def firmware_out(info: DeviceFirmware) -> DeviceFirmwareOut:
    """The API view of a device's firmware."""
    return DeviceFirmwareOut(
        device_id=info.device_id, unit_id=info.unit_id, entity_id=info.entity_id, name=info.name, kind=info.kind,
        installed_version=info.installed_version, latest_version=info.latest_version,
        update_available=info.update_available, in_progress=info.in_progress,
        update_percentage=info.update_percentage, installable=info.installable, available=info.available,
        rollout_id=info.rollout_id,
    )  # fmt: skip


def rollout_out(rollout: Rollout) -> RolloutOut:
    """The API view of a rollout."""
    return RolloutOut(
        id=rollout.id, property_id=rollout.property_id, scope=rollout.scope, target=rollout.target,
        status=rollout.status, reason=rollout.reason, created_by=rollout.created_by, created_at=rollout.created_at,
        finished_at=rollout.finished_at, stages=rollout.stages,
        current_stage=rollout.current_stage() if rollout.status is RolloutStatus.RUNNING else None,
        devices=[
            RolloutDeviceOut(
                device_id=d.device_id, unit_id=d.unit_id, stage=d.stage, kind=d.kind, status=d.status,
                from_version=d.from_version, target_version=d.target_version, started_at=d.started_at,
                finished_at=d.finished_at, reason=d.reason,
            )
            for d in rollout.devices
        ],
    )  # fmt: skip
