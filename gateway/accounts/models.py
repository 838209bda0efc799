"""Accounts, roles and sessions as the rest of the gateway sees them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = ["Account", "AccountStatus", "AuthSettings", "Principal", "Role", "Session"]


class Role(StrEnum):
    """What an account is for; each role sees only what it needs."""

    RESIDENT = "resident"  # their own unit
    MANAGER = "manager"  # the units, devices and residents of their property
    INSTALLER = "installer"  # binds and unbinds devices in their property
    OPERATOR = "operator"  # the service provider: properties, staff accounts, disabling accounts

    @property
    def is_staff(self) -> bool:
        """Manager or installer (bound to one property)."""
        return self in (Role.MANAGER, Role.INSTALLER)


class AccountStatus(StrEnum):
    """Whether an account may be used."""

    PENDING = "pending"  # created; waiting for its one-time activation code
    ACTIVE = "active"
    SUSPENDED = "suspended"  # disabled by the operator; may be enabled again
    TERMINATED = "terminated"  # moved out or closed; can never be used again


@dataclass(frozen=True, slots=True)
class Account:
    """One person's account."""

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

    @property
    def actor(self) -> str:
        """How commands and audit entries name this account."""
        return f"account:{self.id}"


@dataclass(frozen=True, slots=True)
class Session:
    """One signed-in app or console; the bearer token itself is never stored, only its hash."""

    id: str
    account_id: str
    client: str | None
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is making a request: the account and the session its token belongs to."""

    account: Account
    session: Session

    @property
    def role(self) -> Role:
        """The account's role."""
        return self.account.role

    @property
    def actor(self) -> str:
        """How commands and audit entries name this caller."""
        return self.account.actor


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """Session lifetimes and the login throttle."""

    session_ttl: timedelta = timedelta(days=30)
    idle_timeout: timedelta = timedelta(days=7)
    activation_ttl: timedelta = timedelta(days=14)
    throttle_after: int = 3  # failures before each further attempt must wait (1 s, 2 s, 4 s … up to 60 s)
    lock_after: int = 10  # failures from one source address before the username is locked there
    slow_after: int = 10  # failures from any source before every attempt on the username waits slow_wait
    slow_wait: timedelta = timedelta(seconds=1)
    lock_duration: timedelta = timedelta(minutes=15)
    touch_interval: timedelta = timedelta(seconds=60)  # how often last-used is written (idle timeout precision)
