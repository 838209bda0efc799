"""Request and response bodies of retention, the size budget and the purge (the operator's storage settings)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from ..retention import DEFAULT_DAYS, MINIMUM_DAYS, Category, PurgeReport, RetentionPolicy, StorageStatus
from .schemas import Request, Response

__all__ = ["PurgeOut", "RetentionOut", "RetentionRequest", "StorageOut", "purge_out", "retention_out", "storage_out"]

Days = Annotated[int, Field(ge=1, le=36_500)]


class RetentionRequest(Request):
    """Days to keep per category (only those named change), and the database's size budget and watermark."""

    days: Annotated[dict[Category, Days], Field(max_length=len(Category))] = {}
    budget_bytes: Annotated[int, Field(ge=1, le=2**50)] | None = None
    watermark_percent: Annotated[int, Field(ge=1, le=100)] | None = None


class RetentionOut(Response):
    """Days kept per category (with the defaults and the floors), the size budget and the thinning watermark."""

    days: dict[Category, int]
    defaults: dict[Category, int]
    minimum: dict[Category, int]
    budget_bytes: int
    watermark_percent: int
    watermark_bytes: int


class PurgeOut(Response):
    """One purge pass: rows deleted per category for age, rows thinned for size, pages given back."""

    at: datetime
    deleted: dict[str, int]
    thinned: dict[str, int]
    pages_freed: int
    seconds: float
    longest_batch_seconds: float


class StorageOut(Response):
    """The database against its budget: ok, thinning (past the watermark) or over_budget, and the last pass."""

    state: str
    file_bytes: int
    used_bytes: int
    free_bytes: int
    wal_bytes: int
    budget_bytes: int
    watermark_bytes: int
    auto_vacuum: str
    trouble: str | None
    last_purge: PurgeOut | None
    retention: RetentionOut


def retention_out(policy: RetentionPolicy) -> RetentionOut:
    """The API's view of the retention policy."""
    return RetentionOut(
        days=dict(policy.days),
        defaults=dict(DEFAULT_DAYS),
        minimum=dict(MINIMUM_DAYS),
        budget_bytes=policy.budget_bytes,
        watermark_percent=policy.watermark_percent,
        watermark_bytes=policy.watermark_bytes,
    )


def purge_out(report: PurgeReport) -> PurgeOut:
    """The API's view of a purge pass."""
    return PurgeOut(
        at=report.at,
        deleted=report.deleted,
        thinned=report.thinned,
        pages_freed=report.pages_freed,
        seconds=report.seconds,
        longest_batch_seconds=report.longest_batch_seconds,
    )


def storage_out(status: StorageStatus, policy: RetentionPolicy) -> StorageOut:
    """The API's view of the storage status."""
    return StorageOut(
        state=status.state,
        file_bytes=status.file_bytes,
        used_bytes=status.used_bytes,
        free_bytes=status.free_bytes,
        wal_bytes=status.wal_bytes,
        budget_bytes=status.budget_bytes,
        watermark_bytes=status.watermark_bytes,
        auto_vacuum=status.auto_vacuum,
        trouble=status.trouble,
        last_purge=None if status.last_purge is None else purge_out(status.last_purge),
        retention=retention_out(policy),
    )
