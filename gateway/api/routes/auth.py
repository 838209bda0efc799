"""Signing in and out, activation, and the caller's own account and sessions (the single-device licence)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from ...accounts import Account, Principal, Role
from ...accounts.service import REPORTED_LOST, SessionLimit
from ..context import AppHeader, Ctx, Who
from ..problems import CONFLICT_RESPONSES, PROBLEM_RESPONSES
from ..schemas import AccountOut, ActivateRequest, LoginRequest, LoginResponse, SessionOut
from ..views import account_out, session_out

__all__ = ["router"]

router = APIRouter(tags=["session"], responses=PROBLEM_RESPONSES)

SessionId = Annotated[str, Path(min_length=1, max_length=64)]


@router.post(
    "/auth/login",
    operation_id="login",
    responses={409: CONFLICT_RESPONSES[409] | {"description": "plan_limit_app_devices (with the live sessions)"}},
)
async def login(body: LoginRequest, ctx: Ctx, app: AppHeader) -> LoginResponse:
    """Sign in; repeated failures are slowed (429 ``login_throttled``) and then locked (429 ``account_locked``).

    A resident may use one app device at a time (the plan may allow more): a sign-in beyond that is refused
    (409 ``plan_limit_app_devices``, listing the live sessions) or ends the oldest session, as the plan says.
    ``replace_session_id`` ends one of your sessions first, e.g. that of a lost phone.
    """

    async def admit(account: Account) -> SessionLimit | None:
        if account.role is Role.RESIDENT:
            ctx.policy.check_app(app)
        return await ctx.policy.session_limit(account)

    grant = await ctx.accounts.login(
        body.username, body.password, body.client, admit=admit, replace_session=body.replace_session_id
    )
    if body.replace_session_id is not None:
        await ctx.audit.record(
            Principal(grant.account, grant.session),
            "session.reported_lost",
            property_id=grant.account.property_id,
            unit_id=grant.account.unit_id,
            target=body.replace_session_id,
            detail={"at_sign_in": True},
        )
    return LoginResponse(
        token=grant.token,
        session=session_out(grant.session),
        idle_timeout_seconds=int(ctx.accounts.settings.idle_timeout.total_seconds()),
        account=account_out(grant.account),
    )


@router.post("/auth/activate", operation_id="activate")
async def activate(body: ActivateRequest, ctx: Ctx) -> AccountOut:
    """Set the first password with the one-time activation code; then sign in."""
    account = await ctx.accounts.activate(body.username, body.activation_code, body.password)
    return account_out(account)


@router.post("/auth/logout", status_code=204, operation_id="logout")
async def logout(principal: Who, ctx: Ctx) -> Response:
    """End this session; its token stops working at once."""
    await ctx.accounts.logout(principal)
    ctx.hub.close_account(principal.account.id, principal.session.id)
    return Response(status_code=204)


@router.get("/me", operation_id="getMe")
async def me(principal: Who) -> AccountOut:
    """The signed-in account."""
    return account_out(principal.account)


@router.get("/me/sessions", operation_id="listMySessions")
async def my_sessions(principal: Who, ctx: Ctx) -> list[SessionOut]:
    """My sessions (one per app device or console), newest first."""
    return [session_out(s) for s in await ctx.accounts.sessions(principal.account.id)]


@router.delete("/me/sessions/{session_id}", status_code=204, operation_id="endMySession")
async def end_my_session(session_id: SessionId, principal: Who, ctx: Ctx) -> Response:
    """End one of my sessions (e.g. an app device I no longer use); its token stops working at once."""
    await ctx.accounts.end_session(principal.account.id, session_id, "ended by its owner")
    return Response(status_code=204)


@router.post("/me/sessions/{session_id}/lost", operation_id="reportLostDevice")
async def report_lost(session_id: SessionId, principal: Who, ctx: Ctx) -> SessionOut:
    """Report the app device of one of my sessions lost or stolen: its session ends at once (audited)."""
    ended = await ctx.accounts.end_session(principal.account.id, session_id, REPORTED_LOST)
    await ctx.audit.record(
        principal,
        "session.reported_lost",
        property_id=principal.account.property_id,
        unit_id=principal.account.unit_id,
        target=session_id,
        detail={"client": ended.client},
    )
    return session_out(ended)
