"""The purge's SQL, run on the writer thread: settings, bounded batches per category, thinning, sizes, vacuum."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlite_utils

from ..storage.records import transaction
from ..storage.staging import EVENT_TABLES
from .models import Category, Hold

__all__ = [
    "PLANS",
    "HeldIds",
    "Plan",
    "Sizes",
    "delete_window",
    "held_ids",
    "incremental_vacuum",
    "load_settings",
    "purge_removed_devices",
    "rowid_bounds",
    "save_settings",
    "sizes",
]

_IN = "IN (SELECT value FROM json_each(:{name}))"


def _held(column: str, name: str) -> str:
    # NULL IN (a non-empty list) is NULL, and NOT NULL would keep the row: a NULL column is simply not held
    return f"coalesce({column}, '') {_IN.format(name=name)}"


@dataclass(frozen=True, slots=True)
class Plan:
    """How one table of a category is purged: its age column, what else a purged row must be, the SQL saying a
    row is held (``:units``, ``:accounts``, ``:usernames``, ``:entities``, ``:actors`` are JSON arrays), and whether
    its rowids follow its age (append-only tables: the scan stops at the first row young enough)."""

    table: str
    age: str
    extra: str
    held: str
    ordered: bool


PLANS: dict[Category, tuple[Plan, ...]] = {
    Category.EVENTS: tuple(
        Plan(table, "at", "1", f"{_held('entity_key', 'entities')}", True) for table in EVENT_TABLES
    ),
    Category.COMMANDS: (
        Plan(
            "commands",
            "created_at",
            "status <> 'pending'",
            f"{_held('entity_key', 'entities')} OR {_held('actor', 'actors')}",
            True,
        ),
    ),
    Category.CONNECTIVITY: (Plan("outages", "ended_at", "ended_at IS NOT NULL", "0", False),),
    Category.SELF_TESTS: (
        Plan(
            "self_tests",
            "finished_at",
            # each unit's latest test and latest passed test are what compliance reads: never purged
            "EXISTS (SELECT 1 FROM self_tests n WHERE n.unit_id = self_tests.unit_id "
            "AND n.finished_at > self_tests.finished_at) AND (passed = 0 OR EXISTS (SELECT 1 FROM self_tests n "
            "WHERE n.unit_id = self_tests.unit_id AND n.passed = 1 AND n.finished_at > self_tests.finished_at))",
            f"{_held('unit_id', 'units')}",
            False,
        ),
    ),
    Category.NOTIFICATIONS: (Plan("notifications", "created_at", "1", f"{_held('unit_id', 'units')}", True),),
    Category.REPORTS: (
        Plan("reports", "delivered_at", "delivered_at IS NOT NULL", f"{_held('unit_id', 'units')}", False),
    ),
    Category.SIGN_IN_ATTEMPTS: tuple(
        Plan(
            table,
            "last_failure_at",
            "(locked_until IS NULL OR locked_until < :now)",
            f"{_held('username', 'usernames')}",
            False,
        )
        for table in ("login_attempts", "login_attempts_by_source")
    ),
    Category.SESSIONS: (
        Plan(
            "sessions",
            "coalesce(revoked_at, expires_at)",
            "(revoked_at IS NOT NULL OR expires_at < :now)",
            f"{_held('account_id', 'accounts')}",
            False,
        ),
    ),
    Category.AUDIT: (
        Plan(
            "audit_log",
            "at",
            "1",
            f"{_held('actor_id', 'accounts')} OR {_held('target', 'accounts')} OR {_held('unit_id', 'units')}",
            True,
        ),
    ),
}


@dataclass(frozen=True, slots=True)
class HeldIds:
    """The ids a category's holds keep, as the purge's SQL reads them; ``everything`` for a category-wide hold."""

    everything: bool = False
    units: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    usernames: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()

    def params(self) -> dict[str, str]:
        """The JSON arrays the hold SQL binds."""
        return {
            "units": json.dumps(self.units),
            "accounts": json.dumps(self.accounts),
            "usernames": json.dumps(self.usernames),
            "entities": json.dumps(self.entities),
            "actors": json.dumps([f"account:{a}" for a in self.accounts]),
        }


def held_ids(db: sqlite_utils.Database, holds: Iterable[Hold], category: Category) -> HeldIds:
    """Resolve the holds on ``category`` to ids: usernames of the accounts, entities of every device ever bound to
    the units."""
    relevant = [h for h in holds if h.covers(category)]
    if any(not h.account_ids and not h.unit_ids for h in relevant):
        return HeldIds(everything=True)
    units = sorted({u for h in relevant for u in h.unit_ids})
    accounts = sorted({a for h in relevant for a in h.account_ids})
    if not units and not accounts:
        return HeldIds()
    usernames = [
        str(r[0])
        for r in db.execute(
            f"SELECT username FROM accounts WHERE id {_IN.format(name='a')}", {"a": json.dumps(accounts)}
        )
    ]
    entities = [
        str(r[0])
        for r in db.execute(
            "SELECT DISTINCT e.key FROM entities e JOIN bindings b ON b.device_id = e.device_id "
            f"WHERE b.unit_id {_IN.format(name='u')}",
            {"u": json.dumps(units)},
        )
    ]
    return HeldIds(False, tuple(units), tuple(accounts), tuple(usernames), tuple(sorted(entities)))


def rowid_bounds(db: sqlite_utils.Database, plan: Plan, cutoff: str) -> tuple[int, int]:
    """The rowid range [low, high) a pass scans: for an append-only table up to its first row at or after
    ``cutoff`` (a binary search over the rowid, a few point reads, no index on the age)."""
    low, top = db.execute(f"SELECT min(rowid), max(rowid) FROM {plan.table}").fetchone()
    if low is None:
        return 0, 0
    low, top = int(low), int(top)
    if not plan.ordered:
        return low, top + 1
    # young(x): the first row at or after rowid x is at or after the cutoff (or there is none); monotonic in x
    lo, hi = low, top + 1
    sql = f"SELECT rowid, {plan.age} FROM {plan.table} WHERE rowid >= ? ORDER BY rowid LIMIT 1"
    while lo < hi:
        mid = (lo + hi) // 2
        row = db.execute(sql, [mid]).fetchone()
        if row is None or row[1] is None or str(row[1]) >= cutoff:
            hi = mid
        else:
            lo = int(row[0]) + 1
    return low, lo


def delete_window(
    db: sqlite_utils.Database,
    plan: Plan,
    start: int,
    end: int,
    cutoff: str | None,
    now: str,
    held: HeldIds,
) -> int:
    """Delete the rows with rowid in [start, end) older than ``cutoff`` (any age when None), neither held nor
    spared by the plan; one short transaction. Return how many went."""
    if held.everything:
        return 0
    age = "1" if cutoff is None else f"{plan.age} < :cutoff"
    sql = (
        f"DELETE FROM {plan.table} WHERE rowid >= :start AND rowid < :end AND {age} "
        f"AND ({plan.extra}) AND NOT ({plan.held})"
    )
    with transaction(db):
        cursor = db.conn.execute(sql, {"start": start, "end": end, "cutoff": cutoff, "now": now, **held.params()})
    return int(cursor.rowcount)


def purge_removed_devices(db: sqlite_utils.Database, cutoff: str, held: HeldIds, limit: int) -> int:
    """Delete up to ``limit`` entities removed before ``cutoff`` (with their history, commands and wiring) and then
    the devices left with no entity and no binding in force; one transaction. Return the entities deleted."""
    if held.everything:
        return 0
    with transaction(db):
        keys = [
            str(r[0])
            for r in db.conn.execute(
                f"SELECT key FROM entities WHERE removed_at IS NOT NULL AND removed_at < :cutoff "
                f"AND key NOT {_IN.format(name='entities')} LIMIT :limit",
                {"cutoff": cutoff, "limit": limit, **held.params()},
            )
        ]
        params = {"keys": json.dumps(keys)}
        for table, column in (
            *((t, "entity_key") for t in EVENT_TABLES),
            ("entity_reports", "key"),
            ("commands", "entity_key"),
            ("wiring", "entity_key"),
        ):
            db.conn.execute(f"DELETE FROM {table} WHERE {column} {_IN.format(name='keys')}", params)
        db.conn.execute(f"DELETE FROM entities WHERE key {_IN.format(name='keys')}", params)
        gone = (
            "SELECT d.id FROM devices d WHERE d.first_seen < :cutoff "
            "AND NOT EXISTS (SELECT 1 FROM entities e WHERE e.device_id = d.id) "
            "AND NOT EXISTS (SELECT 1 FROM bindings b WHERE b.device_id = d.id "
            f"AND (b.unbound_at IS NULL OR b.unbound_at >= :cutoff OR b.unit_id {_IN.format(name='units')}))"
        )
        devices = [str(r[0]) for r in db.conn.execute(gone, {"cutoff": cutoff, **held.params()})]
        dparams = {"ids": json.dumps(devices)}
        for table in ("bindings", "device_names", "device_owners", "wiring", "devices"):
            column = "id" if table == "devices" else "device_id"
            db.conn.execute(f"DELETE FROM {table} WHERE {column} {_IN.format(name='ids')}", dparams)
    return len(keys)


@dataclass(frozen=True, slots=True)
class Sizes:
    """The database file's pages and the bytes on disk."""

    page_size: int
    pages: int
    free_pages: int
    file_bytes: int
    wal_bytes: int
    auto_vacuum: int

    @property
    def used_bytes(self) -> int:
        """Bytes in pages that hold data (the file less its free list)."""
        return (self.pages - self.free_pages) * self.page_size

    @property
    def free_bytes(self) -> int:
        """Bytes of the file's free pages (given back by the incremental vacuum)."""
        return self.free_pages * self.page_size


def sizes(db: sqlite_utils.Database, path: Path) -> Sizes:
    """The database's page counts and its file and WAL sizes."""

    def pragma(name: str) -> int:
        return int(db.conn.execute(f"PRAGMA {name}").fetchone()[0])

    wal = Path(f"{path}-wal")
    return Sizes(
        pragma("page_size"),
        pragma("page_count"),
        pragma("freelist_count"),
        os.stat(path).st_size if path.exists() else 0,
        os.stat(wal).st_size if wal.exists() else 0,
        pragma("auto_vacuum"),
    )


def incremental_vacuum(db: sqlite_utils.Database, pages: int) -> int:
    """Give up to ``pages`` free pages back to the file system; return how many went."""
    before = int(db.conn.execute("PRAGMA freelist_count").fetchone()[0])
    # executescript steps the pragma to its end (execute would step it once: a single page)
    db.conn.executescript(f"PRAGMA incremental_vacuum({int(pages)})")
    return before - int(db.conn.execute("PRAGMA freelist_count").fetchone()[0])


def load_settings(db: sqlite_utils.Database) -> dict[str, int]:
    """The operator's stored overrides (category names, ``budget_bytes``, ``watermark_percent``)."""
    return {str(r[0]): int(r[1]) for r in db.execute("SELECT key, value FROM retention_settings")}


def save_settings(db: sqlite_utils.Database, values: dict[str, int], at: datetime, by: str) -> None:
    """Store overrides, in one transaction."""
    with transaction(db):
        for key, value in values.items():
            db.conn.execute(
                "INSERT INTO retention_settings (key, value, updated_at, updated_by) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, "
                "updated_by = excluded.updated_by",
                (key, value, at.isoformat(), by),
            )
