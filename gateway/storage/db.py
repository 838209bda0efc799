"""The SQLite file: one writer thread, WAL, foreign keys, migrations and an integrity check at start."""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import sqlite_utils

from ..errors import StorageError
from .migrations import MIGRATIONS

__all__ = ["Database"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class Database:
    """Owns the SQLite connection; every call runs on one dedicated thread, off the event loop.

    sqlite-utils is synchronous, so the event loop hands work to this thread and awaits it; with a
    single thread there is exactly one writer and no lock contention inside the process.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite_utils.Database | None = None

    async def open(self) -> None:
        """Open (creating if needed), check integrity and migrate; raise StorageError on failure."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        try:
            await self._submit(self._open_sync)
        except BaseException:
            self._executor.shutdown(wait=True)
            self._executor = None
            raise

    async def close(self) -> None:
        """Close the connection and stop the writer thread."""
        executor = self._executor
        if executor is None:
            return
        try:
            await self._submit(self._close_sync)
        finally:
            self._executor = None
            executor.shutdown(wait=True)

    async def run(self, work: Callable[[sqlite_utils.Database], T]) -> T:
        """Run ``work`` with the database on the writer thread; translate sqlite errors to StorageError."""
        return await self._outcome(self.submit(work))

    def submit(self, work: Callable[[sqlite_utils.Database], T]) -> asyncio.Future[T]:
        """Hand ``work`` to the writer thread now, in order with every other call, and return its future (await it
        with ``result``); StorageError if the database is not open."""

        def call() -> T:
            if self._db is None:
                raise StorageError("database is not open", code="storage_closed")
            return work(self._db)

        return self._start(call)

    async def result(self, future: asyncio.Future[T]) -> T:
        """The outcome of submitted work (sqlite errors as StorageError); a cancelled caller leaves the work to run."""
        return await self._outcome(asyncio.shield(future))

    def _start(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        if self._executor is None:
            raise StorageError("database is not open", code="storage_closed")
        return asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _submit(self, fn: Callable[[], T]) -> T:
        return await self._outcome(self._start(fn))

    @staticmethod
    async def _outcome(future: Awaitable[T]) -> T:
        try:
            return await future
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        except OSError as exc:
            raise StorageError(f"database file error: {exc}", code="storage_io") from exc

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("database is not in WAL mode", extra={"journal_mode": mode})
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            if result != "ok":
                raise StorageError(f"integrity check failed: {result}", code="storage_corrupt")
            _migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._db = sqlite_utils.Database(conn)

    def _close_sync(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.conn.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def _migrate(conn: sqlite3.Connection) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise StorageError(
            f"database schema {version} is newer than this gateway ({len(MIGRATIONS)})", code="storage_too_new"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in filter(str.strip, script.split(";")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("database migrated", extra={"schema_version": number})


def _translate(exc: sqlite3.Error) -> StorageError:
    text = str(exc).lower()
    if "readonly" in text or "read-only" in text:
        return StorageError(f"database is read-only: {exc}", code="storage_readonly")
    if "full" in text or getattr(exc, "sqlite_errorcode", None) == errno.ENOSPC:
        return StorageError(f"disk full: {exc}", code="storage_full")
    if isinstance(exc, sqlite3.IntegrityError):
        return StorageError(f"constraint failed: {exc}", code="storage_constraint")
    return StorageError(f"database error: {exc}", code="storage_error")
