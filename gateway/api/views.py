"""Domain objects to response bodies."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request

from ..accounts import Account, Principal, Session
from ..building import DeviceWiring, Unit
from ..core.commands import CommandResult
from ..core.entity import Entity
from ..core.registry import Registry
from ..policy import Contract, contract_lapse
from ..policy.store import Acceptance, ResidentAgreement
from ..privacy import PrivacyRequest
from ..storage import CommandRow
from .schemas import AccountOut, CommandOut, DeviceOut, EntityOut, SessionOut, UnitOut
from .schemas_policy import AcceptanceOut, ContractOut, InternetProviderBody
from .schemas_privacy import PrivacyRequestOut
from .schemas_wiring import WiringChangeOut, WiringEntityOut, WiringOut

__all__ = [
    "APP_VERSION_HEADER",
    "acceptance_out",
    "account_out",
    "api_entity_id",
    "client_of",
    "command_out",
    "contract_out",
    "device_out",
    "entity_key",
    "entity_out",
    "request_out",
    "resident_acceptance",
    "session_out",
    "unit_out",
    "wiring_out",
]

APP_VERSION_HEADER = "X-App-Version"
"""The header in which the resident app states its version (checked against the operator's minimum)."""


def api_entity_id(key: str) -> str:
    """The URL-safe id of an entity (discovery path with dots: ``light.u101-light.light``)."""
    return key.replace("/", ".")


def entity_key(api_id: str) -> str:
    """Back from the API id to the registry key (discovery ids never contain dots)."""
    return api_id.replace(".", "/")


def account_out(account: Account) -> AccountOut:
    """An account's public fields (never its password hash)."""
    return AccountOut.model_validate(account)


def session_out(session: Session) -> SessionOut:
    """A session (never its token)."""
    return SessionOut.model_validate(session)


def unit_out(unit: Unit) -> UnitOut:
    """A unit."""
    return UnitOut.model_validate(unit)


def entity_out(entity: Entity, now: datetime, stale_after: timedelta) -> EntityOut:
    """An entity with its state and freshness."""
    reason = entity.stale_reason(now, stale_after)
    return EntityOut(
        id=api_entity_id(entity.id),
        name=entity.name,
        kind=str(entity.kind),
        component=str(entity.component),
        available=entity.available,
        last_seen=entity.last_seen,
        stale=reason is not None,
        stale_reason=reason,
        state=None if entity.state is None else json.loads(entity.state.model_dump_json()),
        state_at=entity.state_at,
        state_valid=entity.state_valid,
        state_error=None if entity.state_error is None else entity.state_error.code,
        commandable=entity.config.command_model is not None,
    )


def device_out(
    registry: Registry,
    device_id: str,
    unit_id: str | None,
    now: datetime,
    stale_after: timedelta,
    resident_name: str | None = None,
    wiring: DeviceWiring | None = None,
) -> DeviceOut:
    """A device with its live entities (and, for staff, its ``wiring``)."""
    entities = registry.entities_of_device(device_id)
    info = next((e.config.device for e in entities if e.config.device is not None), None)
    name = (info.name if info else None) or (entities[0].name if entities else device_id)
    return DeviceOut(
        id=device_id,
        name=name,
        resident_name=resident_name,
        manufacturer=info.manufacturer if info else None,
        model=info.model if info else None,
        unit_id=unit_id,
        entities=[entity_out(e, now, stale_after) for e in entities],
        wiring=None if wiring is None else wiring_out(wiring),
    )


def wiring_out(wiring: DeviceWiring) -> WiringOut:
    """A device's pinned wiring and what a held change changed, with API entity ids."""
    return WiringOut(
        status=wiring.status,
        digest=wiring.digest,
        held_since=wiring.held_since,
        rejected_at=wiring.rejected_at,
        entities=[
            WiringEntityOut(
                entity_id=api_entity_id(e.entity_id),
                status=e.status,
                changes=[WiringChangeOut(field=c.field, pinned=c.pinned, now=c.now) for c in e.changes],
            )
            for e in wiring.entities
        ],
    )


def command_out(result: CommandResult | CommandRow) -> CommandOut:
    """A command and its outcome, from a live result or a stored row."""
    if isinstance(result, CommandResult):
        return CommandOut(
            id=result.id,
            entity_id=api_entity_id(result.entity_id),
            status=str(result.status),
            reason=result.reason,
            detail=result.detail,
            command=result.command,
            created_at=result.created_at,
            finished_at=result.finished_at,
        )
    return CommandOut(
        id=result.id,
        entity_id=api_entity_id(result.entity_key),
        status=result.status,
        reason=result.reason,
        detail=result.detail,
        command=_stored_command(result.command),
        created_at=datetime.fromisoformat(result.created_at),
        finished_at=datetime.fromisoformat(result.finished_at) if result.finished_at else None,
    )


def _stored_command(text: str) -> dict[str, object]:
    # Rows keep at most 4 KiB of what was asked; a refused oversized command may be cut mid-JSON.
    try:
        value = json.loads(text)
    except ValueError:
        return {"truncated": text[:200]}
    return value if isinstance(value, dict) else {"value": value}


def acceptance_out(a: Acceptance) -> AcceptanceOut:
    """An acceptance record."""
    return AcceptanceOut(version=a.version, accepted_at=a.accepted_at, client=a.client)


def client_of(principal: Principal, request: Request) -> str:
    """How an acceptance or opt-out names the client it came from: session client, app version, user agent."""
    parts = [
        principal.session.client or "unnamed client",
        f"app {request.headers.get(APP_VERSION_HEADER, '?')[:32]}",
        f"ua {request.headers.get('user-agent', '?')[:120]}",
        f"session {principal.session.id[:8]}",
    ]
    return "; ".join(parts)


def contract_out(contract: Contract, now: datetime) -> ContractOut:
    """A contract with whether it is in force at ``now``."""
    lapse = contract_lapse(contract, now)
    return ContractOut(
        property_id=contract.property_id,
        status=contract.status,
        status_reason=contract.status_reason,
        starts_at=contract.starts_at,
        ends_at=contract.ends_at,
        offers_service=contract.offers_service,
        internet=InternetProviderBody(
            provided_by=contract.internet.provided_by, name=contract.internet.name, contact=contract.internet.contact
        ),
        plan=contract.plan,
        updated_at=contract.updated_at,
        in_force=lapse is None,
        lapse=lapse,
    )


def resident_acceptance(r: ResidentAgreement, up_to_date_versions: set[str] | None) -> dict[str, Any]:
    """A resident's latest acceptance, as both console views show it (``None``: no version is in effect)."""
    latest = r.latest
    return {
        "account_id": r.account_id,
        "username": r.username,
        "display_name": r.display_name,
        "status": r.status,
        "accepted_version": None if latest is None else latest.version,
        "accepted_at": None if latest is None else latest.accepted_at,
        "up_to_date": up_to_date_versions is not None and latest is not None and latest.version in up_to_date_versions,
    }


def request_out(request: PrivacyRequest, now: datetime) -> PrivacyRequestOut:
    """A privacy request as its resident and the staff handling it see it (overdue: waiting past its deadline)."""
    return PrivacyRequestOut(
        id=request.id,
        kind=request.kind,
        state=request.state,
        property_id=request.property_id,
        unit_id=request.unit_id,
        detail=request.detail,
        created_at=request.created_at,
        due_at=request.due_at,
        overdue=request.state.pending and now > request.due_at,
        answered_at=request.answered_at,
        answer=request.answer,
        refusal_code=request.refusal_code,
        held=list(request.held),
        appealed_at=request.appealed_at,
        appeal=request.appeal,
        closed_at=request.closed_at,
    )
