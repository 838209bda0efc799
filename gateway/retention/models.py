"""Retention categories, their defaults and floors, the disk budget, legal holds, and what the purge reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

__all__ = [
    "DEFAULT_BUDGET_BYTES",
    "DEFAULT_DAYS",
    "DEFAULT_WATERMARK_PERCENT",
    "MAXIMUM_DAYS",
    "MINIMUM_DAYS",
    "THINNED_FIRST",
    "Category",
    "Hold",
    "HoldSource",
    "PurgeReport",
    "RetentionPolicy",
    "StorageStatus",
]


class Category(StrEnum):
    """A kind of stored record with a retention of its own (its age counted from the time named below)."""

    EVENTS = "events"  # device state history, from when it was reported
    COMMANDS = "commands"  # finished commands, from when they were asked
    CONNECTIVITY = "connectivity"  # ended outage intervals, from their end
    SELF_TESTS = "self_tests"  # self-test results, from their end (each unit's latest and latest passed are kept)
    NOTIFICATIONS = "notifications"  # residents' notifications, from when they were made
    REPORTS = "reports"  # delivered failure reports, from their delivery (pending ones are never purged)
    SIGN_IN_ATTEMPTS = "sign_in_attempts"  # failed sign-in counts, from the last failure (never while locked)
    SESSIONS = "sessions"  # ended sessions (revoked or expired), from their end
    REMOVED_DEVICES = "removed_devices"  # removed entities (with their history) and devices left without any
    AUDIT = "audit"  # the audit log, from its entry; the longest of all


# Days each category is kept unless the operator says otherwise; the reasons are in docs/operations.md.
DEFAULT_DAYS: dict[Category, int] = {
    Category.EVENTS: 30,
    Category.COMMANDS: 90,
    Category.CONNECTIVITY: 400,
    Category.SELF_TESTS: 400,
    Category.NOTIFICATIONS: 90,
    Category.REPORTS: 400,
    Category.SIGN_IN_ATTEMPTS: 1,
    Category.SESSIONS: 90,
    Category.REMOVED_DEVICES: 90,
    Category.AUDIT: 2557,  # seven years
}
# Floors an operator cannot go below: what the gateway's own rules read back.
MINIMUM_DAYS: dict[Category, int] = {
    **dict.fromkeys(Category, 1),
    # compliance (rule 5) reads the outages since a unit's last passed test: a month, its 7-day grace, and margin
    Category.CONNECTIVITY: 40,
    Category.SELF_TESTS: 40,
    Category.AUDIT: 365,
}
MAXIMUM_DAYS = 36_500
DEFAULT_BUDGET_BYTES = 2 * 1024**3
DEFAULT_WATERMARK_PERCENT = 90
# Past the watermark these are thinned, oldest first, in this order: history before anything else.
THINNED_FIRST: tuple[Category, ...] = (Category.EVENTS, Category.COMMANDS, Category.NOTIFICATIONS)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Days kept per category, the database's size budget and the watermark (percent of it) where thinning starts."""

    days: dict[Category, int] = field(default_factory=lambda: dict(DEFAULT_DAYS))
    budget_bytes: int = DEFAULT_BUDGET_BYTES
    watermark_percent: int = DEFAULT_WATERMARK_PERCENT

    @property
    def watermark_bytes(self) -> int:
        """The used size past which history is thinned."""
        return self.budget_bytes * self.watermark_percent // 100

    @property
    def low_bytes(self) -> int:
        """Where thinning stops: ten points of the budget below the watermark (so it does not run at every write)."""
        return self.budget_bytes * max(self.watermark_percent - 10, 1) // 100


@dataclass(frozen=True, slots=True)
class Hold:
    """Rows a legal hold or an open request needs kept: everything about these accounts and units (their sessions,
    sign-in counts, commands, notifications, self-tests, reports, audit entries, and the history of every device
    ever bound to the units), in ``categories`` only (all when None). ``reason`` is for logs and answers."""

    reason: str
    account_ids: frozenset[str] = frozenset()
    unit_ids: frozenset[str] = frozenset()
    categories: frozenset[Category] | None = None

    def covers(self, category: Category) -> bool:
        """Whether this hold applies to ``category``."""
        return self.categories is None or category in self.categories


class HoldSource(Protocol):
    """Says which rows the purge must keep (the residents' rights requests and legal holds fill it)."""

    async def holds(self) -> Sequence[Hold]:
        """The holds in force now; asked at the start of every purge pass."""
        ...


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What one purge pass removed, per category, and what it gave back to the file system."""

    at: datetime
    deleted: dict[str, int]
    thinned: dict[str, int]
    pages_freed: int
    seconds: float
    longest_batch_seconds: float  # the longest single delete: about how long other writes waited behind it


@dataclass(frozen=True, slots=True)
class StorageStatus:
    """The database's size against its budget, and the state the operator sees (ok, thinning, over_budget)."""

    state: str
    file_bytes: int
    used_bytes: int
    free_bytes: int
    wal_bytes: int
    budget_bytes: int
    watermark_bytes: int
    auto_vacuum: str
    trouble: str | None
    last_purge: PurgeReport | None
