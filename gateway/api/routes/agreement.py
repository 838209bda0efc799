"""/me/agreement and /me/service: the resident's side of the service's rules (the agreement, the arbitration
opt-out, and why control is refused)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ...accounts import Principal
from ...policy import contract_lapse, opt_out_deadline, opt_out_refusal, service_refusal
from ..deps import AppHeader, Ctx, Resident, resident_unit
from ..problems import CONFLICT_RESPONSES, PROBLEM_RESPONSES
from ..schemas_policy import (
    AcceptRequest,
    AgreementVersionOut,
    MyAgreementOut,
    OptOutOut,
    RefusalOut,
    ServiceStatusOut,
)
from ..views import acceptance_out, client_of

__all__ = ["router"]

router = APIRouter(prefix="/me", tags=["agreement"], responses=PROBLEM_RESPONSES)


@router.get("/agreement", operation_id="getMyAgreement")
async def my_agreement(principal: Resident, ctx: Ctx) -> MyAgreementOut:
    """The agreement in effect (with its text), any later published version, and what I have accepted."""
    return await _agreement_view(principal, ctx)


@router.post("/agreement/accept", operation_id="acceptAgreement", responses=CONFLICT_RESPONSES)
async def accept(body: AcceptRequest, principal: Resident, ctx: Ctx, request: Request) -> MyAgreementOut:
    """Accept the version in effect (or an already published later one), stating I am 18 or older.

    Recorded with the version, the time and the client; accepting the same version again changes nothing.
    """
    await ctx.policy.accept(principal, body.version, body.age_confirmed, client_of(principal, request))
    return await _agreement_view(principal, ctx)


@router.post(
    "/agreement/arbitration-opt-out",
    status_code=201,
    operation_id="optOutOfArbitration",
    responses={
        200: {"model": OptOutOut, "description": "Already on record (nothing changed)"},
        409: CONFLICT_RESPONSES[409] | {"description": "agreement_not_accepted"},
        403: PROBLEM_RESPONSES[403] | {"description": "opt_out_window_closed, with the deadline"},
    },
)
async def opt_out(principal: Resident, ctx: Ctx, request: Request, response: Response) -> OptOutOut:
    """Opt out of the arbitration clause: allowed until 30 days after my first acceptance; it carries over to
    every later version of the agreement."""
    recorded, new = await ctx.policy.opt_out(principal, client_of(principal, request))
    if not new:
        response.status_code = 200
    return OptOutOut(recorded_at=recorded)


@router.get("/service", operation_id="getMyServiceStatus")
async def service_status(principal: Resident, app: AppHeader, ctx: Ctx) -> ServiceStatusOut:
    """Whether I can control my devices now; if not, which link of the chain refuses and how to put it right."""
    contract = ctx.policy.contract_of_unit(resident_unit(principal))
    now = ctx.gateway.clock.now()
    state = await ctx.policy.agreement_state(principal.account.id)
    refusal = service_refusal(principal.account, principal.session, app, contract, state, now)
    lapse = contract_lapse(contract, now)
    current = state.current(now)
    minimum = ctx.policy.min_app_version
    return ServiceStatusOut(
        can_control=refusal is None,
        refusal=None
        if refusal is None
        else RefusalOut(
            link=str(refusal.link), code=str(refusal.code), detail=refusal.detail, extra=dict(refusal.extra)
        ),
        contract_in_force=lapse is None,
        contract_lapse=lapse,
        contract_ends_at=None if contract is None else contract.ends_at,
        agreement_version=None if current is None else current.version,
        agreement_accepted=current is not None and current.version in state.record.accepted,
        minimum_app_version=None if minimum is None else str(minimum),
    )


async def _agreement_view(principal: Principal, ctx: Ctx) -> MyAgreementOut:
    now = ctx.gateway.clock.now()
    state = await ctx.policy.agreement_state(principal.account.id)
    current = state.current(now)
    upcoming = [v for v in state.versions if v.effective_at > now]
    deadline = opt_out_deadline(state.record)
    return MyAgreementOut(
        current=None if current is None else AgreementVersionOut.model_validate(current),
        upcoming=[AgreementVersionOut.model_validate(v) for v in upcoming],
        accepted_current=current is not None and current.version in state.record.accepted,
        acceptances=[acceptance_out(a) for a in await ctx.policy.acceptances(principal.account.id)],
        arbitration_opt_out_at=state.record.opted_out_at,
        opt_out_deadline=deadline,
        may_opt_out=state.record.opted_out_at is None
        and deadline is not None
        and opt_out_refusal(state.record, now) is None,
    )
