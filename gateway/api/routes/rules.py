"""/operator (rules) and /app: the operator's side of the service's rules (lessor contracts, agreement versions,
the minimum app version, agreement records and single credentials), and the public app requirements."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from ...policy import Contract, InternetProvider
from ..deps import Ctx, Operator
from ..problems import CONFLICT_RESPONSES, PROBLEM_RESPONSES
from ..schemas import DisableRequest, SessionOut
from ..schemas_policy import (
    AgreementRecordOut,
    AgreementVersionOut,
    AppRequirementsOut,
    AppVersionRequest,
    ContractOut,
    ContractRequest,
    PublishAgreementRequest,
)
from ..views import acceptance_out, contract_out, session_out

__all__ = ["public_router", "router"]

router = APIRouter(prefix="/operator", tags=["operator"], responses=PROBLEM_RESPONSES)
public_router = APIRouter(tags=["app"])

Id = Annotated[str, Path(min_length=1, max_length=128)]


@router.put("/properties/{property_id}/contract", operation_id="setContract")
async def set_contract(property_id: Id, body: ContractRequest, principal: Operator, ctx: Ctx) -> ContractOut:
    """Record the lessor's contract for a property (replacing the previous record); applies on the next request.

    Suspending or terminating it, withdrawing the service, or an end date passing stops all control by
    residents (``lessor_contract_inactive``); devices stay exactly as they are. Lowering the plan's
    ``app_devices_per_account`` ends, at once, each resident's sessions beyond it, keeping the most recently
    used (their next request: ``session_displaced``; audited as ``session.ended_by_plan``).
    """
    ctx.building.property(property_id)
    contract = await ctx.policy.set_contract(
        Contract(
            property_id=property_id,
            status=body.status,
            status_reason=body.status_reason,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            offers_service=body.offers_service,
            internet=InternetProvider(body.internet.provided_by, body.internet.name, body.internet.contact),
            plan=body.plan,
            updated_at=ctx.gateway.clock.now(),
            updated_by=principal.actor,
        ),
        by=principal,
    )
    # A lowered app-device limit applies to who is signed in now, not only to the next sign-in (rule 3).
    await ctx.accounts.trim_sessions(property_id, contract.plan.app_devices_per_account, by=principal)
    return contract_out(contract, ctx.gateway.clock.now())


@router.get("/properties/{property_id}/contract", operation_id="getContract")
async def get_contract(property_id: Id, principal: Operator, ctx: Ctx) -> ContractOut:
    """A property's contract and whether it is in force."""
    return contract_out(ctx.policy.recorded_contract(property_id), ctx.gateway.clock.now())


@router.post("/agreements", status_code=201, operation_id="publishAgreement", responses=CONFLICT_RESPONSES)
async def publish_agreement(body: PublishAgreementRequest, principal: Operator, ctx: Ctx) -> AgreementVersionOut:
    """Publish a new version of the end-user agreement; from its effective time on, residents must accept it
    before controlling anything (``agreement_not_accepted``)."""
    version = await ctx.policy.publish(body.version, body.text, body.effective_at, by=principal)
    return AgreementVersionOut.model_validate(version)


@router.get("/agreements", operation_id="listAgreements")
async def list_agreements(principal: Operator, ctx: Ctx) -> list[AgreementVersionOut]:
    """Every published version, in the order they take effect."""
    return [AgreementVersionOut.model_validate(v) for v in ctx.policy.versions()]


@router.put("/app-version", operation_id="setMinimumAppVersion")
async def set_app_version(body: AppVersionRequest, principal: Operator, ctx: Ctx) -> AppRequirementsOut:
    """Set the minimum app version: older apps get ``app_update_required`` on their next request."""
    minimum = await ctx.policy.set_min_app_version(body.minimum_app_version, by=principal)
    return AppRequirementsOut(minimum_app_version=None if minimum is None else str(minimum))


@router.get("/accounts/{account_id}/agreement", operation_id="getAgreementRecord")
async def agreement_record(account_id: Id, principal: Operator, ctx: Ctx) -> AgreementRecordOut:
    """An account's acceptances and arbitration opt-out (kept after the account ends)."""
    account = await ctx.accounts.get(account_id)
    record = await ctx.policy.record(account.id, by=principal)
    return AgreementRecordOut(
        account_id=account.id,
        acceptances=[acceptance_out(a) for a in await ctx.policy.acceptances(account.id)],
        arbitration_opt_out_at=record.opted_out_at,
    )


@router.get("/accounts/{account_id}/sessions", operation_id="listAccountSessions")
async def account_sessions(account_id: Id, principal: Operator, ctx: Ctx) -> list[SessionOut]:
    """An account's sessions (credentials), newest first; 403 ``data_restricted`` while the person's restriction
    stands (revoking still works)."""
    await ctx.privacy.check_unrestricted(account_id)
    return [session_out(s) for s in await ctx.accounts.sessions(account_id, by=principal)]


@router.post(
    "/accounts/{account_id}/sessions/{session_id}/revoke", status_code=204, operation_id="revokeAccountSession"
)
async def revoke_session(
    account_id: Id, session_id: Id, body: DisableRequest, principal: Operator, ctx: Ctx
) -> Response:
    """Disable one credential (session) of an account, effective on its next request."""
    await ctx.accounts.revoke_session(account_id, session_id, body.reason, by=principal)
    return Response(status_code=204)


@public_router.get("/app/requirements", operation_id="getAppRequirements")
async def app_requirements(ctx: Ctx) -> AppRequirementsOut:
    """The minimum app version (no sign-in needed): apps below it must be updated."""
    minimum = ctx.policy.min_app_version
    return AppRequirementsOut(minimum_app_version=None if minimum is None else str(minimum))
