"""The persister's appends and their merge: events and reported columns staged unindexed, merged in bulk.

At a quiet rate each state change used to dirty two scattered pages (its entity's row, its place in the
``events_entity`` index): a 4 KB WAL frame each, and the checkpoint's copy. Appended, a batch's changes share a few
pages; the merge then writes each entity's row and index leaf once for every change since the last merge.

The ``all_events`` and ``current_entities`` views (migration 13) read the tables together: what a merge leaves
unchanged. ``events`` is written by the merge alone (its ids come from the appends, which continue its sequence).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import sqlite_utils

from .tx import transaction

__all__ = [
    "EVENT_TABLES",
    "MERGE_ROWS",
    "EntityStateRow",
    "append_events",
    "append_reports",
    "drop_reports",
    "merge_staged",
    "staged_rows",
]

# Rows appended (events and reports alike) before a merge is due. A merge rewrites the index leaf of every entity it
# has events for: at 2,000 devices, 4,096 rows (about one event per entity) saved almost no bytes; 16,384 (about
# four) write a leaf per four changes, and hold the writer about 50 ms, every two minutes at a report per device
# every 30 s.
MERGE_ROWS = 16384

# Where events are: merged and appended. Whatever reads or changes a history reads or changes both.
EVENT_TABLES = ("events", "events_recent")


class EntityStateRow(NamedTuple):
    """The columns of an entity's row that its reports change (a state, availability or last-seen update); a
    tuple in the order of the append's parameters (the key last), handed to SQLite as it is."""

    state: str | None
    state_at: str | None
    state_error: str | None
    state_error_at: str | None
    available: int | None
    availability_at: str | None
    last_seen: str | None
    key: str


_EVENT_COLUMNS = "id, at, entity_key, type, data"
_REPORT_COLUMNS = ", ".join(EntityStateRow._fields)
_INSERT_EVENT = f"INSERT INTO events_recent ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
_MARKS = ", ".join("?" * len(EntityStateRow._fields))
_INSERT_REPORT = f"INSERT INTO entity_reports ({_REPORT_COLUMNS}) VALUES ({_MARKS})"
_LATEST_REPORTS = "SELECT * FROM entity_reports WHERE id IN (SELECT max(id) FROM entity_reports GROUP BY key)"


def append_events(db: sqlite_utils.Database, rows: Iterable[Sequence[Any]]) -> None:
    """Append events (each ``(at, entity_key, type, data-as-text)``), numbered after every event already stored."""
    first = _next_event_id(db)
    db.conn.executemany(_INSERT_EVENT, ((first + n, *row) for n, row in enumerate(rows)))


def append_reports(db: sqlite_utils.Database, rows: Iterable[Sequence[Any]]) -> None:
    """Append reported columns, each an ``EntityStateRow`` (or a tuple in its order); the latest per key wins."""
    db.conn.executemany(_INSERT_REPORT, rows)


def drop_reports(db: sqlite_utils.Database, keys: Sequence[str]) -> None:
    """Forget the appended reports of ``keys``: their whole rows are being written, with newer values."""
    if keys and db.conn.execute("SELECT 1 FROM entity_reports LIMIT 1").fetchone() is not None:
        # One pass over the unindexed table, whatever the number of keys (a reconnection re-discovers thousands).
        db.conn.execute("DELETE FROM entity_reports WHERE key IN (SELECT value FROM json_each(?))", (json.dumps(keys),))


def staged_rows(db: sqlite_utils.Database) -> int:
    """How many rows wait for a merge."""
    row = db.conn.execute(
        "SELECT (SELECT count(*) FROM events_recent) + (SELECT count(*) FROM entity_reports)"
    ).fetchone()
    return int(row[0])


def merge_staged(db: sqlite_utils.Database) -> int:
    """Move every appended event into ``events`` and every entity's latest reported columns into its row, in one
    transaction; return the rows moved."""
    with transaction(db):
        # In entity order: each leaf of the events_entity index is read and written once, however many of its
        # entity's events are merged.
        events = db.conn.execute(
            f"INSERT INTO events ({_EVENT_COLUMNS}) SELECT {_EVENT_COLUMNS} FROM events_recent ORDER BY entity_key, id"
        ).rowcount
        db.conn.execute("DELETE FROM events_recent")
        reports = db.conn.execute("SELECT count(*) FROM entity_reports").fetchone()[0]
        if reports:
            columns = EntityStateRow._fields[:-1]  # all but the key
            db.conn.execute(
                f"UPDATE entities SET {', '.join(f'{c} = r.{c}' for c in columns)} "
                f"FROM ({_LATEST_REPORTS}) AS r WHERE entities.key = r.key"
            )
            db.conn.execute("DELETE FROM entity_reports")
    return int(events) + int(reports)


def _next_event_id(db: sqlite_utils.Database) -> int:
    # Both: appends continue after the merged events, and after any staged ones (each max is one index seek).
    staged = db.conn.execute("SELECT max(id) FROM events_recent").fetchone()[0]
    merged = db.conn.execute("SELECT max(id) FROM events").fetchone()[0]
    return max(int(staged or 0), int(merged or 0)) + 1
