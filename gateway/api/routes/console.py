"""/properties/{id}/console, /stream and /audit, and /console: the property console, one web page served by the
gateway (static HTML, its scripts and a style sheet; nothing loaded from elsewhere) and the API calls made for it."""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from ...checks import Notification
from ...errors import AuthError, NotFound
from ...policy import contract_lapse, opt_out_deadline
from ..deps import Ctx, Manager, Staff, own_property
from ..problems import PROBLEM_RESPONSES
from ..schemas import AuditEntryOut, AuditPage
from ..schemas_policy import ConsoleAcceptanceOut, ConsoleOut, ConsoleResidentOut, ConsoleUnitOut
from ..views import contract_out, resident_acceptance

__all__ = ["SECURITY_HEADERS", "page_router", "router"]

router = APIRouter(prefix="/properties", tags=["property"], responses=PROBLEM_RESPONSES)
page_router = APIRouter(include_in_schema=False)

Id = Annotated[str, Path(min_length=1, max_length=128)]

# The page runs only its own script and style and talks only to this gateway; it may not be framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_SCRIPTS = ("api.js", "agreements.js", "credentials.js", "overview.js", "actions.js", "console.js")
_MEDIA_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    **dict.fromkeys(_SCRIPTS, "text/javascript; charset=utf-8"),
}
# Read once at import: a few kilobytes, and no file access on the event loop afterwards.
_ASSETS = {name: (resources.files("gateway.api") / "console" / name).read_bytes() for name in _MEDIA_TYPES}


@router.get("/{property_id}/console", operation_id="getPropertyConsole")
async def console(property_id: Id, principal: Manager, ctx: Ctx) -> ConsoleOut:
    """My property's console in one call: the lessor's contract (in force or why not, dates, internet provider)
    and, per unit, each resident's accepted agreement versions with when, and the arbitration opt-out (manager;
    an audited read)."""
    pid = own_property(principal, ctx, property_id)
    now = ctx.gateway.clock.now()
    contract = ctx.policy.contract(pid)
    lapse = contract_lapse(contract, now)
    current, fresh, by_unit = await ctx.policy.read_console(pid, by=principal)
    units = [
        ConsoleUnitOut(
            unit_id=u.id,
            label=u.label,
            residents=[
                ConsoleResidentOut(
                    **resident_acceptance(r, fresh),
                    acceptances=[ConsoleAcceptanceOut.model_validate(a) for a in r.acceptances],
                    arbitration_opt_out_at=r.record.opted_out_at,
                    opt_out_deadline=opt_out_deadline(r.record),
                )
                for r in residents
            ],
        )
        for u, residents in by_unit
    ]
    return ConsoleOut(
        property_id=pid,
        property_name=ctx.building.property(pid).name,
        at=now,
        service_in_force=lapse is None,
        lapse=lapse,
        contract=None if contract is None else contract_out(contract, now),
        current_version=None if current is None else current.version,
        current_effective_at=None if current is None else current.effective_at,
        units=units,
    )


@router.get(
    "/{property_id}/stream",
    operation_id="streamProperty",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Server-Sent Events: ready, state, availability (each with unit_id), notification",
        }
    },
)
async def property_stream(property_id: Id, principal: Staff, ctx: Ctx, request: Request) -> StreamingResponse:
    """Live state and availability changes of every bound device of my property, each naming its unit, and the
    units' reminders (Server-Sent Events; manager or installer); ends when the session ends. Counted with the
    account's other streams (429 ``too_many_streams``)."""
    pid = own_property(principal, ctx, property_id)
    source = request.client.host if request.client else ""
    subscriber = ctx.hub.subscribe(pid, principal.account.id, principal.session.id, source, whole_property=True)

    async def still_valid() -> bool:
        try:
            await ctx.accounts.recheck(principal)
        except AuthError:
            return False
        return True

    return ctx.hub.response(subscriber, still_valid)


@router.get("/{property_id}/audit", operation_id="listPropertyAudit")
async def property_audit(
    property_id: Id,
    principal: Manager,
    ctx: Ctx,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    """My property's audit log, newest first: who did what to its units, devices and residents (manager)."""
    pid = own_property(principal, ctx, property_id)
    rows = await ctx.audit.entries(pid, before, limit)
    entries = [AuditEntryOut.model_validate(r) for r in rows]
    return AuditPage(entries=entries, next_before=entries[-1].id if len(entries) == limit else None)


@router.get("/{property_id}/notifications", operation_id="listPropertyNotifications")
async def property_notifications(
    property_id: Id,
    principal: Manager,
    ctx: Ctx,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[Notification]:
    """The notifications queued for my property's units, newest first: alerts (a leak, a jammed or offline front
    door lock, a low battery; each once when it begins and once when it ends) and self-test reminders (manager).
    Home automation notices only, not a security or alarm system."""
    pid = own_property(principal, ctx, property_id)
    return await ctx.checks.property_notifications(pid, before, limit)


@page_router.get("/console")
async def console_page() -> Response:
    """The console page."""
    return _asset("index.html")


@page_router.get("/console/{name}")
async def console_file(name: Annotated[str, Path(max_length=32)]) -> Response:
    """The console's script and style sheet."""
    if name not in _MEDIA_TYPES or name == "index.html":
        raise NotFound(f"no console file {name!r}", code="not_found")
    return _asset(name)


def _asset(name: str) -> Response:
    return Response(_ASSETS[name], media_type=_MEDIA_TYPES[name], headers=SECURITY_HEADERS)
