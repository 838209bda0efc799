"""The chain of permissions a device command needs: contract, plan, agreement, account, session, app version."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from devices import DeviceKind

from ..accounts import Account, Session
from ..core.typed_command import TypedCommand

__all__ = [
    "AgreementRecord",
    "AgreementState",
    "AgreementVersion",
    "Allowed",
    "AppVersion",
    "AppVersionCheck",
    "ConnectionProvider",
    "Contract",
    "ContractLapse",
    "ContractStatus",
    "ControlCommand",
    "ControlRequest",
    "ControlTarget",
    "Decision",
    "InternetProvider",
    "Link",
    "Plan",
    "Refusal",
    "RefusalCode",
    "SecondLogin",
]


class ContractStatus(StrEnum):
    """The lessor's contract as the operator records it."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class ConnectionProvider(StrEnum):
    """Who provides the building's internet connection (failure reports go to them)."""

    LESSOR = "lessor"
    RESIDENT = "resident"


class SecondLogin(StrEnum):
    """What a sign-in from one app device too many does."""

    REFUSE = "refuse"  # refused with plan_limit_app_devices; the resident may end a lost device's session
    DISPLACE = "displace"  # the oldest session ends (session_displaced) and the new one opens


class Plan(BaseModel):
    """The plan's entitlements, per unit and per account."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device_kinds: frozenset[DeviceKind] = Field(
        default=frozenset(DeviceKind), description="Device kinds the plan covers (a device's main kind)"
    )
    devices_per_unit: Annotated[int, Field(ge=0, le=1000)] = 20
    accounts_per_unit: Annotated[int, Field(ge=0, le=100)] = 4
    app_devices_per_account: Annotated[int, Field(ge=1, le=20)] = 1
    second_login: SecondLogin = SecondLogin.REFUSE


@dataclass(frozen=True, slots=True)
class InternetProvider:
    """Who provides the connection, and how to reach their support."""

    provided_by: ConnectionProvider
    name: str | None = None
    contact: str | None = None


@dataclass(frozen=True, slots=True)
class Contract:
    """The lessor's contract for one property: the service exists only while it is in force."""

    property_id: str
    status: ContractStatus
    starts_at: datetime
    ends_at: datetime | None  # passing it ends the service by itself
    offers_service: bool  # the lessor still offers the service to residents
    internet: InternetProvider
    plan: Plan
    status_reason: str | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None


@dataclass(frozen=True, slots=True)
class AgreementVersion:
    """One published version of the end-user agreement."""

    version: str
    effective_at: datetime
    text: str = ""
    published_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AgreementRecord:
    """What one account has accepted, and its arbitration opt-out (which carries over to later versions)."""

    accepted: Mapping[str, datetime] = field(default_factory=dict)  # version -> first acceptance of it
    first_accepted_at: datetime | None = None
    opted_out_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AgreementState:
    """Every published version (any order) and the account's record."""

    versions: tuple[AgreementVersion, ...]
    record: AgreementRecord

    def ordered(self) -> list[AgreementVersion]:
        """Versions in the order they take effect; of two taking effect together, the later published one last."""
        return [v for _, v in sorted(enumerate(self.versions), key=lambda iv: (iv[1].effective_at, iv[0]))]

    def current(self, now: datetime) -> AgreementVersion | None:
        """The version in effect at ``now``: the last in effect order whose effective time has come."""
        due = [v for v in self.ordered() if v.effective_at <= now]
        return due[-1] if due else None

    def not_superseded(self, now: datetime) -> list[AgreementVersion]:
        """The version in effect and every later one: the versions a resident may accept at ``now``."""
        ordered = self.ordered()
        current = self.current(now)
        return ordered if current is None else ordered[ordered.index(current) :]


_APP_VERSION = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6}){0,3}")  # ASCII digits only, matched in full


@dataclass(frozen=True, slots=True, order=True)
class AppVersion:
    """A dotted app version such as ``2.4`` or ``2.4.1``; compared part by part, missing parts are zero."""

    parts: tuple[int, int, int, int]
    text: str = field(compare=False)

    @classmethod
    def parse(cls, text: str) -> AppVersion:
        """Parse ``1`` to ``1.2.3.4``; ValueError otherwise."""
        if not _APP_VERSION.fullmatch(text):
            raise ValueError("an app version is 1 to 4 dot-separated numbers, such as 2.4.1")
        numbers = [int(p) for p in text.split(".")] + [0, 0, 0]
        return cls((numbers[0], numbers[1], numbers[2], numbers[3]), text)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class AppVersionCheck:
    """The operator's minimum app version and the version the client stated (None: it stated none)."""

    minimum: AppVersion | None = None
    reported: AppVersion | None = None


@dataclass(frozen=True, slots=True)
class ControlTarget:
    """The device a command is for, and the unit it is bound to now (None: unbound)."""

    device_id: str
    unit_id: str | None


@dataclass(frozen=True, slots=True)
class ControlCommand:
    """What is asked of the device: the command typed for its entity and checked against the device, exactly as
    it goes out if the decision allows it."""

    typed: TypedCommand

    @property
    def entity_id(self) -> str:
        """The entity the command is for."""
        return self.typed.entity.id

    @property
    def kind(self) -> DeviceKind:
        """The entity's kind (what the plan covers)."""
        return self.typed.entity.kind


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """Everything one control decision depends on (the clock is passed beside it)."""

    contract: Contract | None
    plan: Plan | None
    agreement: AgreementState
    account: Account
    session: Session | None  # None: not from an app (e.g. a schedule acting for the account)
    app: AppVersionCheck
    device: ControlTarget
    command: ControlCommand


class Link(StrEnum):
    """Which link of the chain a refusal is about."""

    ACCOUNT = "account"
    SESSION = "session"
    APP = "app"
    DEVICE = "device"
    CONTRACT = "contract"
    PLAN = "plan"
    AGREEMENT = "agreement"


class RefusalCode(StrEnum):
    """Stable codes of every refusal the service's rules make: ``decide``, the plan's limits, the opt-out window
    and the command runner (each is listed in the API docs)."""

    ACCOUNT_DISABLED = "account_disabled"
    ACCOUNT_TERMINATED = "account_terminated"
    ACCOUNT_NOT_ACTIVE = "account_not_active"
    NOT_A_RESIDENT = "role_forbidden"
    SESSION_REVOKED = "session_revoked"
    SESSION_EXPIRED = "session_expired"
    APP_UPDATE_REQUIRED = "app_update_required"
    DEVICE_NOT_IN_UNIT = "device_not_in_unit"
    FIRMWARE_UPDATE_STAFF_ONLY = "firmware_update_staff_only"
    LESSOR_CONTRACT_INACTIVE = "lessor_contract_inactive"
    PLAN_EXCLUDES_DEVICE_KIND = "plan_excludes_device_kind"
    AGREEMENT_UNAVAILABLE = "agreement_unavailable"
    AGREEMENT_NOT_ACCEPTED = "agreement_not_accepted"
    OPT_OUT_WINDOW_CLOSED = "opt_out_window_closed"
    PLAN_LIMIT_DEVICE_KINDS = "plan_limit_device_kinds"
    PLAN_LIMIT_DEVICES_PER_UNIT = "plan_limit_devices_per_unit"
    PLAN_LIMIT_ACCOUNTS_PER_UNIT = "plan_limit_accounts_per_unit"
    PLAN_LIMIT_APP_DEVICES = "plan_limit_app_devices"  # raised by the accounts layer, which cannot import this
    LESSOR_CONTRACT_MISSING = "lessor_contract_missing"
    DECISION_STALE = "decision_stale"
    DECISION_SPENT = "decision_spent"


class ContractLapse(StrEnum):
    """Why a lessor's contract is not in force (``reason`` of ``lessor_contract_inactive``)."""

    NO_CONTRACT = "no_contract"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"
    NOT_STARTED = "not_started"
    ENDED = "ended"
    SERVICE_WITHDRAWN = "service_withdrawn"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused request: the failed link, its stable code, a sentence for people, and details for the app."""

    link: Link
    code: RefusalCode
    detail: str
    extra: Mapping[str, Any] = field(default_factory=dict)


_DECIDE_KEY = object()  # held by ``decide`` only, so that no other code makes an Allowed by accident


class Allowed:
    """Every link held at ``at``: exactly ``request.command`` may go out, once (made by ``decide`` only)."""

    __slots__ = ("_at", "_request", "_spent")

    def __init__(self, request: ControlRequest, at: datetime, *, key: object) -> None:
        if key is not _DECIDE_KEY:
            raise TypeError("an Allowed is made by policy.decide() only")
        self._request = request
        self._at = at
        self._spent = False

    @property
    def request(self) -> ControlRequest:
        """What was decided: the account, the device, the command."""
        return self._request

    @property
    def at(self) -> datetime:
        """When it was decided."""
        return self._at

    def spend(self) -> bool:
        """Mark the decision used by the command that goes out on it; False if one already did."""
        if self._spent:
            return False
        self._spent = True
        return True

    def __repr__(self) -> str:
        return f"Allowed({self._request.command.entity_id!r}, at={self._at.isoformat()}, spent={self._spent})"


Decision = Allowed | Refusal
