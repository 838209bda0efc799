"""/operator (accounts): staff accounts, disabling any account, lockouts, the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from ...accounts import AccountStatus, Role
from ...errors import InvalidRequest
from ..deps import Ctx, Operator
from ..problems import CONFLICT_RESPONSES, PROBLEM_RESPONSES
from ..schemas import (
    AccountOut,
    AuditEntryOut,
    AuditPage,
    CreateStaffRequest,
    DisableRequest,
    NewAccountOut,
    UnlockRequest,
)
from ..views import account_out

__all__ = ["router"]

router = APIRouter(prefix="/operator", tags=["operator"], responses=PROBLEM_RESPONSES)

AccountId = Annotated[str, Path(min_length=1, max_length=64)]


@router.post("/accounts", status_code=201, operation_id="createStaffAccount", responses=CONFLICT_RESPONSES)
async def create_staff(body: CreateStaffRequest, principal: Operator, ctx: Ctx) -> NewAccountOut:
    """Create a manager, installer or operator account with a one-time activation code."""
    if body.role is Role.OPERATOR and body.property_id is not None:
        raise InvalidRequest("operators are not bound to a property", code="property_not_allowed", field="property_id")
    if body.role is not Role.OPERATOR:
        if body.property_id is None:
            raise InvalidRequest(f"a {body.role} needs a property_id", code="property_required", field="property_id")
        ctx.building.property(body.property_id)
    created = await ctx.accounts.create(
        body.username, body.role, by=principal, property_id=body.property_id, display_name=body.display_name
    )
    return NewAccountOut(
        account=account_out(created.account),
        activation_code=created.activation_code,
        activation_expires_at=created.activation_expires_at,
    )


@router.get("/accounts", operation_id="listAccounts")
async def list_accounts(
    principal: Operator,
    ctx: Ctx,
    role: Role | None = None,
    property_id: Annotated[str | None, Query(max_length=40)] = None,
) -> list[AccountOut]:
    """Accounts, optionally of one role or property (an audited read)."""
    return [account_out(a) for a in await ctx.accounts.list_accounts(role, property_id, by=principal)]


@router.post("/accounts/{account_id}/disable", operation_id="disableAccount", responses=CONFLICT_RESPONSES)
async def disable(account_id: AccountId, body: DisableRequest, principal: Operator, ctx: Ctx) -> AccountOut:
    """Suspend an account; its sessions end at once and it cannot sign in until enabled (not your own)."""
    return account_out(await ctx.accounts.set_status(account_id, AccountStatus.SUSPENDED, body.reason, by=principal))


@router.post("/accounts/{account_id}/enable", operation_id="enableAccount", responses=CONFLICT_RESPONSES)
async def enable(account_id: AccountId, principal: Operator, ctx: Ctx) -> AccountOut:
    """Enable a suspended account again (never a terminated one)."""
    return account_out(await ctx.accounts.set_status(account_id, AccountStatus.ACTIVE, None, by=principal))


@router.post("/accounts/{account_id}/terminate", operation_id="terminateAccount", responses=CONFLICT_RESPONSES)
async def terminate(account_id: AccountId, body: DisableRequest, principal: Operator, ctx: Ctx) -> AccountOut:
    """End an account for good; it can never be used again (not your own)."""
    return account_out(await ctx.accounts.terminate(account_id, body.reason, by=principal))


@router.post("/accounts/{account_id}/revoke-sessions", status_code=204, operation_id="revokeSessions")
async def revoke(account_id: AccountId, principal: Operator, ctx: Ctx) -> Response:
    """End every session of an account; each token stops working on its next request."""
    await ctx.accounts.revoke_sessions(account_id, "revoked by the operator", by=principal)
    return Response(status_code=204)


@router.post("/unlock", status_code=204, operation_id="unlockSignIn")
async def unlock(body: UnlockRequest, principal: Operator, ctx: Ctx) -> Response:
    """Clear a username's failed sign-ins and lockout."""
    await ctx.accounts.unlock(body.username, by=principal)
    return Response(status_code=204)


@router.get("/audit", operation_id="listAudit")
async def audit(
    principal: Operator,
    ctx: Ctx,
    property_id: Annotated[str | None, Query(max_length=40)] = None,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    """The audit log, newest first."""
    rows = await ctx.audit.entries(property_id, before, limit)
    entries = [AuditEntryOut.model_validate(r) for r in rows]
    return AuditPage(entries=entries, next_before=entries[-1].id if len(entries) == limit else None)
