"""Request and response bodies: requests are frozen, size-capped and refuse unknown fields."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..accounts import AccountStatus, Role
from ..accounts.credentials import MIN_PASSWORD_LENGTH
from .schemas_wiring import WiringOut

__all__ = [
    "AccountOut",
    "ActivateRequest",
    "AuditEntryOut",
    "AuditPage",
    "BindRequest",
    "CommandOut",
    "CommandRequest",
    "CreatePropertyRequest",
    "CreateStaffRequest",
    "CreateUnitRequest",
    "DeviceOut",
    "DisableRequest",
    "EntityOut",
    "EventOut",
    "EventPage",
    "HealthIssueOut",
    "HealthOut",
    "LoginRequest",
    "LoginResponse",
    "MoveInRequest",
    "MoveInResponse",
    "MoveOutRequest",
    "MoveOutResponse",
    "NameRequest",
    "NewAccountOut",
    "PropertyOut",
    "SessionOut",
    "UnitDetailOut",
    "UnitOut",
    "UnlockRequest",
]

Username = Annotated[str, StringConstraints(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9._@+-]+$")]
Password = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]
Ident = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9-]*$")]


class Request(BaseModel):
    """Base of every request body."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=1024)


class Response(BaseModel):
    """Base of every response body (built from domain dataclasses by attribute)."""

    model_config = ConfigDict(frozen=True, from_attributes=True)


# --- auth ---------------------------------------------------------------------------------------


class LoginRequest(Request):
    """Sign in."""

    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Password
    client: Text | None = Field(default=None, description="The app device signing in, e.g. 'Pixel 8 (app 2.3.0)'")
    replace_session_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None,
        description="End this session of yours first (a lost or replaced app device); see plan_limit_app_devices",
    )


class ActivateRequest(Request):
    """Set the first password with the one-time activation code from the property manager or operator."""

    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    activation_code: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    # The policy is checked by the account service (422 password_too_weak); documented here for clients.
    password: Annotated[
        Password,
        Field(
            json_schema_extra={"minLength": MIN_PASSWORD_LENGTH},
            description=f"The new password: {MIN_PASSWORD_LENGTH}-256 characters, not the username",
        ),
    ]


class AccountOut(Response):
    """An account as the caller may see it."""

    id: str
    username: str
    display_name: str | None
    role: Role
    property_id: str | None
    unit_id: str | None
    status: AccountStatus
    status_reason: str | None
    created_at: datetime
    activated_at: datetime | None
    ended_at: datetime | None


class SessionOut(Response):
    """A signed-in app or console."""

    id: str
    client: str | None
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None


class LoginResponse(Response):
    """A new session: send ``token`` as ``Authorization: Bearer <token>``; it is shown only this once."""

    token: str
    token_type: Literal["Bearer"] = "Bearer"
    session: SessionOut
    idle_timeout_seconds: int
    account: AccountOut


# --- resident -------------------------------------------------------------------------------------


class UnitOut(Response):
    """A unit."""

    id: str
    property_id: str
    label: str
    created_at: datetime


class EntityOut(Response):
    """One controllable or readable part of a device, with its last known state."""

    id: str = Field(description="Use this id to send commands")
    name: str
    kind: str
    component: str
    available: bool | None
    last_seen: datetime | None
    stale: bool = Field(description="True when the shown state may not be the device's real state now")
    stale_reason: str | None = Field(
        description="held (its wiring changed since it was bound), offline, never_reported, not_heard_since_start "
        "(nothing heard since the gateway started or its broker link came back), invalid_report, expired or silent"
    )
    state: dict[str, Any] | None
    state_at: datetime | None
    state_valid: bool
    state_error: str | None
    commandable: bool


class DeviceOut(Response):
    """A physical device and its entities."""

    id: str
    name: str
    resident_name: str | None = Field(description="The name the resident gave it, if any")
    manufacturer: str | None
    model: str | None
    unit_id: str | None
    entities: list[EntityOut]
    wiring: WiringOut | None = Field(
        default=None, description="Staff only: the pinned wiring, and whether (and how) a change holds the device"
    )


class NameRequest(Request):
    """Name one of my devices (null removes the name)."""

    name: Text | None


class CommandRequest(Request):
    """A command for one entity; ``command``'s fields depend on the entity's kind.

    light: ``on``, ``brightness`` (1-255), ``color_temp_kelvin``; switch (plug, relay): ``on``; lock: ``action``
    (lock, unlock); thermostat: ``mode``, ``target_temperature``, ``fan_mode``. Types are strict: ``on`` is a JSON
    boolean (``"yes"``, ``"true"`` or ``1`` are refused, 422 ``command_invalid``), numbers are JSON numbers.
    """

    command: Annotated[dict[str, Any], Field(max_length=8)]
    wait: bool = Field(
        default=True, strict=True, description="Wait for the outcome (200), or answer 202 at once with an id to poll"
    )
    timeout: float | None = Field(default=None, gt=0, le=30, description="Seconds to wait for the device to confirm")


class CommandOut(Response):
    """A command and its outcome: pending, confirmed, timed_out, refused, rejected or failed."""

    id: str
    entity_id: str
    status: str
    reason: str | None
    detail: str | None
    command: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None


class EventOut(Response):
    """Something that happened in the unit."""

    id: int
    at: datetime
    entity_id: str | None
    type: str
    data: dict[str, Any]


class EventPage(Response):
    """A page of events, newest first; pass ``next_before`` as ``before`` for the next page."""

    events: list[EventOut]
    next_before: int | None


# --- property manager and installer ---------------------------------------------------------------


class PropertyOut(Response):
    """A property."""

    id: str
    name: str
    created_at: datetime


class CreatePropertyRequest(Request):
    """Create a property."""

    id: Ident
    name: Text


class CreateUnitRequest(Request):
    """Create a unit."""

    label: Annotated[str, StringConstraints(min_length=1, max_length=32, strip_whitespace=True)]
    id: Ident | None = None


class UnitDetailOut(Response):
    """A unit with its devices and (for managers) its residents."""

    unit: UnitOut
    devices: list[DeviceOut]
    residents: list[AccountOut] | None


class BindRequest(Request):
    """Bind a discovered device to the unit."""

    device_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class MoveInRequest(Request):
    """Create a resident's account for the unit."""

    username: Username
    display_name: Text | None = None


class NewAccountOut(Response):
    """A new account and its one-time activation code (shown only this once)."""

    account: AccountOut
    activation_code: str
    activation_expires_at: datetime


MoveInResponse = NewAccountOut


class MoveOutRequest(Request):
    """End a resident's account."""

    reason: Reason = "moved out"


class MoveOutResponse(Response):
    """What move-out did."""

    account: AccountOut
    sessions_revoked: int
    records_anonymised: int


class HealthIssueOut(Response):
    """One device entity that needs attention."""

    unit_id: str | None
    device_id: str
    entity_id: str
    name: str
    kind: str
    problems: list[str]
    battery: float | None


class HealthOut(Response):
    """Device health of a property: offline, stale and low-battery devices."""

    property_id: str
    checked_at: datetime
    devices: int
    offline: int
    stale: int
    low_battery: int
    held: int = Field(default=0, description="Devices held: their wiring changed and awaits staff approval")
    issues: list[HealthIssueOut]


# --- operator ---------------------------------------------------------------------------------------


class CreateStaffRequest(Request):
    """Create a property manager, installer or operator account."""

    username: Username
    role: Literal[Role.MANAGER, Role.INSTALLER, Role.OPERATOR]
    property_id: Ident | None = None
    display_name: Text | None = None


class DisableRequest(Request):
    """Suspend an account."""

    reason: Reason


class UnlockRequest(Request):
    """Clear a username's failed sign-ins."""

    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class AuditEntryOut(Response):
    """One audit entry."""

    id: int
    at: datetime
    actor_id: str | None
    actor_role: str | None
    action: str
    property_id: str | None
    unit_id: str | None
    target: str | None
    detail: dict[str, Any]


class AuditPage(Response):
    """A page of audit entries, newest first."""

    entries: list[AuditEntryOut]
    next_before: int | None
