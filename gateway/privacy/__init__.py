"""Residents' privacy rights: export, correction, requests with deadlines and appeals, disclosures, erasure, and
the holds a purge must respect."""

from .erasure import pseudonym_of
from .holds import RequestHolds
from .models import (
    HOLDS,
    Disclosure,
    Held,
    PrivacyRequest,
    PrivacySettings,
    RefusalCode,
    RequestKind,
    RequestState,
)
from .privacy_service import ERASED, PrivacyService
from .store import held as held_now

__all__ = [
    "ERASED",
    "HOLDS",
    "Disclosure",
    "Held",
    "PrivacyRequest",
    "PrivacyService",
    "PrivacySettings",
    "RefusalCode",
    "RequestHolds",
    "RequestKind",
    "RequestState",
    "held_now",
    "pseudonym_of",
]
