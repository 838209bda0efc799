"""Request and response bodies of the service's rules: contracts, the agreement, app versions, service status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, Field, StringConstraints

from ..policy import ConnectionProvider, ContractStatus, Plan
from .schemas import Reason, Request, Response, Text

__all__ = [
    "AcceptRequest",
    "AcceptanceOut",
    "AgreementRecordOut",
    "AgreementVersionOut",
    "AppRequirementsOut",
    "AppVersionRequest",
    "ConsoleAcceptanceOut",
    "ConsoleAgreementsOut",
    "ConsoleOut",
    "ConsoleResidentOut",
    "ConsoleUnitOut",
    "ContractOut",
    "ContractRequest",
    "InternetProviderBody",
    "MyAgreementOut",
    "OptOutOut",
    "PublishAgreementRequest",
    "RefusalOut",
    "ResidentAcceptanceOut",
    "ServiceStatusOut",
    "UnitAcceptancesOut",
]

MAX_AGREEMENT_TEXT = 200_000
"""Characters of agreement text; its endpoint takes bodies up to AGREEMENT_BODY_BYTES."""
AGREEMENT_BODY_BYTES = 1024 * 1024

AppVersionText = Annotated[
    str, StringConstraints(min_length=1, max_length=32, pattern=r"^[0-9]{1,6}(\.[0-9]{1,6}){0,3}$")
]
VersionLabel = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class InternetProviderBody(Request):
    """Who provides the internet connection, and how to reach their support (failure reports go there)."""

    provided_by: ConnectionProvider
    name: Text | None = None
    contact: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)] | None = None


class ContractRequest(Request):
    """The lessor's contract for a property, as the operator records it (replaces the previous record)."""

    status: ContractStatus = ContractStatus.ACTIVE
    status_reason: Reason | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = Field(default=None, description="When it passes the service ends by itself")
    offers_service: bool = Field(default=True, description="Whether the lessor still offers the service to residents")
    internet: InternetProviderBody
    plan: Plan = Plan()


class ContractOut(Response):
    """A property's contract and whether it is in force now (``lapse`` says why not)."""

    property_id: str
    status: ContractStatus
    status_reason: str | None
    starts_at: datetime
    ends_at: datetime | None
    offers_service: bool
    internet: InternetProviderBody
    plan: Plan
    updated_at: datetime | None
    in_force: bool
    lapse: str | None = Field(
        description="no_contract, not_started, ended, suspended, terminated or service_withdrawn; null in force"
    )


class PublishAgreementRequest(Request):
    """A new version of the end-user agreement."""

    version: VersionLabel
    text: Annotated[str, Field(min_length=1, max_length=MAX_AGREEMENT_TEXT)]
    effective_at: AwareDatetime | None = Field(default=None, description="Default: now")


class AgreementVersionOut(Response):
    """A published version."""

    version: str
    effective_at: datetime
    published_at: datetime | None
    text: str


class AcceptRequest(Request):
    """Accept a version of the agreement; stating you are 18 or older is required."""

    version: VersionLabel
    age_confirmed: bool = Field(description="I am 18 or older (must be true)")


class AcceptanceOut(Response):
    """A recorded acceptance."""

    version: str
    accepted_at: datetime
    client: str | None


class MyAgreementOut(Response):
    """The agreement as the resident sees it: what is in effect, what they accepted, the arbitration opt-out."""

    current: AgreementVersionOut | None
    upcoming: list[AgreementVersionOut]
    accepted_current: bool
    acceptances: list[AcceptanceOut]
    arbitration_opt_out_at: datetime | None
    opt_out_deadline: datetime | None = Field(description="30 days after the first acceptance")
    may_opt_out: bool


class OptOutOut(Response):
    """The arbitration opt-out on record (it carries over to every later version)."""

    recorded_at: datetime


class AgreementRecordOut(Response):
    """An account's agreement record (kept after the account ends)."""

    account_id: str
    acceptances: list[AcceptanceOut]
    arbitration_opt_out_at: datetime | None


class RefusalOut(Response):
    """Why control is refused: the link of the chain, its stable code, and details to act on."""

    link: str
    code: str
    detail: str
    extra: dict[str, Any]


class ServiceStatusOut(Response):
    """Whether the resident can control their devices now, and every link's state."""

    can_control: bool
    refusal: RefusalOut | None
    contract_in_force: bool
    contract_lapse: str | None
    contract_ends_at: datetime | None
    agreement_version: str | None
    agreement_accepted: bool
    minimum_app_version: str | None


class AppRequirementsOut(Response):
    """What an app must be to use this gateway."""

    minimum_app_version: str | None


class AppVersionRequest(Request):
    """Set the minimum app version (null: none)."""

    minimum_app_version: AppVersionText | None


class ResidentAcceptanceOut(Response):
    """A resident and the latest agreement version they accepted."""

    account_id: str
    username: str
    display_name: str | None
    status: str
    accepted_version: str | None
    accepted_at: datetime | None
    up_to_date: bool


class UnitAcceptancesOut(Response):
    """One unit's residents and their acceptances."""

    unit_id: str
    label: str
    residents: list[ResidentAcceptanceOut]


class ConsoleAgreementsOut(Response):
    """Per unit, who has accepted which version of the agreement (manager console)."""

    property_id: str
    current_version: str | None
    units: list[UnitAcceptancesOut]


class ConsoleAcceptanceOut(Response):
    """One acceptance as the console shows it: which version, and when."""

    version: str
    accepted_at: datetime


class ConsoleResidentOut(ResidentAcceptanceOut):
    """A resident, every version they accepted and when, and their arbitration opt-out."""

    acceptances: list[ConsoleAcceptanceOut] = Field(description="Oldest first")
    arbitration_opt_out_at: datetime | None
    opt_out_deadline: datetime | None = Field(description="30 days after the first acceptance")


class ConsoleUnitOut(Response):
    """One unit and its current residents."""

    unit_id: str
    label: str
    residents: list[ConsoleResidentOut]


class ConsoleOut(Response):
    """The property manager console in one call: the lessor's contract and, per unit, the residents' agreement."""

    property_id: str
    property_name: str
    at: datetime = Field(description="When this view was taken (the gateway's clock)")
    service_in_force: bool
    lapse: str | None = Field(
        description="Why the service is not in force: no_contract, not_started, ended, suspended, terminated or "
        "service_withdrawn; null while it is"
    )
    contract: ContractOut | None = Field(description="Null until the operator records the lessor's contract")
    current_version: str | None = Field(description="The agreement version in effect")
    current_effective_at: datetime | None
    units: list[ConsoleUnitOut]
