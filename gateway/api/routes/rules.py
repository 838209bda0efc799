"""The operator's side of the service's rules: lessor contracts, agreement versions, the minimum app version,
agreement records and single credentials; and the public app requirements."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from ...errors import NotFound
from ...policy import Contract, InternetProvider, contract_lapse
from ..context import ApiContext, Ctx, Operator
from ..problems import CONFLICT_RESPONSES, PROBLEM_RESPONSES
from ..schemas import DisableRequest, SessionOut
from ..schemas_policy import (
    AgreementRecordOut,
    AgreementVersionOut,
    AppRequirementsOut,
    AppVersionRequest,
    ContractOut,
    ContractRequest,
    InternetProviderBody,
    PublishAgreementRequest,
)
from ..views import session_out
from .agreement import acceptance_out

__all__ = ["contract_out", "public_router", "router"]

router = APIRouter(prefix="/operator", tags=["operator"], responses=PROBLEM_RESPONSES)
public_router = APIRouter(tags=["app"])

Id = Annotated[str, Path(min_length=1, max_length=128)]


def contract_out(ctx: ApiContext, contract: Contract) -> ContractOut:
    """A contract with whether it is in force now."""
    lapse = contract_lapse(contract, ctx.gateway.clock.now())
    return ContractOut(
        property_id=contract.property_id,
        status=contract.status,
        status_reason=contract.status_reason,
        starts_at=contract.starts_at,
        ends_at=contract.ends_at,
        offers_service=contract.offers_service,
        internet=InternetProviderBody(
            provided_by=contract.internet.provided_by, name=contract.internet.name, contact=contract.internet.contact
        ),
        plan=contract.plan,
        updated_at=contract.updated_at,
        in_force=lapse is None,
        lapse=lapse,
    )


def contract_of(ctx: ApiContext, property_id: str) -> Contract:
    """The property's contract; 404 ``contract_not_found`` if none was recorded."""
    contract = ctx.policy.contract(ctx.building.property(property_id).id)
    if contract is None:
        raise NotFound(f"no contract recorded for {property_id!r}", code="contract_not_found")
    return contract


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
        )
    )
    await ctx.audit.record(
        principal, "contract.set", property_id=property_id, target=property_id, detail=body.model_dump(mode="json")
    )
    # A lowered app-device limit applies to who is signed in now, not only to the next sign-in (rule 3).
    limit = contract.plan.app_devices_per_account
    for account, session in await ctx.accounts.trim_sessions(property_id, limit):
        await ctx.audit.record(
            principal,
            "session.ended_by_plan",
            property_id=property_id,
            unit_id=account.unit_id,
            target=session.id,
            detail={"account": account.id, "client": session.client, "app_devices_per_account": limit},
        )
    return contract_out(ctx, contract)


@router.get("/properties/{property_id}/contract", operation_id="getContract")
async def get_contract(property_id: Id, principal: Operator, ctx: Ctx) -> ContractOut:
    """A property's contract and whether it is in force."""
    return contract_out(ctx, contract_of(ctx, property_id))


@router.post("/agreements", status_code=201, operation_id="publishAgreement", responses=CONFLICT_RESPONSES)
async def publish_agreement(body: PublishAgreementRequest, principal: Operator, ctx: Ctx) -> AgreementVersionOut:
    """Publish a new version of the end-user agreement; from its effective time on, residents must accept it
    before controlling anything (``agreement_not_accepted``)."""
    version = await ctx.policy.publish(body.version, body.text, body.effective_at, principal.actor)
    await ctx.audit.record(
        principal,
        "agreement.publish",
        target=version.version,
        detail={"effective_at": version.effective_at.isoformat(), "characters": len(version.text)},
    )
    return AgreementVersionOut.model_validate(version)


@router.get("/agreements", operation_id="listAgreements")
async def list_agreements(principal: Operator, ctx: Ctx) -> list[AgreementVersionOut]:
    """Every published version, in the order they take effect."""
    return [AgreementVersionOut.model_validate(v) for v in ctx.policy.versions()]


@router.put("/app-version", operation_id="setMinimumAppVersion")
async def set_app_version(body: AppVersionRequest, principal: Operator, ctx: Ctx) -> AppRequirementsOut:
    """Set the minimum app version: older apps get ``app_update_required`` on their next request."""
    minimum = await ctx.policy.set_min_app_version(body.minimum_app_version, principal.actor)
    await ctx.audit.record(principal, "app.minimum_version", detail={"minimum_app_version": body.minimum_app_version})
    return AppRequirementsOut(minimum_app_version=None if minimum is None else str(minimum))


@router.get("/accounts/{account_id}/agreement", operation_id="getAgreementRecord")
async def agreement_record(account_id: Id, principal: Operator, ctx: Ctx) -> AgreementRecordOut:
    """An account's acceptances and arbitration opt-out (kept after the account ends)."""
    account = await ctx.accounts.get(account_id)
    record = await ctx.policy.record(account.id)
    await ctx.audit.record(principal, "agreement.read_record", target=account.id)
    return AgreementRecordOut(
        account_id=account.id,
        acceptances=[acceptance_out(a) for a in await ctx.policy.acceptances(account.id)],
        arbitration_opt_out_at=record.opted_out_at,
    )


@router.get("/accounts/{account_id}/sessions", operation_id="listAccountSessions")
async def account_sessions(account_id: Id, principal: Operator, ctx: Ctx) -> list[SessionOut]:
    """An account's sessions (credentials), newest first."""
    account = await ctx.accounts.get(account_id)
    await ctx.audit.record(principal, "account.read_sessions", target=account.id)
    return [session_out(s) for s in await ctx.accounts.sessions(account.id)]


@router.post(
    "/accounts/{account_id}/sessions/{session_id}/revoke", status_code=204, operation_id="revokeAccountSession"
)
async def revoke_session(
    account_id: Id, session_id: Id, body: DisableRequest, principal: Operator, ctx: Ctx
) -> Response:
    """Disable one credential (session) of an account, effective on its next request."""
    account = await ctx.accounts.get(account_id)
    await ctx.accounts.end_session(account.id, session_id, f"revoked by the operator: {body.reason}")
    await ctx.audit.record(
        principal, "session.revoke", property_id=account.property_id, target=session_id, detail={"reason": body.reason}
    )
    return Response(status_code=204)


@public_router.get("/app/requirements", operation_id="getAppRequirements")
async def app_requirements(ctx: Ctx) -> AppRequirementsOut:
    """The minimum app version (no sign-in needed): apps below it must be updated."""
    minimum = ctx.policy.min_app_version
    return AppRequirementsOut(minimum_app_version=None if minimum is None else str(minimum))
