"""The writer's transactions: BEGIN IMMEDIATE ... COMMIT, nested calls joining the open one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlite_utils

__all__ = ["transaction"]


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[None]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error; inside an open transaction, part of that one."""
    if db.conn.in_transaction:
        yield
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if db.conn.in_transaction:  # SQLite has already rolled back after some errors (SQLITE_FULL among them)
            db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")
