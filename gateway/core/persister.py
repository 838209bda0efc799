"""Writes the registry's changes to SQLite in batches, on an interval and at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable

from ..errors import StorageError
from ..storage import Database, DeviceRow, EntityRow, EventRow
from ..storage.records import write_batch
from .registry import Registry

__all__ = ["Persister"]

log = logging.getLogger(__name__)


class Persister:
    """Flushes dirty entities and queued events; a failed write is kept and retried, never dropped."""

    def __init__(self, registry: Registry, db: Database, interval: float) -> None:
        self._registry = registry
        self._db = db
        self._interval = interval
        self.last_error: StorageError | None = None
        self._writers: list[Callable[[], Awaitable[bool]]] = []
        self._stored: set[str] = set()  # entity keys that have a row in the database

    def note_stored(self, keys: Iterable[str]) -> None:
        """These entities already have rows (loaded at start)."""
        self._stored.update(keys)

    async def ensure_stored(self, entity_id: str) -> None:
        """Flush now if ``entity_id`` has no row yet (a command row references it); StorageError as flush."""
        if entity_id not in self._stored:
            await self.flush()

    def also_write(self, writer: Callable[[], Awaitable[bool]]) -> None:
        """Run ``writer`` with every flush, after the registry's changes: it writes what a failed write held back,
        returns whether there was anything, and raises StorageError (keeping it) when the database refuses."""
        self._writers.append(writer)

    async def run(self) -> None:
        """Flush every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            with contextlib.suppress(StorageError):  # logged, and kept for the next attempt
                await self.flush()

    async def _write(self, devices: list[DeviceRow], rows: list[EntityRow], events: list[EventRow]) -> None:
        """Write one batch taken from the registry; StorageError with the batch put back."""
        # Submitted at once, so that it goes before anything handed to the writer after it (a command's row
        # references the entity this batch may be the first to write).
        try:
            write = self._db.submit(lambda db: write_batch(db, devices, rows, events))
            await self._db.result(write)
        except asyncio.CancelledError:  # only the await is cancelled, so the batch was submitted
            # Stopping while the batch waits for the writer thread: cancelling there would drop it unwritten, and
            # putting it back could write it twice; see it through (the final flush comes next), then stop.
            await asyncio.wait([write])
            if write.exception() is not None:
                self._registry.restore_changes(devices, rows, events)
            raise
        except StorageError:
            self._registry.restore_changes(devices, rows, events)
            raise
        self._stored.update(r.key for r in rows)

    async def flush(self) -> None:
        """Write what changed since the last flush; raise StorageError (changes kept) if the write fails."""
        devices, rows, events = self._registry.take_changes()
        wrote = bool(devices or rows or events)
        try:
            if wrote:
                await self._write(devices, rows, events)
            for writer in self._writers:
                wrote = await writer() or wrote
        except StorageError as exc:
            if self.last_error is None or self.last_error.code != exc.code:
                log.error(  # noqa: TRY400 - the cause is the message; no traceback needed
                    "cannot persist device state: %s", exc, extra={"code": exc.code}
                )
            self.last_error = exc
            raise
        if not wrote:
            return
        if self.last_error is not None:
            log.info("persisting device state again")
        self.last_error = None
