"""Synchronous reads and writes of the audit log."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from ..storage.records import transaction

__all__ = ["audit_entries", "insert_audit"]


def insert_audit(db: sqlite_utils.Database, row: dict[str, Any]) -> None:
    """Append one audit entry."""
    with transaction(db):
        db.table("audit_log").insert(row)


def audit_entries(
    db: sqlite_utils.Database, property_id: str | None, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """Audit entries, newest first, optionally for one property."""
    clauses: list[str] = []
    args: list[Any] = []
    if property_id is not None:
        clauses.append("property_id = ?")
        args.append(property_id)
    if before is not None:
        clauses.append("id < ?")
        args.append(before)
    rows = db.table("audit_log").rows_where(" AND ".join(clauses) or None, args, order_by="id desc", limit=limit)
    return [{**r, "detail": json.loads(r["detail"])} for r in rows]
