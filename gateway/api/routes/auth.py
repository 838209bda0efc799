"""/auth: signing in (the single-device licence) and out, and activation."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ...accounts import Account, Role
from ...accounts.account_service import SessionLimit
from ..deps import AppHeader, Ctx, Who
from ..problems import CONFLICT_RESPONSES, PROBLEM_RESPONSES
from ..schemas import AccountOut, ActivateRequest, LoginRequest, LoginResponse
from ..views import account_out, session_out

__all__ = ["router"]

router = APIRouter(prefix="/auth", tags=["session"], responses=PROBLEM_RESPONSES)


@router.post(
    "/login",
    operation_id="login",
    responses={409: CONFLICT_RESPONSES[409] | {"description": "plan_limit_app_devices (with the live sessions)"}},
)
async def login(body: LoginRequest, ctx: Ctx, app: AppHeader, request: Request) -> LoginResponse:
    """Sign in; repeated failures from one address are slowed (429 ``login_throttled``) and then locked there
    (429 ``account_locked``); failures from every address together only slow (429 ``login_throttled``).

    A resident may use one app device at a time (the plan may allow more): a sign-in beyond that is refused
    (409 ``plan_limit_app_devices``, listing the live sessions) or ends the oldest session, as the plan says.
    ``replace_session_id`` ends one of your sessions first, e.g. that of a lost phone.
    """

    async def admit(account: Account) -> SessionLimit | None:
        if account.role is Role.RESIDENT:
            ctx.policy.check_app(app)
        return await ctx.policy.session_limit(account)

    grant = await ctx.accounts.login(
        body.username,
        body.password,
        body.client,
        admit=admit,
        replace_session=body.replace_session_id,
        source=source(request),
    )
    return LoginResponse(
        token=grant.token,
        session=session_out(grant.session),
        idle_timeout_seconds=int(ctx.accounts.settings.idle_timeout.total_seconds()),
        account=account_out(grant.account),
    )


@router.post("/activate", operation_id="activate")
async def activate(body: ActivateRequest, ctx: Ctx, request: Request) -> AccountOut:
    """Set the first password with the one-time activation code; then sign in. Throttled like a sign-in."""
    account = await ctx.accounts.activate(body.username, body.activation_code, body.password, source=source(request))
    return account_out(account)


@router.post("/logout", status_code=204, operation_id="logout")
async def logout(principal: Who, ctx: Ctx) -> Response:
    """End this session; its token stops working at once."""
    await ctx.accounts.logout(principal)
    ctx.hub.close_account(principal.account.id, principal.session.id)
    return Response(status_code=204)


def source(request: Request) -> str:
    """The address the request came from: the peer of the connection (no forwarding header is trusted)."""
    return request.client.host if request.client is not None else "unknown"
