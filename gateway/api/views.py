"""Domain objects to response bodies."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from ..accounts import Account, Session
from ..building import Unit
from ..core.commands import CommandResult
from ..core.entity import Entity
from ..core.registry import Registry
from ..storage import CommandRow
from .schemas import AccountOut, CommandOut, DeviceOut, EntityOut, SessionOut, UnitOut

__all__ = [
    "account_out",
    "api_entity_id",
    "command_out",
    "device_out",
    "entity_key",
    "entity_out",
    "session_out",
    "unit_out",
]


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
) -> DeviceOut:
    """A device with its live entities."""
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
