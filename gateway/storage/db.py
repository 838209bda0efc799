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

__all__ = ["TROUBLE_CODES", "Database"]

log = logging.getLogger(__name__)
T = TypeVar("T")
# Failures of the medium, not of the request: the database cannot take writes until space or access returns.
TROUBLE_CODES = frozenset({"storage_full", "storage_readonly", "storage_io"})
PROBE_SECONDS = 5.0
_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_FULL = 8, 10, 13


class Database:
    """Owns the SQLite connection; every call runs on one dedicated thread, off the event loop.

    sqlite-utils is synchronous, so the event loop hands work to this thread and awaits it; with a
    single thread there is exactly one writer and no lock contention inside the process.
    """

    def __init__(self, path: Path, *, probe_seconds: float = PROBE_SECONDS) -> None:
        self.path = path
        self.probe_seconds = probe_seconds
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite_utils.Database | None = None
        self._trouble: StorageError | None = None
        self._recovered = asyncio.Event()
        self._probe: asyncio.Task[None] | None = None

    @property
    def trouble(self) -> StorageError | None:
        """The failure that put the database in storage trouble (full, read-only, I/O), or None while writes work.

        Set by any call failing that way; cleared by the next call that writes (for a full disk: one that grows the
        file), or by the probe write (which needs fresh pages) made every ``probe_seconds`` while it lasts, so it
        ends by itself when space or access returns."""
        return self._trouble

    async def wait_recovered(self) -> None:
        """Return once the database is out of storage trouble (at once if it is not in any)."""
        while self._trouble is not None:
            await self._recovered.wait()

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
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.cancel()
            await asyncio.wait([probe])
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

        loop = asyncio.get_running_loop()

        def call() -> T:
            db = self._db
            if db is None:
                raise StorageError("database is not open", code="storage_closed")
            trouble = self._trouble
            if trouble is None:
                return work(db)
            changes, pages = db.conn.total_changes, _page_count(db)
            result = work(db)
            # A write that went through ends read-only or I/O trouble; a full disk only one that needed new room
            # (rewriting a row in place fits a full disk, and would have the API take writes that cannot fit).
            if db.conn.total_changes != changes and (trouble.code != "storage_full" or _page_count(db) > pages):
                # Said to the loop before the caller's future completes (both go through the loop's queue in order).
                loop.call_soon_threadsafe(self._clear_trouble, "a write went through")
            return result

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

    async def _outcome(self, future: Awaitable[T]) -> T:
        try:
            return await future
        except sqlite3.Error as exc:
            raise self._noted(_translate(exc)) from exc
        except OSError as exc:
            raise self._noted(StorageError(f"database file error: {exc}", code="storage_io")) from exc

    # --- storage trouble ------------------------------------------------------------------------------

    def _noted(self, error: StorageError) -> StorageError:
        if error.code in TROUBLE_CODES:
            self._set_trouble(error)
        return error

    def _set_trouble(self, error: StorageError) -> None:
        if self._trouble is None or self._trouble.code != error.code:
            log.error("database in storage trouble: %s", error, extra={"code": error.code})
        self._trouble = error
        self._recovered.clear()
        if self._probe is None and self._executor is not None:
            self._probe = asyncio.get_running_loop().create_task(self._probe_until_clear(), name="database-probe")

    def _clear_trouble(self, how: str) -> None:
        if self._trouble is None:
            return
        log.info("database out of storage trouble: %s", how, extra={"code": self._trouble.code})
        self._trouble = None
        self._recovered.set()

    async def _probe_until_clear(self) -> None:
        try:
            while self._trouble is not None:
                await asyncio.sleep(self.probe_seconds)
                if self._trouble is None or self._executor is None:
                    break
                try:
                    await self._submit(self._probe_sync)
                except StorageError:
                    continue  # still in trouble (set again with the probe's own failure)
                self._clear_trouble("the probe write went through")
        finally:
            self._probe = None

    def _probe_sync(self) -> None:
        # A write that needs fresh pages and is committed, yet leaves nothing behind: the table is made, filled
        # past a page, and dropped in one transaction (its pages go to the free list for the next writer).
        db = self._db
        if db is None:
            raise StorageError("database is not open", code="storage_closed")
        conn = db.conn
        page = int(conn.execute("PRAGMA page_size").fetchone()[0])
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE storage_probe (pad BLOB)")
            conn.execute("INSERT INTO storage_probe VALUES (zeroblob(?))", [2 * page])
            conn.execute("DROP TABLE storage_probe")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            _incremental_vacuum(conn)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("database is not in WAL mode", extra={"journal_mode": mode})
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            # Deleted and rewritten rows are zeroed rather than left in free space: an erased person, a purged
            # history or an old token digest must not stay readable in the file (ETSI EN 303 645, deletion).
            conn.execute("PRAGMA secure_delete = ON")
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


def _page_count(db: sqlite_utils.Database) -> int:
    return int(db.conn.execute("PRAGMA page_count").fetchone()[0])


def _incremental_vacuum(conn: sqlite3.Connection) -> None:
    """Have the file give freed pages back (``PRAGMA incremental_vacuum``, run by the purge): on a new file the
    setting just takes; an older file is rebuilt once with VACUUM (needs room for a copy; without it the gateway
    runs on and tries again at the next start)."""
    if int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) == 2:
        return
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
        return  # nothing yet: the first table is made with it
    log.info("database converting to incremental auto-vacuum (a VACUUM, once)")
    try:
        conn.execute("VACUUM")
    except sqlite3.Error as exc:
        log.warning("database not converted to incremental auto-vacuum: %s", exc)


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
    primary = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if primary == _SQLITE_READONLY or "readonly" in text or "read-only" in text:
        return StorageError(f"database is read-only: {exc}", code="storage_readonly")
    if primary == _SQLITE_FULL or "full" in text or getattr(exc, "sqlite_errorcode", None) == errno.ENOSPC:
        return StorageError(f"disk full: {exc}", code="storage_full")
    if primary == _SQLITE_IOERR or "disk i/o error" in text:
        return StorageError(f"disk I/O error: {exc}", code="storage_io")
    if isinstance(exc, sqlite3.IntegrityError):
        return StorageError(f"constraint failed: {exc}", code="storage_constraint")
    return StorageError(f"database error: {exc}", code="storage_error")
