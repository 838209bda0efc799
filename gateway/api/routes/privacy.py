"""/me (privacy): my data export, correction, privacy requests and disclosure log; /privacy: the staff's queue of
requests and the operator's settings."""

from __future__ import annotations

from datetime import timedelta
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse

from ...accounts import Principal, Role
from ...privacy import HOLDS, PrivacySettings
from ..deps import Ctx, Operator, Resident, Who, require
from ..problems import CONFLICT_RESPONSES, PROBLEM_RESPONSES
from ..schemas import AccountOut, DisableRequest
from ..schemas_privacy import (
    AnswerRequest,
    AppealRequest,
    DisclosureOut,
    ErasedOut,
    FileRequest,
    PrivacyRequestOut,
    PrivacySettingsBody,
    ProfileRequest,
)
from ..views import account_out, request_out

__all__ = ["resident_router", "staff_router"]

resident_router = APIRouter(prefix="/me", responses=PROBLEM_RESPONSES)
staff_router = APIRouter(prefix="/privacy", tags=["privacy"], responses=PROBLEM_RESPONSES)

RequestId = Annotated[str, Path(min_length=1, max_length=64)]
AccountId = Annotated[str, Path(min_length=1, max_length=64)]
Handler = Annotated[Principal, Depends(require(Role.OPERATOR, Role.MANAGER))]
PRIVACY: list[str | Enum] = ["privacy"]


@resident_router.get(
    "/data-export",
    operation_id="exportMyData",
    tags=PRIVACY,
    response_class=StreamingResponse,
    responses={200: {"content": {"application/json": {}}, "description": "Everything held about me, as JSON"}},
)
async def export_my_data(principal: Who, ctx: Ctx) -> StreamingResponse:
    """Everything the gateway holds about me (account, sessions, acceptances, commands, my unit's history during my
    residency, notifications, reports, audit entries, requests, disclosures), streamed; logged as a disclosure."""
    chunks = await ctx.privacy.export(principal)
    return StreamingResponse(
        chunks,
        media_type="application/json",
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": 'attachment; filename="my-data.json"',
        },
    )


@resident_router.patch("/profile", operation_id="correctMyProfile", tags=PRIVACY)
async def correct_profile(body: ProfileRequest, principal: Who, ctx: Ctx) -> AccountOut:
    """Correct my display name (audited)."""
    return account_out(await ctx.privacy.correct(principal, body.display_name))


@resident_router.post(
    "/privacy-requests", status_code=201, operation_id="filePrivacyRequest", tags=PRIVACY,
    responses=CONFLICT_RESPONSES,
)  # fmt: skip
async def file_request(body: FileRequest, principal: Resident, ctx: Ctx) -> PrivacyRequestOut:
    """Ask for access, correction, deletion or restriction; answered by the deadline (409 ``request_pending``
    while one of the same kind waits)."""
    request = await ctx.privacy.file(principal, body.kind, body.detail)
    return request_out(request, ctx.gateway.clock.now())


@resident_router.get("/privacy-requests", operation_id="listMyPrivacyRequests", tags=PRIVACY)
async def my_requests(principal: Resident, ctx: Ctx) -> list[PrivacyRequestOut]:
    """My privacy requests and where each stands, newest first."""
    now = ctx.gateway.clock.now()
    return [request_out(r, now) for r in await ctx.privacy.requests_of(principal.account.id)]


@resident_router.get("/privacy-requests/{request_id}", operation_id="getMyPrivacyRequest", tags=PRIVACY)
async def my_request(request_id: RequestId, principal: Resident, ctx: Ctx) -> PrivacyRequestOut:
    """One of my privacy requests."""
    return request_out(await ctx.privacy.own_request(principal, request_id), ctx.gateway.clock.now())


@resident_router.post(
    "/privacy-requests/{request_id}/appeal", operation_id="appealPrivacyRequest", tags=PRIVACY,
    responses=CONFLICT_RESPONSES,
)  # fmt: skip
async def appeal(request_id: RequestId, body: AppealRequest, principal: Resident, ctx: Ctx) -> PrivacyRequestOut:
    """Appeal the answer to one of my requests, once (409 ``request_not_answered``, ``request_already_appealed``)."""
    return request_out(await ctx.privacy.appeal(principal, request_id, body.reason), ctx.gateway.clock.now())


@resident_router.post(
    "/privacy-requests/{request_id}/withdraw", operation_id="withdrawPrivacyRequest", tags=PRIVACY,
    responses=CONFLICT_RESPONSES,
)  # fmt: skip
async def withdraw(request_id: RequestId, principal: Resident, ctx: Ctx) -> PrivacyRequestOut:
    """Close one of my requests (a granted restriction ends)."""
    return request_out(await ctx.privacy.withdraw(principal, request_id), ctx.gateway.clock.now())


@resident_router.get("/disclosures", operation_id="listMyDisclosures", tags=PRIVACY)
async def my_disclosures(
    principal: Who,
    ctx: Ctx,
    after: Annotated[int, Query(ge=0, le=2**62, description="the last id of the previous page")] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[DisclosureOut]:
    """Every disclosure of my data, oldest first: my exports, and each report about my unit sent upstream."""
    return [DisclosureOut.model_validate(d) for d in await ctx.privacy.disclosures(principal, after, limit)]


@staff_router.get("/requests", operation_id="listPrivacyRequests")
async def queue(
    principal: Handler,
    ctx: Ctx,
    pending: Annotated[bool, Query(description="only those waiting for staff")] = True,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[PrivacyRequestOut]:
    """The privacy requests I handle, by deadline: the operator's are all; a manager's, their property's when the
    operator allows it (403 ``privacy_requests_operator_only``). An audited read."""
    now = ctx.gateway.clock.now()
    return [request_out(r, now) for r in await ctx.privacy.queue(principal, pending, limit)]


@staff_router.post("/requests/{request_id}/take", operation_id="takePrivacyRequest", responses=CONFLICT_RESPONSES)
async def take(request_id: RequestId, principal: Handler, ctx: Ctx) -> PrivacyRequestOut:
    """Start on an open request (in progress; 409 ``request_not_open``)."""
    return request_out(await ctx.privacy.take(principal, request_id), ctx.gateway.clock.now())


@staff_router.post("/requests/{request_id}/answer", operation_id="answerPrivacyRequest", responses=CONFLICT_RESPONSES)
async def answer(request_id: RequestId, body: AnswerRequest, principal: Handler, ctx: Ctx) -> PrivacyRequestOut:
    """Answer a waiting request: grant (a deletion erases the person but what legal holds keep, named in ``held``;
    a restriction takes force), refuse with a ``refusal_code``, or answer. 409 ``request_not_pending``, 422
    ``refusal_code_required``."""
    request = await ctx.privacy.decide(principal, request_id, body.outcome, body.answer, body.refusal_code)
    return request_out(request, ctx.gateway.clock.now())


@staff_router.post("/requests/{request_id}/close", operation_id="closePrivacyRequest", responses=CONFLICT_RESPONSES)
async def close(request_id: RequestId, principal: Handler, ctx: Ctx) -> PrivacyRequestOut:
    """Close an answered request (409 ``request_not_answered``)."""
    return request_out(await ctx.privacy.close(principal, request_id), ctx.gateway.clock.now())


@staff_router.get("/settings", operation_id="getPrivacySettings")
async def get_settings(principal: Operator, ctx: Ctx) -> PrivacySettingsBody:
    """The answer deadline and whether managers handle their property's requests (operator)."""
    settings = await ctx.privacy.settings()
    return PrivacySettingsBody(deadline_days=settings.deadline.days, managers_handle=settings.managers_handle)


@staff_router.put("/settings", operation_id="setPrivacySettings")
async def set_settings(body: PrivacySettingsBody, principal: Operator, ctx: Ctx) -> PrivacySettingsBody:
    """Set the answer deadline (1-90 days) and whether managers handle their property's requests (audited)."""
    wanted = PrivacySettings(deadline=timedelta(days=body.deadline_days), managers_handle=body.managers_handle)
    settings = await ctx.privacy.set_settings(wanted, by=principal)
    return PrivacySettingsBody(deadline_days=settings.deadline.days, managers_handle=settings.managers_handle)


@staff_router.post("/accounts/{account_id}/erase", operation_id="eraseAccount", responses=CONFLICT_RESPONSES)
async def erase_account(account_id: AccountId, body: DisableRequest, principal: Operator, ctx: Ctx) -> ErasedOut:
    """Erase a resident's account but what legal holds keep, e.g. a former resident's who asks in writing (operator;
    audited). 409 ``not_a_resident``."""
    pseudonym = await ctx.privacy.erase_account(account_id, body.reason, by=principal)
    return ErasedOut(pseudonym=pseudonym, held=list(HOLDS))
