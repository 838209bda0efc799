"""/properties/{id}/firmware: staff see every device's installed and latest firmware and start staged rollouts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from ...accounts import Role
from ...errors import AccessDenied, InvalidRequest
from ...firmware import RolloutScope
from ..deps import AnyStaff, Ctx, staff_property
from ..problems import CONFLICT_RESPONSES, PROBLEM_RESPONSES
from ..schemas_firmware import DeviceFirmwareOut, RolloutOut, RolloutRequest, firmware_out, rollout_out

__all__ = ["router"]

router = APIRouter(prefix="/properties", tags=["firmware"], responses=PROBLEM_RESPONSES)

Id = Annotated[str, Path(min_length=1, max_length=128)]


@router.get("/{property_id}/firmware", operation_id="listDeviceFirmware")
async def list_firmware(property_id: Id, principal: AnyStaff, ctx: Ctx) -> list[DeviceFirmwareOut]:
    """Every device of the property that announces a firmware update entity: installed and latest version,
    whether an update is available or in progress (operator, manager, installer)."""
    prop = staff_property(principal, ctx, property_id)
    return [firmware_out(f) for f in ctx.services.firmware.firmware(prop)]


@router.get("/{property_id}/firmware/rollouts", operation_id="listFirmwareRollouts")
async def list_rollouts(property_id: Id, principal: AnyStaff, ctx: Ctx) -> list[RolloutOut]:
    """The property's firmware rollouts, newest first, with each device's stage and step."""
    prop = staff_property(principal, ctx, property_id)
    return [rollout_out(r) for r in await ctx.services.firmware.rollouts(prop)]


@router.get("/{property_id}/firmware/rollouts/{rollout_id}", operation_id="getFirmwareRollout")
async def get_rollout(property_id: Id, rollout_id: Id, principal: AnyStaff, ctx: Ctx) -> RolloutOut:
    """One rollout (404 ``rollout_not_found``)."""
    prop = staff_property(principal, ctx, property_id)
    return rollout_out(await ctx.services.firmware.rollout(prop, rollout_id))


@router.post(
    "/{property_id}/firmware/rollouts", status_code=201, operation_id="startFirmwareRollout",
    responses=CONFLICT_RESPONSES,
)  # fmt: skip
async def start_rollout(property_id: Id, body: RolloutRequest, principal: AnyStaff, ctx: Ctx) -> RolloutOut:
    """Update a device, a unit or the property in stages (audited; residents are told first): the operator and
    the manager any scope, an installer one device; one rollout at a time per property. 409 ``not_updatable``,
    ``no_update_available``, ``rollout_in_progress`` or ``command_pending``."""
    prop = staff_property(principal, ctx, property_id)
    if principal.role is Role.INSTALLER and body.scope is not RolloutScope.DEVICE:
        raise AccessDenied("an installer updates one device at a time", code="role_forbidden")
    if body.scope is RolloutScope.PROPERTY:
        target = prop
    elif body.target is None:
        raise InvalidRequest(f"a {body.scope} rollout needs a target", code="validation_failed", field="target")
    else:
        target = body.target
    return rollout_out(await ctx.services.firmware.start(prop, body.scope, target, by=principal))
