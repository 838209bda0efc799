"""/auth: signing in (the single-device licence) and out, and activation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Cookie, Header, Request, Response

from ...accounts import Account, Principal, Role, Session
from ...accounts.account_service import SessionLimit
from ...errors import AccessDenied, AuthError
from ..context import ApiContext
from ..deps import AppHeader, Ctx, Who
from ..problems import CONFLICT_RESPONSES, PROBLEM_RESPONSES, problem_response
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
    return _grant(ctx, grant.token, grant.session, grant.account)


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


# --- the console's session cookie ---------------------------------------------------------------------------
# The console keeps its token in page memory; to survive a reload it also holds the token in an HttpOnly,
# SameSite=Strict cookie sent only to the endpoints below (Path), which hand it back to the page's memory. Those
# endpoints need the X-Console header (a cross-site form cannot set it, and a cross-site fetch with it needs a
# CORS preflight the gateway never grants) and, when the browser sends one, this origin's Origin header.

CONSOLE_COOKIE = "console_session"
CONSOLE_PATH = "/api/v1/auth/console-session"
CONSOLE_HEADER = "X-Console"
# The browser keeps the cookie this long after the last sign-in or reload (a working day), or the session's idle
# timeout if shorter: a console left closed overnight asks for the password again.
CONSOLE_COOKIE_SECONDS = 12 * 3600
STAFF = (Role.MANAGER, Role.INSTALLER, Role.OPERATOR)
ConsoleCookie = Annotated[str | None, Cookie(alias=CONSOLE_COOKIE, max_length=256)]
ConsoleHeader = Annotated[
    str | None, Header(alias=CONSOLE_HEADER, max_length=8, description="Must be 1: proves a same-origin script")
]


@router.post("/console-session", operation_id="openConsoleSession")
async def open_console_session(body: LoginRequest, ctx: Ctx, request: Request, response: Response) -> LoginResponse:
    """Sign in to the console (staff only, 403 ``role_forbidden`` otherwise): the grant of ``login``, plus a
    session cookie (HttpOnly, SameSite=Strict, Secure over TLS, Path limited to this endpoint) so that a reload of
    the console resumes the session without a new sign-in."""
    _same_origin(request)

    async def staff_only(account: Account) -> SessionLimit | None:
        # Refused before any session opens: a resident's app session is never displaced by a console sign-in.
        if account.role not in STAFF:
            raise AccessDenied("the console is for property staff", code="role_forbidden")
        return await ctx.policy.session_limit(account)

    grant = await ctx.accounts.login(
        body.username, body.password, body.client or "property console", admit=staff_only, source=source(request)
    )
    _set_cookie(ctx, request, response, grant.token)
    return _grant(ctx, grant.token, grant.session, grant.account)


@router.post("/console-session/resume", operation_id="resumeConsoleSession", response_model=LoginResponse)
async def resume_console_session(
    ctx: Ctx, request: Request, response: Response, cookie: ConsoleCookie = None, x_console: ConsoleHeader = None
) -> LoginResponse | Response:
    """The console's session again after a reload (needs the cookie and ``X-Console: 1``; 403 ``csrf_refused``
    without the header or from another origin; 401 and the cookie cleared when the session has ended)."""
    _csrf(request, x_console)
    if cookie is None:
        raise AuthError("no console session: sign in", code="unauthenticated")
    try:
        principal = await ctx.accounts.authenticate(cookie)
    except AuthError as e:
        # Answered here rather than raised: a raised error would drop the header that clears the cookie.
        ended = problem_response(401, e.code, str(e), instance=request.url.path)
        _clear_cookie(ended)
        return ended
    _set_cookie(ctx, request, response, cookie)
    return _grant(ctx, cookie, principal.session, principal.account)


@router.delete("/console-session", status_code=204, operation_id="closeConsoleSession")
async def close_console_session(
    ctx: Ctx, request: Request, cookie: ConsoleCookie = None, x_console: ConsoleHeader = None
) -> Response:
    """Sign out of the console: the session ends (its token stops working) and the cookie is cleared."""
    _csrf(request, x_console)
    done = Response(status_code=204)
    _clear_cookie(done)
    if cookie is not None:
        principal: Principal | None
        try:
            principal = await ctx.accounts.authenticate(cookie)
        except AuthError:
            principal = None  # already ended: clearing the cookie is all that is left
        if principal is not None:
            await ctx.accounts.logout(principal)
            ctx.hub.close_account(principal.account.id, principal.session.id)
    return done


def _grant(ctx: ApiContext, token: str, session: Session, account: Account) -> LoginResponse:
    return LoginResponse(
        token=token,
        session=session_out(session),
        idle_timeout_seconds=int(ctx.accounts.settings.idle_timeout.total_seconds()),
        account=account_out(account),
    )


def _csrf(request: Request, header: str | None) -> None:
    if header != "1":
        raise AccessDenied(f"send the {CONSOLE_HEADER}: 1 header from the console", code="csrf_refused")
    _same_origin(request)


def _same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser's cross-origin request (browsers send Origin on every cross-origin POST/DELETE)
    if origin != f"{request.url.scheme}://{request.url.netloc}":
        raise AccessDenied("a request from another origin", code="csrf_refused")


def _set_cookie(ctx: ApiContext, request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        CONSOLE_COOKIE,
        token,
        max_age=min(CONSOLE_COOKIE_SECONDS, int(ctx.accounts.settings.idle_timeout.total_seconds())),
        path=CONSOLE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def _clear_cookie(response: Response) -> None:
    response.delete_cookie(CONSOLE_COOKIE, path=CONSOLE_PATH, httponly=True, samesite="strict")
