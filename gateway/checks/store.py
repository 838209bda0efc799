"""Synchronous reads and writes of self-tests, failure reports and notifications (writer thread)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlite_utils

from ..storage.records import parse_time, transaction
from .models import Notification, Report, ReportKind, SelfTestResult

__all__ = [
    "get_report",
    "insert_notification",
    "insert_report",
    "insert_self_test",
    "last_command_at",
    "last_passed",
    "last_self_test",
    "last_started",
    "list_reports",
    "list_self_tests",
    "mark_attempt",
    "notifications",
    "pending_reports",
    "unit_notifications",
]

_REPORT_COLUMNS = (
    "id, idempotency_key, kind, property_id, unit_id, created_at, created_by, body, attempts, last_attempt_at, "
    "last_error, delivered_at"
)


def insert_self_test(db: sqlite_utils.Database, result: SelfTestResult) -> None:
    """Store a finished self-test."""
    with transaction(db):
        db.conn.execute(
            "INSERT INTO self_tests (id, unit_id, trigger, actor_id, started_at, finished_at, passed, result) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (
                result.id,
                result.unit_id,
                str(result.trigger),
                result.actor_id,
                result.started_at.isoformat(),
                result.finished_at.isoformat(),
                int(result.passed),
                result.model_dump_json(),
            ),
        )


def list_self_tests(db: sqlite_utils.Database, unit_id: str, limit: int = 20) -> list[SelfTestResult]:
    """A unit's self-tests, newest first."""
    rows = db.conn.execute(
        "SELECT result FROM self_tests WHERE unit_id = ? ORDER BY finished_at DESC, rowid DESC LIMIT ?",
        (unit_id, limit),
    ).fetchall()
    return [SelfTestResult.model_validate_json(r[0]) for r in rows]


def last_self_test(db: sqlite_utils.Database, unit_id: str) -> SelfTestResult | None:
    """The unit's latest self-test."""
    tests = list_self_tests(db, unit_id, 1)
    return tests[0] if tests else None


def last_passed(db: sqlite_utils.Database, unit_id: str) -> datetime | None:
    """When the unit's latest passing self-test finished."""
    row = db.conn.execute("SELECT max(finished_at) FROM self_tests WHERE unit_id = ? AND passed = 1", (unit_id,))
    return parse_time(row.fetchone()[0])


def last_started(db: sqlite_utils.Database, unit_id: str, trigger: str) -> datetime | None:
    """When the unit's latest self-test with that trigger started."""
    row = db.conn.execute(
        "SELECT max(started_at) FROM self_tests WHERE unit_id = ? AND trigger = ?", (unit_id, trigger)
    ).fetchone()
    return parse_time(row[0])


def last_command_at(db: sqlite_utils.Database, entity_keys: list[str]) -> datetime | None:
    """When the latest command to any of these entities was created."""
    if not entity_keys:
        return None
    marks = ",".join("?" * len(entity_keys))
    row = db.conn.execute(f"SELECT max(created_at) FROM commands WHERE entity_key IN ({marks})", entity_keys)
    return parse_time(row.fetchone()[0])


def insert_report(db: sqlite_utils.Database, report: Report) -> tuple[Report, bool]:
    """File a report once per idempotency key; the stored report and whether it is new."""
    with transaction(db):
        db.conn.execute(
            f"INSERT OR IGNORE INTO reports ({_REPORT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,0,NULL,NULL,NULL)",
            (
                report.id,
                report.idempotency_key,
                str(report.kind),
                report.property_id,
                report.unit_id,
                report.created_at.isoformat(),
                report.created_by,
                json.dumps(report.body, separators=(",", ":")),
            ),
        )
        new = db.conn.execute("SELECT changes()").fetchone()[0] == 1
        row = db.conn.execute(
            f"SELECT {_REPORT_COLUMNS} FROM reports WHERE idempotency_key = ?", (report.idempotency_key,)
        ).fetchone()
    return _report(row), new


def get_report(db: sqlite_utils.Database, report_id: str) -> Report | None:
    """One report by id."""
    row = db.conn.execute(f"SELECT {_REPORT_COLUMNS} FROM reports WHERE id = ?", (report_id,)).fetchone()
    return None if row is None else _report(row)


def pending_reports(db: sqlite_utils.Database, limit: int = 100) -> list[Report]:
    """Reports not yet delivered, oldest first."""
    rows = db.conn.execute(
        f"SELECT {_REPORT_COLUMNS} FROM reports WHERE delivered_at IS NULL ORDER BY created_at, rowid LIMIT ?",
        (limit,),
    ).fetchall()
    return [_report(r) for r in rows]


def list_reports(
    db: sqlite_utils.Database, *, property_id: str | None = None, unit_id: str | None = None, limit: int = 100
) -> list[Report]:
    """Reports, newest first, of a property or a unit or all."""
    where, args = "1=1", []
    if property_id is not None:
        where, args = "property_id = ?", [property_id]
    if unit_id is not None:
        where, args = "unit_id = ?", [unit_id]
    rows = db.conn.execute(
        f"SELECT {_REPORT_COLUMNS} FROM reports WHERE {where} ORDER BY created_at DESC, rowid DESC LIMIT ?",
        [*args, limit],
    ).fetchall()
    return [_report(r) for r in rows]


def mark_attempt(
    db: sqlite_utils.Database, report_id: str, at: datetime, error: str | None, delivered: bool
) -> Report | None:
    """Record one delivery attempt and, if it succeeded, when the report was delivered."""
    with transaction(db):
        db.conn.execute(
            "UPDATE reports SET attempts = attempts + 1, last_attempt_at = ?, last_error = ?, "
            "delivered_at = CASE WHEN ? THEN ? ELSE delivered_at END WHERE id = ?",
            (at.isoformat(), error, int(delivered), at.isoformat(), report_id),
        )
    return get_report(db, report_id)


def insert_notification(
    db: sqlite_utils.Database, unit_id: str, key: str, kind: str, message: str, data: dict[str, Any], at: datetime
) -> Notification | None:
    """Queue a notification once per key; the new one, or None if that key was already queued."""
    with transaction(db):
        cursor = db.conn.execute(
            "INSERT OR IGNORE INTO notifications (unit_id, key, kind, message, data, created_at) VALUES (?,?,?,?,?,?)",
            (unit_id, key, kind, message, json.dumps(data, separators=(",", ":")), at.isoformat()),
        )
        if cursor.rowcount != 1:
            return None
        notification_id = cursor.lastrowid
    assert notification_id is not None
    return Notification(id=notification_id, unit_id=unit_id, kind=kind, message=message, data=data, created_at=at)


def notifications(
    db: sqlite_utils.Database, unit_id: str, *, after: int = 0, since: datetime | None = None, limit: int = 50
) -> list[Notification]:
    """A unit's notifications with ids above ``after`` (created at or after ``since``), oldest first."""
    rows = db.conn.execute(
        "SELECT id, unit_id, kind, message, data, created_at FROM notifications "
        "WHERE unit_id = ? AND id > ? AND created_at >= ? ORDER BY id LIMIT ?",
        (unit_id, after, since.isoformat() if since else "", limit),
    ).fetchall()
    return [_notification(r) for r in rows]


def unit_notifications(
    db: sqlite_utils.Database, unit_ids: list[str], *, before: int | None = None, limit: int = 100
) -> list[Notification]:
    """The notifications of these units, newest first (ids below ``before``)."""
    if not unit_ids:
        return []
    marks = ",".join("?" * len(unit_ids))
    rows = db.conn.execute(
        f"SELECT id, unit_id, kind, message, data, created_at FROM notifications WHERE unit_id IN ({marks}) "
        "AND id < ? ORDER BY id DESC LIMIT ?",
        (*unit_ids, before if before is not None else 2**62, limit),
    ).fetchall()
    return [_notification(r) for r in rows]


def _notification(r: tuple[Any, ...]) -> Notification:
    return Notification(
        id=r[0], unit_id=r[1], kind=r[2], message=r[3], data=json.loads(r[4]), created_at=datetime.fromisoformat(r[5])
    )


def _report(row: tuple[Any, ...]) -> Report:
    created_at = parse_time(row[5])
    assert created_at is not None
    return Report(
        id=row[0],
        idempotency_key=row[1],
        kind=ReportKind(row[2]),
        property_id=row[3],
        unit_id=row[4],
        created_at=created_at,
        created_by=row[6],
        body=json.loads(row[7]),
        attempts=row[8],
        last_attempt_at=parse_time(row[9]),
        last_error=row[10],
        delivered_at=parse_time(row[11]),
    )
