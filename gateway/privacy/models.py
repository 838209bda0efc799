"""Residents' privacy requests, disclosures and legal holds as the rest of the gateway sees them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = [
    "HOLDS",
    "Disclosure",
    "Held",
    "PrivacyRequest",
    "PrivacySettings",
    "RefusalCode",
    "RequestKind",
    "RequestState",
]


class RequestKind(StrEnum):
    """What the resident asks for."""

    ACCESS = "access"  # a copy (the export is self-service; this is for what it cannot answer)
    CORRECTION = "correction"  # of what they cannot correct themselves
    DELETION = "deletion"  # erasure of everything but what a legal hold keeps
    RESTRICTION = "restriction"  # kept, but not processed beyond storage


class RequestState(StrEnum):
    """Where a request stands; granted, refused and answered are answers, closed is final."""

    OPEN = "open"
    IN_PROGRESS = "in_progress"
    GRANTED = "granted"
    REFUSED = "refused"
    ANSWERED = "answered"
    APPEALED = "appealed"
    CLOSED = "closed"

    @property
    def pending(self) -> bool:
        """Waiting for staff (open, in progress, or appealed)."""
        return self in (RequestState.OPEN, RequestState.IN_PROGRESS, RequestState.APPEALED)


class RefusalCode(StrEnum):
    """Why staff refused a request: stable codes the app can show in the resident's language."""

    LEGAL_OBLIGATION = "legal_obligation"  # the law requires keeping it
    MANIFESTLY_UNFOUNDED = "manifestly_unfounded"
    EXCESSIVE = "excessive"  # repetitive
    IDENTITY_NOT_VERIFIED = "identity_not_verified"
    NOT_HELD = "not_held"  # the gateway holds no such data


HOLDS: tuple[str, ...] = (
    "agreement acceptances (version, time, client), kept under a pseudonym",
    "arbitration opt-outs, kept under a pseudonym",
    "the audit log, with the person's name, username and ids replaced by the pseudonym",
    "this request and its answer, under the pseudonym",
)
"""What a legal hold keeps after an erasure, named in every answer to a deletion request."""


@dataclass(frozen=True, slots=True)
class PrivacySettings:
    """How requests are handled: the answer deadline, and whether the manager of the resident's property may
    handle them besides the operator (the operator's choice)."""

    deadline: timedelta = timedelta(days=30)
    managers_handle: bool = False


@dataclass(frozen=True, slots=True)
class PrivacyRequest:
    """One resident's request and where it stands."""

    id: str
    account_id: str
    property_id: str | None
    unit_id: str | None
    kind: RequestKind
    state: RequestState
    detail: str | None
    created_at: datetime
    due_at: datetime
    handled_by: str | None
    answered_at: datetime | None
    answer: str | None
    refusal_code: RefusalCode | None
    held: tuple[str, ...]
    appealed_at: datetime | None
    appeal: str | None
    closed_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One time the resident's data left the gateway's storage for someone: an export, or a report upstream."""

    id: int
    at: datetime
    kind: str  # "export" | "report"
    recipient: str
    reference: str | None
    detail: dict[str, object]


@dataclass(frozen=True, slots=True)
class Held:
    """What a purge must keep now: every row of these accounts (open requests, restrictions) and of these units
    during the residencies the requests concern."""

    account_ids: frozenset[str]
    unit_ids: frozenset[str]
