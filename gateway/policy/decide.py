"""The control decision: one pure function of the whole chain of permissions and the time.

Links are checked in this order, and the first that fails is reported: who is asking (account, session, app
version), what they aim at (a device of their own unit), then the chain of permission from the top (the lessor's
contract, the plan's entitlements, the agreement). A disabled account therefore never learns the state of the
contract, and a resident is never asked to accept an agreement while the service itself has ended.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..accounts import Account, AccountStatus, Role, Session
from .models import (
    AgreementRecord,
    AgreementState,
    Allowed,
    AppVersionCheck,
    Contract,
    ContractStatus,
    ControlCommand,
    ControlRequest,
    ControlTarget,
    Decision,
    Link,
    Plan,
    Refusal,
    RefusalCode,
)

__all__ = [
    "OPT_OUT_WINDOW",
    "account_refusal",
    "agreement_refusal",
    "app_refusal",
    "contract_lapse",
    "contract_refusal",
    "decide",
    "device_refusal",
    "opt_out_deadline",
    "plan_refusal",
    "service_refusal",
    "session_refusal",
]

OPT_OUT_WINDOW = timedelta(days=30)
"""The arbitration opt-out may be recorded until this long after the account's first acceptance (inclusive)."""


def decide(request: ControlRequest, now: datetime) -> Decision:
    """Allowed when every link holds at ``now``; otherwise the first failing link's Refusal."""
    refusal = (
        account_refusal(request.account)
        or session_refusal(request.session, request.account, now)
        or app_refusal(request.app)
        or device_refusal(request.device, request.account)
        or contract_refusal(request.contract, now)
        or plan_refusal(request.plan, request.command)
        or agreement_refusal(request.agreement, now)
    )
    return refusal or Allowed(request, now)


def service_refusal(
    account: Account, session: Session | None, app: AppVersionCheck, contract: Contract | None,
    agreement: AgreementState, now: datetime,
) -> Refusal | None:  # fmt: skip
    """Every link that does not depend on the device or the command (what an app shows before any command)."""
    return (
        account_refusal(account)
        or session_refusal(session, account, now)
        or app_refusal(app)
        or contract_refusal(contract, now)
        or agreement_refusal(agreement, now)
    )


def account_refusal(account: Account) -> Refusal | None:
    """Only an active resident account controls devices."""
    if account.status is AccountStatus.SUSPENDED:
        reason = f": {account.status_reason}" if account.status_reason else ""
        return Refusal(Link.ACCOUNT, RefusalCode.ACCOUNT_DISABLED, f"the account is disabled{reason}")
    if account.status is AccountStatus.TERMINATED:
        return Refusal(Link.ACCOUNT, RefusalCode.ACCOUNT_TERMINATED, "the account has ended and cannot be used again")
    if account.status is not AccountStatus.ACTIVE:
        return Refusal(Link.ACCOUNT, RefusalCode.ACCOUNT_NOT_ACTIVE, "the account is not activated yet")
    if account.role is not Role.RESIDENT or account.unit_id is None:
        return Refusal(Link.ACCOUNT, RefusalCode.NOT_A_RESIDENT, "only a unit's resident controls its devices")
    return None


def session_refusal(session: Session | None, account: Account, now: datetime) -> Refusal | None:
    """The app session (when there is one) must be the account's, not ended and not expired."""
    if session is None:
        return None
    if session.account_id != account.id or session.revoked_at is not None:
        return Refusal(Link.SESSION, RefusalCode.SESSION_REVOKED, "this session has ended; sign in again")
    if now >= session.expires_at:
        return Refusal(Link.SESSION, RefusalCode.SESSION_EXPIRED, "the session expired; sign in again")
    return None


def app_refusal(app: AppVersionCheck) -> Refusal | None:
    """An app older than the operator's minimum must be updated; one that states no version counts as older."""
    if app.minimum is None or (app.reported is not None and app.reported >= app.minimum):
        return None
    yours = "no version" if app.reported is None else f"version {app.reported}"
    return Refusal(
        Link.APP,
        RefusalCode.APP_UPDATE_REQUIRED,
        f"update the app: it sent {yours}, the minimum is {app.minimum}",
        {"minimum_version": str(app.minimum), "your_version": None if app.reported is None else str(app.reported)},
    )


def device_refusal(device: ControlTarget, account: Account) -> Refusal | None:
    """A resident controls the devices bound to their own unit only."""
    if device.unit_id is None or device.unit_id != account.unit_id:
        return Refusal(Link.DEVICE, RefusalCode.DEVICE_NOT_IN_UNIT, f"no device {device.device_id!r} in your unit")
    return None


def contract_lapse(contract: Contract | None, now: datetime) -> str | None:
    """Why the contract is not in force at ``now`` (a stable reason), or None while it is."""
    if contract is None:
        return "no_contract"
    if contract.status is ContractStatus.SUSPENDED:
        return "suspended"
    if contract.status is ContractStatus.TERMINATED:
        return "terminated"
    if now < contract.starts_at:
        return "not_started"
    if contract.ends_at is not None and now >= contract.ends_at:
        return "ended"
    if not contract.offers_service:
        return "service_withdrawn"
    return None


_LAPSES = {
    "no_contract": "the building has no contract for this service",
    "suspended": "the building's contract for this service is suspended",
    "terminated": "the building's contract for this service was terminated",
    "not_started": "the building's contract for this service has not started yet",
    "ended": "the building's contract for this service has ended",
    "service_withdrawn": "the building no longer offers this service to residents",
}


def contract_refusal(contract: Contract | None, now: datetime) -> Refusal | None:
    """The lessor's contract must be active, started, not ended, and the lessor must still offer the service."""
    lapse = contract_lapse(contract, now)
    if lapse is None:
        return None
    extra: dict[str, object] = {"reason": lapse}
    if contract is not None and lapse in ("ended", "not_started"):
        extra["starts_at"] = contract.starts_at.isoformat()
        extra["ends_at"] = None if contract.ends_at is None else contract.ends_at.isoformat()
    detail = _LAPSES[lapse] + "; devices stay as they are"
    return Refusal(Link.CONTRACT, RefusalCode.LESSOR_CONTRACT_INACTIVE, detail, extra)


def plan_refusal(plan: Plan | None, command: ControlCommand) -> Refusal | None:
    """The plan must cover the kind of device entity the command is for."""
    if plan is None or command.kind in plan.device_kinds:
        return None
    return Refusal(
        Link.PLAN,
        RefusalCode.PLAN_EXCLUDES_DEVICE_KIND,
        f"the building's plan does not cover {command.kind} devices",
        {"kind": str(command.kind)},
    )


def agreement_refusal(agreement: AgreementState, now: datetime) -> Refusal | None:
    """The version in effect must have been accepted (with the age statement, which acceptance requires)."""
    current = agreement.current(now)
    if current is None:
        return Refusal(
            Link.AGREEMENT, RefusalCode.AGREEMENT_UNAVAILABLE, "no version of the end-user agreement is in effect yet"
        )
    if current.version in agreement.record.accepted:
        return None
    ordered = agreement.ordered()
    superseded = ordered[: ordered.index(current)]
    which = "the new version of the" if any(v.version in agreement.record.accepted for v in superseded) else "the"
    return Refusal(
        Link.AGREEMENT,
        RefusalCode.AGREEMENT_NOT_ACCEPTED,
        f"accept {which} end-user agreement ({current.version}) first, stating you are 18 or older",
        {"version": current.version},
    )


def opt_out_deadline(record: AgreementRecord) -> datetime | None:
    """The last moment the arbitration opt-out may be recorded (None before any acceptance)."""
    return None if record.first_accepted_at is None else record.first_accepted_at + OPT_OUT_WINDOW
