"""Plain-SQL row reads and writes for the hot paths (each request, each command, each flush).

sqlite-utils' ``Table`` helpers look the schema up again on every call (``table_names``, ``PRAGMA table_info``):
about a tenth of a millisecond each, on the writer thread and holding the GIL, several times per command. These
run one fixed statement through ``Database.execute`` instead, which sqlite3's statement cache prepares once.
Table and column names come from the gateway's own code, never from input; values are always parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlite_utils

__all__ = ["insert_row", "insert_rows", "select_all", "select_one", "update_row", "upsert_rows"]


def select_one(db: sqlite_utils.Database, sql: str, args: Sequence[Any] = ()) -> dict[str, Any] | None:
    """The first row of ``sql`` as a dict, or None."""
    cursor = db.execute(sql, list(args))
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip((c[0] for c in cursor.description), row, strict=True))


def select_all(db: sqlite_utils.Database, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Every row of ``sql`` as dicts."""
    cursor = db.execute(sql, list(args))
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def insert_row(db: sqlite_utils.Database, table: str, row: Mapping[str, Any]) -> int | None:
    """INSERT one row; its rowid."""
    columns = list(row)
    return db.conn.execute(_insert(table, columns), [row[c] for c in columns]).lastrowid


def insert_rows(
    db: sqlite_utils.Database,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    or_ignore: bool = False,
) -> None:
    """INSERT many rows of the same columns with one prepared statement (``or_ignore``: skip rows whose key is
    taken)."""
    sql = _insert(table, columns)
    db.conn.executemany(sql.replace("INSERT", "INSERT OR IGNORE", 1) if or_ignore else sql, rows)


def upsert_rows(
    db: sqlite_utils.Database, table: str, key: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """INSERT many rows, or UPDATE every other column of the row whose ``key`` is taken (``key`` is a column)."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
    db.conn.executemany(f"{_insert(table, columns)} ON CONFLICT({key}) DO UPDATE SET {updates}", rows)


def update_row(db: sqlite_utils.Database, table: str, key: str, value: Any, changes: Mapping[str, Any]) -> int:
    """UPDATE the row whose ``key`` column is ``value``; how many rows changed (0 or 1)."""
    columns = list(changes)
    sql = f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in columns)} WHERE {key} = ?"
    return db.conn.execute(sql, [*(changes[c] for c in columns), value]).rowcount


def _insert(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
