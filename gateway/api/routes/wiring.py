"""/properties/{id}/devices/{id}/wiring: a bound device's pinned wiring, and staff approving or rejecting a change
that holds it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from ...accounts import Principal, Role
from ...errors import NotFound
from ..deps import Ctx, own_property, require
from ..problems import CONFLICT_RESPONSES, PROBLEM_RESPONSES
from ..schemas_wiring import WiringOut
from ..views import wiring_out

__all__ = ["router"]

router = APIRouter(prefix="/properties", tags=["property"], responses=PROBLEM_RESPONSES)

Id = Annotated[str, Path(min_length=1, max_length=128)]
# Staff of the property, or the operator (who may act on any property).
StaffOrOperator = Annotated[Principal, Depends(require(Role.MANAGER, Role.INSTALLER, Role.OPERATOR))]


def _property(principal: Principal, ctx: Ctx, property_id: str) -> str:
    if principal.role is Role.OPERATOR:
        return ctx.building.property(property_id).id
    return own_property(principal, ctx, property_id)


def _bound_here(ctx: Ctx, property_id: str, device_id: str) -> None:
    # Another property's device answers exactly as an id that does not exist.
    binding = ctx.building.binding(device_id)
    if binding is None or ctx.building.unit(binding.unit_id).property_id != property_id:
        raise NotFound(f"no bound device {device_id!r}", code="device_not_found")


@router.get("/{property_id}/devices/{device_id}/wiring", operation_id="getDeviceWiring")
async def get_wiring(property_id: Id, device_id: Id, principal: StaffOrOperator, ctx: Ctx) -> WiringOut:
    """A bound device's pinned wiring: ``held`` with each changed field (pinned and now) while a change awaits
    approval, ``removed`` while a pinned entity's config is gone (its topics stay reserved until unbound)."""
    pid = _property(principal, ctx, property_id)
    _bound_here(ctx, pid, device_id)
    return wiring_out(ctx.wiring.device(device_id))


@router.post(
    "/{property_id}/devices/{device_id}/wiring/approve",
    operation_id="approveDeviceWiring",
    responses=CONFLICT_RESPONSES,
)
async def approve_wiring(property_id: Id, device_id: Id, principal: StaffOrOperator, ctx: Ctx) -> WiringOut:
    """Pin the device's changed wiring and release the hold (manager or installer of the property, or the operator;
    audited): commands go out again, in the new wiring. 409 ``device_not_held`` when nothing awaits approval."""
    pid = _property(principal, ctx, property_id)
    return wiring_out(await ctx.wiring.approve(pid, device_id, by=principal))


@router.post(
    "/{property_id}/devices/{device_id}/wiring/reject",
    operation_id="rejectDeviceWiring",
    responses=CONFLICT_RESPONSES,
)
async def reject_wiring(property_id: Id, device_id: Id, principal: StaffOrOperator, ctx: Ctx) -> WiringOut:
    """Refuse the change (audited): the device stays held until it publishes its pinned wiring again (which
    releases it) or staff unbind it. 409 ``device_not_held`` when nothing awaits a decision."""
    pid = _property(principal, ctx, property_id)
    return wiring_out(await ctx.wiring.reject(pid, device_id, by=principal))
