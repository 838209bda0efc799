"""Signing in and out, activation, and the caller's own account and sessions."""

from __future__ import annotations

from fastapi import APIRouter, Response

from .context import Ctx, Who
from .problems import PROBLEM_RESPONSES
from .schemas import AccountOut, ActivateRequest, LoginRequest, LoginResponse, SessionOut
from .views import account_out, session_out

__all__ = ["router"]

router = APIRouter(tags=["session"], responses=PROBLEM_RESPONSES)


@router.post("/auth/login", operation_id="login")
async def login(body: LoginRequest, ctx: Ctx) -> LoginResponse:
    """Sign in; repeated failures are slowed (429 ``login_throttled``) and then locked (429 ``account_locked``)."""
    grant = await ctx.accounts.login(body.username, body.password, body.client)
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
    """My sessions, newest first."""
    return [session_out(s) for s in await ctx.accounts.sessions(principal.account.id)]
