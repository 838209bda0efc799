"""/me: my account and sessions; for a resident, my unit, my devices, commands, my unit's events and a live
stream."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from ...core.commands import CommandResult, CommandStatus
from ...core.typed_command import type_command
from ...errors import AuthError, CommandRejected, NotFound, PolicyRefused
from ..context import ApiContext
from ..deps import AppHeader, Ctx, Resident, Who, resident_unit
from ..problems import PROBLEM_RESPONSES, ProblemError
from ..schemas import (
    AccountOut,
    CommandOut,
    CommandRequest,
    DeviceOut,
    EventOut,
    EventPage,
    NameRequest,
    SessionOut,
    UnitOut,
)
from ..views import account_out, api_entity_id, command_out, device_out, entity_key, session_out, unit_out

__all__ = ["router"]

router = APIRouter(prefix="/me", responses=PROBLEM_RESPONSES)

DeviceId = Annotated[str, Path(min_length=1, max_length=128)]
EntityId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")]
CommandId = Annotated[str, Path(min_length=1, max_length=64)]
SessionId = Annotated[str, Path(min_length=1, max_length=64)]
# The OpenAPI tags: any signed-in caller's operations, and a resident's.
SESSION: list[str | Enum] = ["session"]
RESIDENT: list[str | Enum] = ["resident"]

# Outcome -> HTTP status for commands that did not confirm (the body carries the command too).
_COMMAND_STATUS = {
    "command_invalid": 422,
    "out_of_range": 422,
    "unsupported_feature": 422,
    "wrong_kind": 422,
    "command_timeout": 504,
    "broker_unavailable": 503,
    "gateway_stopping": 503,
}


@router.get("", operation_id="getMe", tags=SESSION)
async def me(principal: Who) -> AccountOut:
    """The signed-in account."""
    return account_out(principal.account)


@router.get("/sessions", operation_id="listMySessions", tags=SESSION)
async def my_sessions(principal: Who, ctx: Ctx) -> list[SessionOut]:
    """My sessions (one per app device or console), newest first."""
    return [session_out(s) for s in await ctx.accounts.sessions(principal.account.id)]


@router.delete("/sessions/{session_id}", status_code=204, operation_id="endMySession", tags=SESSION)
async def end_my_session(session_id: SessionId, principal: Who, ctx: Ctx) -> Response:
    """End one of my sessions (e.g. an app device I no longer use); its token stops working at once."""
    await ctx.accounts.end_session(principal.account.id, session_id, "ended by its owner")
    return Response(status_code=204)


@router.post("/sessions/{session_id}/lost", operation_id="reportLostDevice", tags=SESSION)
async def report_lost(session_id: SessionId, principal: Who, ctx: Ctx) -> SessionOut:
    """Report the app device of one of my sessions lost or stolen: its session ends at once (audited)."""
    return session_out(await ctx.accounts.report_lost(principal, session_id))


@router.get("/unit", operation_id="getMyUnit", tags=RESIDENT)
async def my_unit(principal: Resident, ctx: Ctx) -> UnitOut:
    """My unit."""
    return unit_out(ctx.building.unit(resident_unit(principal)))


@router.get("/devices", operation_id="listMyDevices", tags=RESIDENT)
async def my_devices(principal: Resident, ctx: Ctx) -> list[DeviceOut]:
    """My unit's devices with state, availability, last-seen and staleness (while the service is in force)."""
    unit_id = resident_unit(principal)
    ctx.policy.check_service(unit_id)
    names = await ctx.building.names(unit_id)
    now = ctx.gateway.clock.now()
    return [
        device_out(ctx.gateway.registry, d, unit_id, now, ctx.stale_after, names.get(d))
        for d in ctx.building.devices_of_unit(unit_id)
    ]


@router.get("/devices/{device_id}", operation_id="getMyDevice", tags=RESIDENT)
async def my_device(device_id: DeviceId, principal: Resident, ctx: Ctx) -> DeviceOut:
    """One of my devices (404 for any other id)."""
    unit_id = _own_device(ctx, principal.account.unit_id, device_id)
    ctx.policy.check_service(unit_id)
    names = await ctx.building.names(unit_id)
    return device_out(
        ctx.gateway.registry, device_id, unit_id, ctx.gateway.clock.now(), ctx.stale_after, names.get(device_id)
    )


@router.put("/devices/{device_id}/name", operation_id="nameMyDevice", tags=RESIDENT)
async def name_device(device_id: DeviceId, body: NameRequest, principal: Resident, ctx: Ctx) -> DeviceOut:
    """Give one of my devices a name of my own (removed at move-out)."""
    unit_id = _own_device(ctx, principal.account.unit_id, device_id)
    ctx.policy.check_service(unit_id)
    await ctx.building.set_name(unit_id, device_id, body.name, principal.actor)
    return device_out(ctx.gateway.registry, device_id, unit_id, ctx.gateway.clock.now(), ctx.stale_after, body.name)


@router.post(
    "/entities/{entity_id}/commands",
    operation_id="sendCommand",
    tags=RESIDENT,
    responses={
        202: {"model": CommandOut, "description": "Accepted (wait=false): poll GET /me/commands/{id}"},
        403: PROBLEM_RESPONSES[403]
        | {
            "description": "A rule of the service refuses: lessor_contract_inactive, agreement_not_accepted, "
            "agreement_unavailable, plan_excludes_device_kind, app_update_required (nothing is sent to the device)"
        },
        409: PROBLEM_RESPONSES[404]
        | {
            "description": "device_offline, device_jammed, not_commandable, device_held (its wiring changed since "
            "it was bound; nothing is sent until staff approve)"
        },
        503: PROBLEM_RESPONSES[404] | {"description": "broker_unavailable"},
        504: PROBLEM_RESPONSES[404] | {"description": "command_timeout"},
    },
)
async def send_command(
    entity_id: EntityId, body: CommandRequest, principal: Resident, app: AppHeader, ctx: Ctx, response: Response
) -> CommandOut:
    """Send a command and get its real outcome: 200 confirmed, or a problem naming why not (with the command).

    Every link of the service's chain is checked first (contract, plan, agreement, account, session, app
    version); a refusal names the link and its code, and nothing reaches the device.
    """
    # The entity is looked up once and the body typed for it once, here: a command the device cannot take is
    # answered (422, naming the field) before the rules are asked, and what they allow goes out as it is.
    unit_id = resident_unit(principal)
    entity = ctx.gateway.registry.get(entity_key(entity_id))
    if entity is None or ctx.building.unit_of_device(entity.device_id) != unit_id:
        raise NotFound(f"no device entity {entity_id!r}", code="entity_not_found")
    try:
        typed = type_command(entity, body.command)
    except CommandRejected as exc:
        return _outcome(await ctx.gateway.commands.reject(entity, body.command, exc, actor=principal.actor))
    allowed = await ctx.policy.authorize(principal.account, principal.session, app, typed)
    command_id, outcome = ctx.runner.submit(allowed, timeout=body.timeout)
    if not body.wait:
        response.status_code = 202
        response.headers["Location"] = f"/api/v1/me/commands/{command_id}"
        return CommandOut(
            id=command_id,
            entity_id=api_entity_id(entity.id),
            status=str(CommandStatus.PENDING),
            reason=None,
            detail=None,
            command=body.command,
            created_at=ctx.gateway.clock.now(),
            finished_at=None,
        )
    return _outcome(await outcome)


@router.get("/commands/{command_id}", operation_id="getMyCommand", tags=RESIDENT)
async def my_command(command_id: CommandId, principal: Resident, ctx: Ctx) -> CommandOut:
    """A command of my unit, pending or finished."""
    unit_id = resident_unit(principal)
    row = await ctx.gateway.commands.get(command_id)
    if row is None:
        failure = ctx.runner.failure_of(command_id)
        if failure is not None and failure[0] == unit_id:
            raise failure[1]  # refused before it could be recorded (e.g. storage_full): say why, not 404
        if ctx.runner.unit_of(command_id) == unit_id:
            raise ProblemError(503, "command_starting", "the command is being recorded; ask again", retry_after=1)
        raise NotFound(f"no command {command_id!r}", code="command_not_found")
    entity = ctx.gateway.registry.get(row.entity_key)
    device_unit = None if entity is None else ctx.building.unit_of_device(entity.device_id)
    since = principal.account.activated_at or principal.account.created_at
    if device_unit != unit_id or datetime.fromisoformat(row.created_at) < since:
        raise NotFound(f"no command {command_id!r}", code="command_not_found")
    return command_out(row)


@router.get("/events", operation_id="listMyEvents", tags=RESIDENT)
async def my_events(
    principal: Resident,
    ctx: Ctx,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="next_before of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> EventPage:
    """My unit's history, newest first, since I moved in (earlier residents' history is not shown)."""
    unit_id = resident_unit(principal)
    since = principal.account.activated_at or principal.account.created_at
    rows = await ctx.building.unit_events(unit_id, since, before, limit)
    events = [
        EventOut(
            id=int(str(r["id"])),
            at=datetime.fromisoformat(str(r["at"])),
            entity_id=api_entity_id(str(r["entity_key"])) if r["entity_key"] else None,
            type=str(r["type"]),
            data=_public_data(r["data"], principal.actor),
        )
        for r in rows
    ]
    return EventPage(events=events, next_before=events[-1].id if len(events) == limit else None)


@router.get(
    "/stream",
    operation_id="streamMyUnit",
    tags=RESIDENT,
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Server-Sent Events: ready, state, availability, notification",
        }
    },
)
async def my_stream(principal: Resident, ctx: Ctx, request: Request) -> StreamingResponse:
    """Live state and availability changes of my unit and its reminders (Server-Sent Events); ends when the
    session ends, or the service does (the lessor's contract). An account, and a source address, may hold only a
    few at once (429 ``too_many_streams``)."""
    unit_id = resident_unit(principal)
    ctx.policy.check_service(unit_id)
    source = request.client.host if request.client else ""
    subscriber = ctx.hub.subscribe(unit_id, principal.account.id, principal.session.id, source)

    async def still_valid() -> bool:
        try:
            await ctx.accounts.recheck(principal)
            ctx.policy.check_service(unit_id)
        except (AuthError, PolicyRefused):
            return False
        return True

    return ctx.hub.response(subscriber, still_valid)


def _own_device(ctx: ApiContext, unit_id: str | None, device_id: str) -> str:
    if unit_id is None or ctx.building.unit_of_device(device_id) != unit_id:
        raise NotFound(f"no device {device_id!r}", code="device_not_found")
    return unit_id


def _outcome(result: CommandResult) -> CommandOut:
    body = command_out(result)
    if result.status is CommandStatus.CONFIRMED:
        return body
    code = result.reason or str(result.status)
    raise ProblemError(
        _COMMAND_STATUS.get(code, 409),
        code,
        result.detail or f"the command ended {result.status}",
        field=result.field,
        command=body.model_dump(mode="json"),
    )


def _public_data(data: object, actor: str) -> dict[str, object]:
    # Command events name who asked; a resident sees "you" or "someone else", never another account id.
    if not isinstance(data, dict):
        return {}
    if "actor" in data:
        data = {**data, "actor": "you" if data["actor"] == actor else "someone else"}
    return data
