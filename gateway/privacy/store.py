"""Synchronous reads and writes of privacy requests, disclosures, restrictions and settings (writer thread)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from ..storage.records import parse_time, transaction
from ..storage.rows import insert_row, select_all, select_one
from .models import Disclosure, Held, PrivacyRequest, PrivacySettings, RefusalCode, RequestKind, RequestState

__all__ = [
    "SETTING_DEADLINE",
    "SETTING_MANAGERS",
    "disclosures_of",
    "held",
    "insert_disclosure",
    "insert_request",
    "is_restricted",
    "queue",
    "read_settings",
    "report_disclosures",
    "request_by_id",
    "requests_of",
    "set_restriction",
    "update_request",
    "write_setting",
]

SETTING_MANAGERS = "privacy.managers_handle_requests"
SETTING_DEADLINE = "privacy.deadline_days"


def _request(row: dict[str, Any]) -> PrivacyRequest:
    return PrivacyRequest(
        id=row["id"],
        account_id=row["account_id"],
        property_id=row["property_id"],
        unit_id=row["unit_id"],
        kind=RequestKind(row["kind"]),
        state=RequestState(row["state"]),
        detail=row["detail"],
        created_at=datetime.fromisoformat(row["created_at"]),
        due_at=datetime.fromisoformat(row["due_at"]),
        handled_by=row["handled_by"],
        answered_at=parse_time(row["answered_at"]),
        answer=row["answer"],
        refusal_code=None if row["refusal_code"] is None else RefusalCode(row["refusal_code"]),
        held=tuple(json.loads(row["held"] or "[]")),
        appealed_at=parse_time(row["appealed_at"]),
        appeal=row["appeal"],
        closed_at=parse_time(row["closed_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


def insert_request(db: sqlite_utils.Database, row: dict[str, Any]) -> PrivacyRequest | None:
    """Record a new request, unless the account has one of the same kind waiting for staff (None then)."""
    with transaction(db):
        waiting = db.execute(
            "SELECT 1 FROM privacy_requests WHERE account_id = ? AND kind = ? "
            "AND state IN ('open', 'in_progress', 'appealed')",
            [row["account_id"], row["kind"]],
        ).fetchone()
        if waiting is not None:
            return None
        insert_row(db, "privacy_requests", row)
    return _request(row)


def request_by_id(db: sqlite_utils.Database, request_id: str) -> PrivacyRequest | None:
    """The request with that id."""
    row = select_one(db, "SELECT * FROM privacy_requests WHERE id = ?", [request_id])
    return None if row is None else _request(row)


def requests_of(db: sqlite_utils.Database, account_id: str) -> list[PrivacyRequest]:
    """An account's requests, newest first."""
    rows = select_all(
        db, "SELECT * FROM privacy_requests WHERE account_id = ? ORDER BY created_at DESC, id", [account_id]
    )
    return [_request(r) for r in rows]


def queue(db: sqlite_utils.Database, property_id: str | None, pending_only: bool, limit: int) -> list[PrivacyRequest]:
    """Requests of one property (None: every property), those waiting for staff first by deadline."""
    clauses, args = [], []
    if property_id is not None:
        clauses.append("property_id = ?")
        args.append(property_id)
    if pending_only:
        clauses.append("state IN ('open', 'in_progress', 'appealed')")
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT * FROM privacy_requests {where} ORDER BY due_at, id LIMIT ?"
    return [_request(r) for r in select_all(db, sql, [*args, limit])]


def update_request(db: sqlite_utils.Database, request_id: str, changes: dict[str, Any]) -> PrivacyRequest:
    """Change the named columns of one request and return it."""
    columns = ", ".join(f"{c} = ?" for c in changes)
    with transaction(db):
        db.conn.execute(f"UPDATE privacy_requests SET {columns} WHERE id = ?", [*changes.values(), request_id])
    found = request_by_id(db, request_id)
    if found is None:  # pragma: no cover - the caller read it in the same thread
        raise LookupError(request_id)
    return found


def set_restriction(db: sqlite_utils.Database, account_id: str, request_id: str | None, at: str) -> None:
    """Put a restriction in force for the account (``request_id`` None lifts it)."""
    with transaction(db):
        db.conn.execute("DELETE FROM restrictions WHERE account_id = ?", (account_id,))
        if request_id is not None:
            insert_row(db, "restrictions", {"account_id": account_id, "since": at, "request_id": request_id})


def is_restricted(db: sqlite_utils.Database, account_id: str) -> bool:
    """Whether a restriction stands for the account."""
    return db.execute("SELECT 1 FROM restrictions WHERE account_id = ?", [account_id]).fetchone() is not None


def insert_disclosure(
    db: sqlite_utils.Database, account_id: str, at: str, kind: str, recipient: str, reference: str | None,
    detail: dict[str, Any],
) -> None:  # fmt: skip
    """Log one disclosure of the account's data."""
    row = {
        "account_id": account_id,
        "at": at,
        "kind": kind,
        "recipient": recipient,
        "reference": reference,
        "detail": json.dumps(detail, default=str),
    }
    with transaction(db):
        insert_row(db, "disclosures", row)


def report_disclosures(
    db: sqlite_utils.Database, unit_id: str | None, at: str, recipient: str, reference: str, kind: str
) -> int:
    """Log a report sent upstream as a disclosure to every current resident of its unit; how many."""
    if unit_id is None:
        return 0  # about the building (the broadband, the broker), not about any resident's unit
    residents = db.execute(
        "SELECT id FROM accounts WHERE unit_id = ? AND role = 'resident' AND ended_at IS NULL", [unit_id]
    ).fetchall()
    for (account_id,) in residents:
        insert_disclosure(db, account_id, at, "report", recipient, reference, {"report_kind": kind, "unit_id": unit_id})
    return len(residents)


def disclosures_of(db: sqlite_utils.Database, account_id: str, after: int, limit: int) -> list[Disclosure]:
    """An account's disclosures, oldest first, after the id ``after``."""
    rows = select_all(
        db, "SELECT * FROM disclosures WHERE account_id = ? AND id > ? ORDER BY id LIMIT ?", [account_id, after, limit]
    )
    return [
        Disclosure(
            id=r["id"],
            at=datetime.fromisoformat(r["at"]),
            kind=r["kind"],
            recipient=r["recipient"],
            reference=r["reference"],
            detail=json.loads(r["detail"]),
        )
        for r in rows
    ]


def held(db: sqlite_utils.Database) -> Held:
    """Accounts (and their units) whose data a purge must keep now: a request waiting for staff, or a restriction
    in force."""
    rows = db.execute(
        "SELECT account_id, unit_id FROM privacy_requests WHERE state IN ('open', 'in_progress', 'appealed') "
        "UNION SELECT r.account_id, a.unit_id FROM restrictions r LEFT JOIN accounts a ON a.id = r.account_id"
    ).fetchall()
    return Held(account_ids=frozenset(r[0] for r in rows), unit_ids=frozenset(r[1] for r in rows if r[1] is not None))


def read_settings(db: sqlite_utils.Database, default: PrivacySettings) -> PrivacySettings:
    """The operator's settings, or ``default`` for what was never set."""
    values = dict(
        db.execute(
            "SELECT key, value FROM gateway_settings WHERE key IN (?, ?)", [SETTING_MANAGERS, SETTING_DEADLINE]
        ).fetchall()
    )
    managers = values.get(SETTING_MANAGERS)
    days = values.get(SETTING_DEADLINE)
    return PrivacySettings(
        deadline=default.deadline if days is None else timedelta(days=int(days)),
        managers_handle=default.managers_handle if managers is None else managers == "true",
    )


def write_setting(db: sqlite_utils.Database, key: str, value: str, at: str, by: str) -> None:
    """Set one of the operator's privacy settings."""
    with transaction(db):
        db.conn.execute(
            "INSERT INTO gateway_settings (key, value, updated_at, updated_by) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, "
            "updated_by = excluded.updated_by",
            (key, value, at, by),
        )
