"""Synchronous reads and writes of outage intervals (writer thread)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlite_utils

from ..storage.records import parse_time, transaction
from .models import Outage, OutageKind

__all__ = ["close_outage", "get_outage", "insert_outage", "open_outages", "outages_between"]

_COLUMNS = "id, kind, started_at, ended_at, cause, property_id, device_id, detail, declared_by"


def insert_outage(
    db: sqlite_utils.Database,
    kind: OutageKind,
    started_at: datetime,
    cause: str,
    *,
    ended_at: datetime | None = None,
    property_id: str | None = None,
    device_id: str | None = None,
    detail: str | None = None,
    declared_by: str | None = None,
) -> Outage:
    """Record an outage (open when ``ended_at`` is None) and return it."""
    with transaction(db):
        cursor = db.conn.execute(
            f"INSERT INTO outages ({_COLUMNS}) VALUES (NULL,?,?,?,?,?,?,?,?)",
            (
                str(kind),
                started_at.isoformat(),
                None if ended_at is None else ended_at.isoformat(),
                cause,
                property_id,
                device_id,
                detail,
                declared_by,
            ),
        )
        outage_id = cursor.lastrowid
    assert outage_id is not None
    outage = get_outage(db, outage_id)
    assert outage is not None
    return outage


def close_outage(db: sqlite_utils.Database, outage_id: int, ended_at: datetime) -> Outage | None:
    """End an open outage (never before it started); the closed outage, or None if it was not open."""
    with transaction(db):
        db.conn.execute(
            "UPDATE outages SET ended_at = max(started_at, ?) WHERE id = ? AND ended_at IS NULL",
            (ended_at.isoformat(), outage_id),
        )
        changed = db.conn.execute("SELECT changes()").fetchone()[0]
    return get_outage(db, outage_id) if changed else None


def get_outage(db: sqlite_utils.Database, outage_id: int) -> Outage | None:
    """One outage by id."""
    row = db.conn.execute(f"SELECT {_COLUMNS} FROM outages WHERE id = ?", (outage_id,)).fetchone()
    return None if row is None else _outage(row)


def open_outages(db: sqlite_utils.Database, kind: OutageKind | None = None) -> list[Outage]:
    """Outages still going on, oldest first."""
    where, args = ("AND kind = ?", [str(kind)]) if kind is not None else ("", [])
    rows = db.conn.execute(
        f"SELECT {_COLUMNS} FROM outages WHERE ended_at IS NULL {where} ORDER BY started_at, id", args
    ).fetchall()
    return [_outage(r) for r in rows]


def outages_between(
    db: sqlite_utils.Database,
    start: datetime,
    end: datetime,
    *,
    kinds: frozenset[OutageKind] | None = None,
    limit: int = 10_000,
) -> list[Outage]:
    """Outages overlapping [start, end), oldest first."""
    args: list[Any] = [end.isoformat(), start.isoformat()]
    where = ""
    if kinds:
        where = f" AND kind IN ({','.join('?' * len(kinds))})"
        args.extend(sorted(str(k) for k in kinds))
    rows = db.conn.execute(
        f"SELECT {_COLUMNS} FROM outages WHERE started_at < ? AND (ended_at IS NULL OR ended_at > ?){where} "
        "ORDER BY started_at, id LIMIT ?",
        [*args, limit],
    ).fetchall()
    return [_outage(r) for r in rows]


def _outage(row: tuple[Any, ...]) -> Outage:
    started_at = parse_time(row[2])
    assert started_at is not None
    return Outage(
        id=row[0],
        kind=OutageKind(row[1]),
        started_at=started_at,
        ended_at=parse_time(row[3]),
        cause=row[4],
        property_id=row[5],
        device_id=row[6],
        detail=row[7],
        declared_by=row[8],
    )
