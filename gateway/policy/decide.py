"""The control decision: one pure function of the whole chain of permissions and the time.

Links are checked in this order, and the first that fails is reported: who is asking (account, session, app
version), what they aim at (a device of their own unit), then the chain of permission from the top (the lessor's
contract, the plan's entitlements, the agreement). A disabled account therefore never learns the state of the
contract, and a resident is never asked to accept an agreement while the service itself has ended.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from devices import DeviceKind

from ..accounts import Account, AccountStatus, Role, Session
from .models import (
    _DECIDE_KEY,
    AgreementRecord,
    AgreementState,
    Allowed,
    AppVersionCheck,
    Contract,
    ContractLapse,
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
    "admission_refusal",
    "agreement_refusal",
    "app_refusal",
    "binding_refusal",
    "contract_lapse",
    "contract_refusal",
    "decide",
    "device_refusal",
    "opt_out_deadline",
    "opt_out_refusal",
    "plan_refusal",
    "service_refusal",
    "session_refusal",
    "staff_command_refusal",
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
        or staff_command_refusal(request.command)
        or contract_refusal(request.contract, now)
        or plan_refusal(request.plan, request.command)
        or agreement_refusal(request.agreement, now)
    )
    return refusal or Allowed(request, now, key=_DECIDE_KEY)


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
        return Refusal(
            Link.ACCOUNT,
            RefusalCode.ACCOUNT_DISABLED,
            f"the account is disabled{reason}",
            {"reason": account.status_reason},
        )
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


def staff_command_refusal(command: ControlCommand) -> Refusal | None:
    """A firmware install is staff's, in a staged rollout (gateway.firmware), never a resident's command."""
    if command.kind is DeviceKind.FIRMWARE_UPDATE:
        return Refusal(
            Link.DEVICE, RefusalCode.FIRMWARE_UPDATE_STAFF_ONLY, "firmware updates are started by staff, in stages"
        )
    return None


def contract_lapse(contract: Contract | None, now: datetime) -> ContractLapse | None:
    """Why the contract is not in force at ``now`` (a stable reason), or None while it is."""
    if contract is None:
        return ContractLapse.NO_CONTRACT
    if contract.status is ContractStatus.SUSPENDED:
        return ContractLapse.SUSPENDED
    if contract.status is ContractStatus.TERMINATED:
        return ContractLapse.TERMINATED
    if now < contract.starts_at:
        return ContractLapse.NOT_STARTED
    if contract.ends_at is not None and now >= contract.ends_at:
        return ContractLapse.ENDED
    if not contract.offers_service:
        return ContractLapse.SERVICE_WITHDRAWN
    return None


_LAPSES = {
    ContractLapse.NO_CONTRACT: "the building has no contract for this service",
    ContractLapse.SUSPENDED: "the building's contract for this service is suspended",
    ContractLapse.TERMINATED: "the building's contract for this service was terminated",
    ContractLapse.NOT_STARTED: "the building's contract for this service has not started yet",
    ContractLapse.ENDED: "the building's contract for this service has ended",
    ContractLapse.SERVICE_WITHDRAWN: "the building no longer offers this service to residents",
}


def contract_refusal(contract: Contract | None, now: datetime) -> Refusal | None:
    """The lessor's contract must be active, started, not ended, and the lessor must still offer the service."""
    lapse = contract_lapse(contract, now)
    if lapse is None:
        return None
    extra: dict[str, object] = {"reason": str(lapse)}
    if contract is not None and lapse in (ContractLapse.ENDED, ContractLapse.NOT_STARTED):
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


def opt_out_refusal(record: AgreementRecord, now: datetime) -> Refusal | None:
    """The arbitration opt-out may be recorded up to and including its deadline, never after (nor before any
    acceptance, which the caller answers on its own: there is no deadline yet)."""
    deadline = opt_out_deadline(record)
    if deadline is None or now <= deadline:
        return None
    return Refusal(
        Link.AGREEMENT,
        RefusalCode.OPT_OUT_WINDOW_CLOSED,
        f"the arbitration opt-out had to be made by {deadline.isoformat()} (30 days after first acceptance)",
        {"deadline": deadline.isoformat()},
    )


def binding_refusal(plan: Plan, kind: DeviceKind | None, bound: int, rebinding: bool) -> Refusal | None:
    """A device joins a unit only if the plan covers its main kind and the unit (holding ``bound`` devices, this
    one among them when ``rebinding``) has room for it."""
    if kind is not None and kind not in plan.device_kinds:
        return Refusal(
            Link.PLAN,
            RefusalCode.PLAN_LIMIT_DEVICE_KINDS,
            f"the plan does not cover {kind} devices",
            {"kind": str(kind), "allowed": sorted(str(k) for k in plan.device_kinds)},
        )
    if not rebinding and bound >= plan.devices_per_unit:
        return Refusal(
            Link.PLAN,
            RefusalCode.PLAN_LIMIT_DEVICES_PER_UNIT,
            f"the plan allows {plan.devices_per_unit} devices per unit",
            {"limit": plan.devices_per_unit},
        )
    return None


def admission_refusal(plan: Plan, residents: int) -> Refusal | None:
    """A unit holding ``residents`` resident accounts takes one more only within the plan."""
    if residents < plan.accounts_per_unit:
        return None
    return Refusal(
        Link.PLAN,
        RefusalCode.PLAN_LIMIT_ACCOUNTS_PER_UNIT,
        f"the plan allows {plan.accounts_per_unit} resident accounts per unit",
        {"limit": plan.accounts_per_unit},
    )
