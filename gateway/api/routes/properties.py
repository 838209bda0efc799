"""/properties: the property manager and the installer: units, device bindings, residents, the contract, the
agreements, device health."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from ...accounts import Role
from ...building import Unit
from ...building.health import property_health
from ...errors import NotFound
from ..context import ApiContext
from ..deps import Ctx, Manager, Operator, Staff, Who, own_property, own_unit
from ..problems import CONFLICT_RESPONSES, PROBLEM_RESPONSES
from ..schemas import (
    AccountOut,
    BindRequest,
    CreatePropertyRequest,
    CreateUnitRequest,
    DeviceOut,
    HealthIssueOut,
    HealthOut,
    MoveInRequest,
    MoveOutRequest,
    MoveOutResponse,
    NewAccountOut,
    PropertyOut,
    UnitDetailOut,
    UnitOut,
)
from ..schemas_policy import ConsoleAgreementsOut, ContractOut, ResidentAcceptanceOut, UnitAcceptancesOut
from ..views import account_out, api_entity_id, contract_out, device_out, resident_acceptance, unit_out

__all__ = ["router"]

router = APIRouter(prefix="/properties", tags=["property"], responses=PROBLEM_RESPONSES)

Id = Annotated[str, Path(min_length=1, max_length=128)]
FORMER_RESIDENT = "former-resident"


@router.get("", operation_id="listProperties")
async def list_properties(principal: Who, ctx: Ctx) -> list[PropertyOut]:
    """Properties I work on (the operator: all of them)."""
    if principal.role is Role.OPERATOR:
        props = ctx.building.properties()
    elif principal.role.is_staff and principal.account.property_id is not None:
        props = [ctx.building.property(principal.account.property_id)]
    else:
        props = []
    return [PropertyOut(id=p.id, name=p.name, created_at=p.created_at) for p in props]


@router.post("", status_code=201, operation_id="createProperty", responses=CONFLICT_RESPONSES)
async def create_property(body: CreatePropertyRequest, principal: Operator, ctx: Ctx) -> PropertyOut:
    """Create a property (operator)."""
    prop = await ctx.building.create_property(body.id, body.name, by=principal)
    return PropertyOut(id=prop.id, name=prop.name, created_at=prop.created_at)


@router.get("/{property_id}/units", operation_id="listUnits")
async def list_units(property_id: Id, principal: Staff, ctx: Ctx) -> list[UnitOut]:
    """Units of my property."""
    return [unit_out(u) for u in ctx.building.units(own_property(principal, ctx, property_id))]


@router.post("/{property_id}/units", status_code=201, operation_id="createUnit", responses=CONFLICT_RESPONSES)
async def create_unit(property_id: Id, body: CreateUnitRequest, principal: Manager, ctx: Ctx) -> UnitOut:
    """Create a unit in my property (manager)."""
    unit = await ctx.building.create_unit(own_property(principal, ctx, property_id), body.label, body.id, by=principal)
    return unit_out(unit)


@router.get("/{property_id}/units/{unit_id}", operation_id="getUnit")
async def get_unit(property_id: Id, unit_id: Id, principal: Staff, ctx: Ctx) -> UnitDetailOut:
    """A unit with its devices (each with its pinned wiring: held, removed-but-bound); managers also see its
    residents (an audited read)."""
    unit = own_unit(principal, ctx, property_id, unit_id)
    residents = None
    if principal.role is Role.MANAGER:
        residents = [account_out(a) for a in await ctx.accounts.residents(unit, by=principal)]
    return UnitDetailOut(unit=unit_out(unit), devices=_devices(ctx, unit), residents=residents)


@router.get("/{property_id}/devices/unbound", operation_id="listUnboundDevices")
async def unbound_devices(property_id: Id, principal: Staff, ctx: Ctx) -> list[DeviceOut]:
    """Devices the gateway discovered that are not bound to any unit yet; with the device plane enforced, only
    those a broker credential of this property published."""
    prop = own_property(principal, ctx, property_id)
    registry, now = ctx.gateway.registry, ctx.gateway.clock.now()
    return [
        device_out(registry, d, None, now, ctx.stale_after)
        for d in ctx.building.unbound(registry.device_ids())
        if registry.published_for(d, prop)
    ]


@router.post(
    "/{property_id}/units/{unit_id}/devices",
    status_code=201,
    operation_id="bindDevice",
    responses=CONFLICT_RESPONSES,
)
async def bind_device(property_id: Id, unit_id: Id, body: BindRequest, principal: Staff, ctx: Ctx) -> DeviceOut:
    """Bind a discovered device to a unit (manager or installer), within the plan: 409
    ``plan_limit_device_kinds``, ``plan_limit_devices_per_unit`` or ``lessor_contract_missing`` otherwise."""
    unit = own_unit(principal, ctx, property_id, unit_id)
    registry = ctx.gateway.registry
    # Another property's device is answered as unknown: its staff cannot tell it exists, let alone bind it.
    if not registry.entities_of_device(body.device_id) or not registry.published_for(body.device_id, unit.property_id):
        raise NotFound(f"no discovered device {body.device_id!r}", code="device_not_found")
    await ctx.policy.bind_device(unit, body.device_id, by=principal)
    return device_out(
        ctx.gateway.registry,
        body.device_id,
        unit.id,
        ctx.gateway.clock.now(),
        ctx.stale_after,
        wiring=ctx.wiring.device(body.device_id),
    )


@router.delete("/{property_id}/units/{unit_id}/devices/{device_id}", status_code=204, operation_id="unbindDevice")
async def unbind_device(property_id: Id, unit_id: Id, device_id: Id, principal: Staff, ctx: Ctx) -> Response:
    """Unbind a device from a unit (manager or installer); the resident's name for it is deleted."""
    unit = own_unit(principal, ctx, property_id, unit_id)
    await ctx.building.unbind(device_id, unit, by=principal)
    return Response(status_code=204)


@router.get("/{property_id}/units/{unit_id}/residents", operation_id="listResidents")
async def list_residents(property_id: Id, unit_id: Id, principal: Manager, ctx: Ctx) -> list[AccountOut]:
    """The unit's resident accounts (manager; an audited read)."""
    unit = own_unit(principal, ctx, property_id, unit_id)
    return [account_out(a) for a in await ctx.accounts.residents(unit, by=principal)]


@router.post(
    "/{property_id}/units/{unit_id}/residents",
    status_code=201,
    operation_id="moveIn",
    responses=CONFLICT_RESPONSES,
)
async def move_in(property_id: Id, unit_id: Id, body: MoveInRequest, principal: Manager, ctx: Ctx) -> NewAccountOut:
    """Move a resident in: their account, with a one-time activation code to hand to them (manager); 409
    ``plan_limit_accounts_per_unit`` when the unit has as many resident accounts as the plan allows."""
    unit = own_unit(principal, ctx, property_id, unit_id)
    created = await ctx.policy.admit_resident(
        unit,
        lambda: _count_residents(ctx, unit),
        lambda: ctx.accounts.create(
            body.username,
            Role.RESIDENT,
            by=principal,
            property_id=unit.property_id,
            unit_id=unit.id,
            display_name=body.display_name,
        ),
    )
    return NewAccountOut(
        account=account_out(created.account),
        activation_code=created.activation_code,
        activation_expires_at=created.activation_expires_at,
    )


@router.post(
    "/{property_id}/units/{unit_id}/residents/{account_id}/activation-code",
    operation_id="reissueActivationCode",
    responses=CONFLICT_RESPONSES,
)
async def reissue_code(property_id: Id, unit_id: Id, account_id: Id, principal: Manager, ctx: Ctx) -> NewAccountOut:
    """A new one-time activation code for a resident who has not activated yet (the old code stops working;
    manager; audited); 409 ``account_not_pending`` once the account is activated or ended."""
    unit = own_unit(principal, ctx, property_id, unit_id)
    if not any(a.id == account_id for a in await ctx.accounts.residents(unit)):
        raise NotFound(f"no resident {account_id!r} in this unit", code="account_not_found")
    issued = await ctx.accounts.reissue_code(account_id, by=principal)
    return NewAccountOut(
        account=account_out(issued.account),
        activation_code=issued.activation_code,
        activation_expires_at=issued.activation_expires_at,
    )


@router.post("/{property_id}/units/{unit_id}/residents/{account_id}/move-out", operation_id="moveOut")
async def move_out(
    property_id: Id, unit_id: Id, account_id: Id, body: MoveOutRequest, principal: Manager, ctx: Ctx
) -> MoveOutResponse:
    """Move a resident out: the account ends at once, its sessions and streams close, its names for devices are
    deleted and its history is anonymised (manager)."""
    unit = own_unit(principal, ctx, property_id, unit_id)
    resident = next((a for a in await ctx.accounts.residents(unit) if a.id == account_id), None)
    if resident is None:
        raise NotFound(f"no resident {account_id!r} in this unit", code="account_not_found")
    sessions = sum(1 for s in await ctx.accounts.sessions(resident.id) if s.revoked_at is None)
    ended = await ctx.accounts.terminate(resident.id, body.reason)
    ctx.policy.forget(resident.id)
    # Commands already under way record their outcome (with the actor) when they end: let them end first.
    await ctx.runner.settle(resident.actor)
    anonymised = await ctx.building.erase_resident(
        resident, unit, FORMER_RESIDENT, by=principal, sessions_revoked=sessions
    )
    await ctx.privacy.forget_former(resident)
    return MoveOutResponse(account=account_out(ended), sessions_revoked=sessions, records_anonymised=anonymised)


@router.get("/{property_id}/contract", operation_id="getPropertyContract")
async def property_contract(property_id: Id, principal: Staff, ctx: Ctx) -> ContractOut:
    """The lessor's contract of my property: in force or why not, its end, the plan and the internet provider."""
    contract = ctx.policy.recorded_contract(own_property(principal, ctx, property_id))
    return contract_out(contract, ctx.gateway.clock.now())


@router.get("/{property_id}/agreements", operation_id="getPropertyAgreements")
async def property_agreements(property_id: Id, principal: Manager, ctx: Ctx) -> ConsoleAgreementsOut:
    """Per unit, who has accepted which version of the end-user agreement (manager; an audited read)."""
    pid = own_property(principal, ctx, property_id)
    current, fresh, by_unit = await ctx.policy.read_agreements(pid, by=principal)
    units = [
        UnitAcceptancesOut(
            unit_id=u.id,
            label=u.label,
            residents=[ResidentAcceptanceOut(**resident_acceptance(r, fresh)) for r in residents],
        )
        for u, residents in by_unit
    ]
    return ConsoleAgreementsOut(
        property_id=pid, current_version=None if current is None else current.version, units=units
    )


@router.get("/{property_id}/health", operation_id="getPropertyHealth")
async def health(property_id: Id, principal: Staff, ctx: Ctx) -> HealthOut:
    """Device health of the whole property in one call: offline, stale, low-battery and held devices (a held
    device's wiring changed since it was bound: see its wiring)."""
    pid = own_property(principal, ctx, property_id)
    now = ctx.gateway.clock.now()
    report = property_health(ctx.gateway.registry, ctx.building, pid, now, ctx.stale_after, ctx.low_battery_percent)
    return HealthOut(
        property_id=pid,
        checked_at=now,
        devices=report.devices,
        offline=report.offline,
        stale=report.stale,
        low_battery=report.low_battery,
        held=report.held,
        issues=[
            HealthIssueOut(
                unit_id=i.unit_id,
                device_id=i.device_id,
                entity_id=api_entity_id(i.entity_id),
                name=i.name,
                kind=i.kind,
                problems=list(i.problems),
                battery=i.battery,
            )
            for i in report.issues
        ],
    )


async def _count_residents(ctx: ApiContext, unit: Unit) -> int:
    return len(await ctx.accounts.residents(unit))


def _devices(ctx: ApiContext, unit: Unit) -> list[DeviceOut]:
    now = ctx.gateway.clock.now()
    return [
        device_out(ctx.gateway.registry, d, unit.id, now, ctx.stale_after, wiring=ctx.wiring.device(d))
        for d in ctx.building.devices_of_unit(unit.id)
    ]
