"""Data retention: per-category retention, the database's size budget, and the background purge with holds."""

from .models import (
    DEFAULT_DAYS,
    MINIMUM_DAYS,
    Category,
    Hold,
    HoldSource,
    PurgeReport,
    RetentionPolicy,
    StorageStatus,
)
from .service import RetentionService

__all__ = [
    "DEFAULT_DAYS",
    "MINIMUM_DAYS",
    "Category",
    "Hold",
    "HoldSource",
    "PurgeReport",
    "RetentionPolicy",
    "RetentionService",
    "StorageStatus",
]
