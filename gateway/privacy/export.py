"""What an export holds, section by section, read a page at a time (bounded memory however long the history)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

__all__ = ["SECTIONS", "Cursor", "Subject", "page"]

FAR_FUTURE = "9999-12-31T23:59:59+00:00"


@dataclass(frozen=True, slots=True)
class Subject:
    """Whose data: the account, how history names it, its unit and residency (``until`` None: still resident)."""

    account_id: str
    actor: str
    unit_id: str | None
    since: str
    until: str | None


def _json(name: str) -> Callable[[dict[str, Any], Subject], dict[str, Any]]:
    def parse(row: dict[str, Any], _subject: Subject) -> dict[str, Any]:
        return {**row, name: json.loads(row[name]) if row[name] is not None else None}

    return parse


def _event(row: dict[str, Any], subject: Subject) -> dict[str, Any]:
    # A command event names who asked: "you" or "someone else", never another account (as GET /me/events does).
    data = json.loads(row["data"])
    if isinstance(data, dict) and "actor" in data:
        data["actor"] = "you" if data["actor"] == subject.actor else "someone else"
    return {**row, "data": data}


def _self_test(row: dict[str, Any], subject: Subject) -> dict[str, Any]:
    result = json.loads(row["result"])
    mine = row.pop("actor_id") in (subject.actor, subject.account_id)
    if isinstance(result, dict):
        result.pop("actor_id", None)
    return {**row, "started_by": "you" if mine else row["trigger"], "result": result}


def _audit(row: dict[str, Any], subject: Subject) -> dict[str, Any]:
    # Staff are named by role only: their account ids are not the resident's data.
    actor_id, role = row.pop("actor_id"), row.pop("actor_role")
    return {**row, "actor": "you" if actor_id == subject.account_id else role, "detail": json.loads(row["detail"])}


def _plain(row: dict[str, Any], _subject: Subject) -> dict[str, Any]:
    return row


@dataclass(frozen=True, slots=True)
class Section:
    """One array of the export: a keyset-paged query (``_k`` is the key) and how each row is shown."""

    name: str
    sql: str
    shape: Callable[[dict[str, Any], Subject], dict[str, Any]] = _plain


_RESIDENCY = "BETWEEN :since AND :until"
SECTIONS: tuple[Section, ...] = (
    Section(
        "sessions",
        "SELECT rowid AS _k, id, client, created_at, last_used_at, expires_at, revoked_at, revoked_reason "
        "FROM sessions WHERE account_id = :id",
    ),
    Section(
        "agreement_acceptances",
        "SELECT rowid AS _k, version, accepted_at, age_confirmed, client, session_id FROM agreement_acceptances "
        "WHERE account_id = :id",
    ),
    Section(
        "arbitration_opt_outs",
        "SELECT rowid AS _k, recorded_at, client FROM arbitration_opt_outs WHERE account_id = :id",
    ),
    Section(
        "commands",
        "SELECT rowid AS _k, id, entity_key, command, status, reason, detail, created_at, finished_at FROM commands "
        "WHERE actor = :actor",
        _json("command"),
    ),
    Section(
        "device_names",
        "SELECT rowid AS _k, device_id, name, set_at FROM device_names WHERE set_by = :actor",
    ),
    Section("device_history", "", _event),  # read by _history_page: per entity and bound interval, by time
    Section(
        "notifications",
        "SELECT id AS _k, id, kind, message, data, created_at FROM notifications "
        "WHERE unit_id = :unit AND created_at " + _RESIDENCY,
        _json("data"),
    ),
    Section(
        "self_tests",
        "SELECT rowid AS _k, id, trigger, actor_id, started_at, finished_at, passed, result FROM self_tests "
        "WHERE unit_id = :unit AND finished_at " + _RESIDENCY,
        _self_test,
    ),
    Section(
        "reports",
        # A report another resident of the unit wrote is theirs; the unit's automatic ones are everyone's.
        "SELECT rowid AS _k, id, kind, created_at, delivered_at, body FROM reports WHERE unit_id = :unit "
        "AND created_at " + _RESIDENCY + " AND (kind <> 'resident' OR created_by = :actor)",
        _json("body"),
    ),
    Section(
        "audit",
        "SELECT id AS _k, id, at, actor_id, actor_role, action, target, detail FROM audit_log "
        # A resident's own actions concern their unit; a staff member's concern others, so only those about them.
        "WHERE (actor_id = :id AND :unit IS NOT NULL) OR target = :id "
        "OR target IN (SELECT id FROM privacy_requests WHERE account_id = :id)",
        _audit,
    ),
    Section(
        "privacy_requests",
        "SELECT rowid AS _k, id, kind, state, detail, created_at, due_at, answered_at, answer, refusal_code, held, "
        "appealed_at, appeal, closed_at FROM privacy_requests WHERE account_id = :id",
        _json("held"),
    ),
    Section(
        "restrictions",
        "SELECT rowid AS _k, since, request_id FROM restrictions WHERE account_id = :id",
    ),
    Section(
        "disclosures",
        "SELECT id AS _k, id, at, kind, recipient, reference, detail FROM disclosures WHERE account_id = :id",
        _json("detail"),
    ),
)


Cursor = tuple[Any, ...]
"""Where the next page of a section starts (opaque to callers; None: at the beginning)."""


def page(
    db: sqlite_utils.Database, section: Section, subject: Subject, after: Cursor | None, limit: int
) -> tuple[list[dict[str, Any]], Cursor | None]:
    """Up to ``limit`` rows of ``section`` after ``after``, shaped; and where the next page starts (None: done)."""
    if section.name in _UNIT_SECTIONS and subject.unit_id is None:
        return [], None
    if section.name == "device_history":
        rows, cursor = _history_page(db, subject, after, limit)
    else:
        sql = f"SELECT * FROM ({section.sql}) WHERE _k > :after ORDER BY _k LIMIT :limit"
        found = _select(db, sql, {**_args(subject), "after": 0 if after is None else after[0], "limit": limit})
        rows, cursor = found, ((found[-1]["_k"],) if len(found) == limit else None)
        for row in rows:
            row.pop("_k")
    return [section.shape(row, subject) for row in rows], cursor


_UNIT_SECTIONS = frozenset({"device_history", "notifications", "self_tests", "reports"})


def _args(subject: Subject) -> dict[str, Any]:
    return {
        "id": subject.account_id,
        "actor": subject.actor,
        "unit": subject.unit_id,
        "since": subject.since,
        "until": subject.until or FAR_FUTURE,
    }


def _select(db: sqlite_utils.Database, sql: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    cursor = db.execute(sql, args)
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def _history_page(
    db: sqlite_utils.Database, subject: Subject, after: Cursor | None, limit: int
) -> tuple[list[dict[str, Any]], Cursor | None]:
    # The unit's devices while bound to it, and only during this residency: nothing of an earlier or later resident
    # of the unit. Read per (entity, bound interval) along the events_entity index (entity, time), so every page
    # costs its own rows, however long the history.
    args = _args(subject)
    intervals = db.execute(
        "SELECT n.key, max(b.bound_at, :since), min(coalesce(b.unbound_at, :until), :until) FROM bindings b "
        "JOIN entities n ON n.device_id = b.device_id WHERE b.unit_id = :unit ORDER BY n.key, b.bound_at, b.id",
        args,
    ).fetchall()
    index, at, event_id = (0, "", 0) if after is None else after
    rows: list[dict[str, Any]] = []
    while index < len(intervals) and len(rows) < limit:
        key, start, end = intervals[index]
        found = _select(
            db,
            # The lower bound is a plain range on the index (a row value would not seek); ties on the time by id.
            "SELECT id, at, entity_key, type, data FROM all_events WHERE entity_key = :key AND at >= :low "
            "AND at < :end AND (at > :at OR id > :id) ORDER BY at, id LIMIT :limit",
            {"key": key, "low": max(start, at), "end": end, "at": at, "id": event_id, "limit": limit - len(rows)},
        )
        rows.extend(found)
        if len(rows) < limit:
            index, at, event_id = index + 1, "", 0
        else:
            at, event_id = rows[-1]["at"], rows[-1]["id"]
    return rows, (None if index >= len(intervals) else (index, at, event_id))
