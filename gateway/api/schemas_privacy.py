"""Request and response bodies of residents' privacy rights: requests, their answers, disclosures, settings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from ..privacy import RefusalCode, RequestKind, RequestState
from .schemas import Reason, Request, Response, Text

__all__ = [
    "AnswerRequest",
    "AppealRequest",
    "DisclosureOut",
    "ErasedOut",
    "FileRequest",
    "PrivacyRequestOut",
    "PrivacySettingsBody",
    "ProfileRequest",
]

Long = Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]


class ProfileRequest(Request):
    """Correct what I may correct myself: my display name (null removes it)."""

    display_name: Text | None


class FileRequest(Request):
    """A privacy request: access, correction, deletion or restriction, with what it is about."""

    kind: RequestKind
    detail: Long | None = None


class AppealRequest(Request):
    """Appeal an answer, saying why."""

    reason: Long


class AnswerRequest(Request):
    """Staff answer a request: grant, refuse (naming a refusal code) or answer (access, correction)."""

    outcome: Literal["grant", "refuse", "answer"]
    answer: Long
    refusal_code: RefusalCode | None = None


class PrivacyRequestOut(Response):
    """A privacy request and where it stands; ``held`` names what legal holds keep after a deletion."""

    id: str
    kind: RequestKind
    state: RequestState
    property_id: str | None
    unit_id: str | None
    detail: str | None
    created_at: datetime
    due_at: datetime
    overdue: bool = False
    answered_at: datetime | None
    answer: str | None
    refusal_code: RefusalCode | None
    held: list[str]
    appealed_at: datetime | None
    appeal: str | None
    closed_at: datetime | None


class DisclosureOut(Response):
    """One disclosure of my data: an export I made, or a report about my unit sent upstream."""

    id: int
    at: datetime
    kind: Literal["export", "report"]
    recipient: str
    reference: str | None
    detail: dict[str, object]


class PrivacySettingsBody(Request):
    """How privacy requests are handled: the deadline, and whether managers handle their property's requests."""

    deadline_days: int = Field(ge=1, le=90)
    managers_handle: bool
    note: Reason | None = None


class ErasedOut(Response):
    """An erased account: the pseudonym under which the legal holds keep their records, and what they keep."""

    pseudonym: str
    held: list[str]
