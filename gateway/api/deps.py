"""The dependencies route handlers share: the services, the signed-in caller, roles, and what the caller owns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..accounts import Principal, Role
from ..building import Unit
from ..errors import AccessDenied, AuthError, NotFound
from ..policy import AppVersionCheck
from .context import ApiContext
from .views import APP_VERSION_HEADER

__all__ = [
    "APP_VERSION_HEADER",
    "AnyStaff",
    "AppHeader",
    "Ctx",
    "Manager",
    "Operator",
    "Resident",
    "Staff",
    "Who",
    "get_context",
    "own_property",
    "own_unit",
    "require",
    "resident_unit",
    "staff_property",
]


# async although it awaits nothing: FastAPI runs a plain ``def`` dependency in a worker thread, a thread hop on
# every request.
async def get_context(request: Request) -> ApiContext:
    """The API context stored on the application."""
    return _context(request)


def _context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(get_context)]
_bearer = HTTPBearer(auto_error=False, description="The token from POST /api/v1/auth/login")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]

# The authentication dependencies below take the request and the bearer credentials directly rather than
# through further dependencies: every level of FastAPI's dependency tree costs time on every request.


async def current_principal(request: Request, credentials: Bearer) -> Principal:
    """The signed-in caller; 401 with the precise code otherwise."""
    if credentials is None:
        raise AuthError("sign in first: send Authorization: Bearer <token>", code="unauthenticated")
    return await _context(request).accounts.authenticate(credentials.credentials)


Who = Annotated[Principal, Depends(current_principal)]


def _check_role(principal: Principal, roles: tuple[Role, ...]) -> Principal:
    if principal.role not in roles:
        allowed = ", ".join(str(r) for r in roles)
        raise AccessDenied(f"this needs the role {allowed}; you are {principal.role}", code="role_forbidden")
    return principal


def require(*roles: Role) -> Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[Principal]]:
    """A dependency admitting only these roles (checked before any id is looked up, so 403 leaks nothing)."""

    async def check(request: Request, credentials: Bearer) -> Principal:
        return _check_role(await current_principal(request, credentials), roles)

    return check


StatedVersion = Annotated[
    str | None,
    Header(
        max_length=32,
        description="The resident app's version, e.g. 2.4.1; below the operator's minimum: app_update_required",
    ),
]


async def app_version(request: Request, x_app_version: StatedVersion = None) -> AppVersionCheck:
    """The version the client states, checked for form (422 ``app_version_invalid``)."""
    return _context(request).policy.app_check(x_app_version)


AppHeader = Annotated[AppVersionCheck, Depends(app_version)]


async def resident_app(request: Request, credentials: Bearer, x_app_version: StatedVersion = None) -> Principal:
    """A resident, through an app version the operator still allows (403 ``app_update_required``)."""
    # Signed in first, then the version: a caller without a session learns that before anything else.
    principal = _check_role(await current_principal(request, credentials), (Role.RESIDENT,))
    policy = _context(request).policy
    policy.check_app(policy.app_check(x_app_version))
    return principal


Resident = Annotated[Principal, Depends(resident_app)]
Manager = Annotated[Principal, Depends(require(Role.MANAGER))]
Staff = Annotated[Principal, Depends(require(Role.MANAGER, Role.INSTALLER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
AnyStaff = Annotated[Principal, Depends(require(Role.OPERATOR, Role.MANAGER, Role.INSTALLER))]


def resident_unit(principal: Principal) -> str:
    """The resident's own unit id."""
    if principal.account.unit_id is None:
        raise NotFound("no unit", code="unit_not_found")
    return principal.account.unit_id


def own_property(principal: Principal, ctx: ApiContext, property_id: str) -> str:
    """The staff member's own property's id; any other answers 404 like an id that does not exist."""
    # Staff of another property get the same 404 as for an id that does not exist.
    if principal.account.property_id != property_id:
        raise NotFound(f"no property {property_id!r}", code="property_not_found")
    return ctx.building.property(property_id).id


def staff_property(principal: Principal, ctx: ApiContext, property_id: str) -> str:
    """Any property for the operator; the staff member's own one otherwise (404 for any other)."""
    if principal.role is Role.OPERATOR:
        return ctx.building.property(property_id).id
    return own_property(principal, ctx, property_id)


def own_unit(principal: Principal, ctx: ApiContext, property_id: str, unit_id: str) -> Unit:
    """A unit of the staff member's own property (404 otherwise)."""
    return ctx.building.unit(unit_id, own_property(principal, ctx, property_id))
