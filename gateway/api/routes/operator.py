"""The service operator: staff accounts, disabling any account, lockouts, the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from ...accounts import AccountStatus, Principal, Role
from ...errors import Conflict, InvalidRequest
from ..context import Ctx, Operator
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
        body.username,
        body.role,
        created_by=principal.actor,
        property_id=body.property_id,
        display_name=body.display_name,
    )
    await ctx.audit.record(
        principal, "account.create", property_id=body.property_id, target=created.account.id, detail={"role": body.role}
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
    clauses, args = [], []
    if role is not None:
        clauses.append("role = ?")
        args.append(str(role))
    if property_id is not None:
        clauses.append("property_id = ?")
        args.append(property_id)
    accounts = await ctx.accounts.find(" AND ".join(clauses) or None, args)
    await ctx.audit.record(
        principal, "account.list", property_id=property_id, detail={"role": role, "count": len(accounts)}
    )
    return [account_out(a) for a in accounts]


@router.post("/accounts/{account_id}/disable", operation_id="disableAccount", responses=CONFLICT_RESPONSES)
async def disable(account_id: AccountId, body: DisableRequest, principal: Operator, ctx: Ctx) -> AccountOut:
    """Suspend an account; its sessions end at once and it cannot sign in until enabled (not your own)."""
    _not_own(principal, account_id)
    account = await ctx.accounts.set_status(account_id, AccountStatus.SUSPENDED, body.reason)
    await ctx.audit.record(
        principal,
        "account.disable",
        property_id=account.property_id,
        unit_id=account.unit_id,
        target=account.id,
        detail={"reason": body.reason},
    )
    return account_out(account)


@router.post("/accounts/{account_id}/enable", operation_id="enableAccount", responses=CONFLICT_RESPONSES)
async def enable(account_id: AccountId, principal: Operator, ctx: Ctx) -> AccountOut:
    """Enable a suspended account again (never a terminated one)."""
    account = await ctx.accounts.set_status(account_id, AccountStatus.ACTIVE, None)
    await ctx.audit.record(
        principal, "account.enable", property_id=account.property_id, unit_id=account.unit_id, target=account.id
    )
    return account_out(account)


@router.post("/accounts/{account_id}/terminate", operation_id="terminateAccount", responses=CONFLICT_RESPONSES)
async def terminate(account_id: AccountId, body: DisableRequest, principal: Operator, ctx: Ctx) -> AccountOut:
    """End an account for good; it can never be used again (not your own)."""
    _not_own(principal, account_id)
    account = await ctx.accounts.terminate(account_id, body.reason)
    await ctx.audit.record(
        principal,
        "account.terminate",
        property_id=account.property_id,
        unit_id=account.unit_id,
        target=account.id,
        detail={"reason": body.reason},
    )
    return account_out(account)


@router.post("/accounts/{account_id}/revoke-sessions", status_code=204, operation_id="revokeSessions")
async def revoke(account_id: AccountId, principal: Operator, ctx: Ctx) -> Response:
    """End every session of an account; each token stops working on its next request."""
    account = await ctx.accounts.get(account_id)
    count = await ctx.accounts.revoke_sessions(account.id, "revoked by the operator")
    await ctx.audit.record(
        principal,
        "account.revoke_sessions",
        property_id=account.property_id,
        unit_id=account.unit_id,
        target=account.id,
        detail={"sessions": count},
    )
    return Response(status_code=204)


@router.post("/unlock", status_code=204, operation_id="unlockSignIn")
async def unlock(body: UnlockRequest, principal: Operator, ctx: Ctx) -> Response:
    """Clear a username's failed sign-ins and lockout."""
    await ctx.accounts.unlock(body.username)
    await ctx.audit.record(principal, "account.unlock", target=body.username)
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


def _not_own(principal: Principal, account_id: str) -> None:
    # An operator who suspends or ends their own account may leave nobody to administer the gateway.
    if account_id == principal.account.id:
        raise Conflict("you cannot disable or end your own account; another operator can", code="own_account")
