"""Writes the registry's changes to SQLite in batches, on an interval and at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import sqlite_utils

from devices import EntityState

from ..errors import StorageError
from ..storage import Database, DeviceRow, EntityRow, EventRow
from ..storage.records import EntityStateRow, write_batch
from ..storage.staging import MERGE_ROWS, merge_staged
from .entity import Entity, StateError
from .journal import JournalEvent, StateData
from .registry import Registry

__all__ = [
    "Batch",
    "PendingChanges",
    "Persister",
    "Reported",
    "device_row",
    "entity_row",
    "event_row",
    "write_batch_rows",
]

log = logging.getLogger(__name__)


class Reported(NamedTuple):
    """What an entity's reports last set, taken on the event loop (references only: each value is immutable and
    replaced, never changed in place); its row is built in the writer thread. A tuple: one is taken per changed
    entity per flush, at half the cost of a frozen dataclass."""

    entity: Entity
    key: str
    state: EntityState | None
    state_at: datetime | None
    state_error: StateError | None
    available: bool | None
    availability_at: datetime | None
    last_seen: datetime | None

    @classmethod
    def of(cls, entity: Entity) -> Reported:
        """``entity``'s reported values as they are now."""
        e = entity
        return cls(e, e.id, e.state, e.state_at, e.state_error, e.available, e.availability_at, e.last_seen)

    def row(self, serialised: Mapping[int, str] | None = None) -> EntityStateRow:
        """The columns to update (serialising the state: the costly part, kept off the event loop), taking the
        state's JSON and its time's text from ``serialised`` (by ``id`` of the object, alive meanwhile) when its
        event already made them."""
        known = serialised or {}
        error = self.state_error
        state_at = _iso(self.state_at, known)
        return EntityStateRow(
            key=self.key,
            state=None if self.state is None else known.get(id(self.state)) or self.state.model_dump_json(),
            state_at=state_at,
            state_error=error.code if error else None,
            state_error_at=error.at.isoformat() if error else None,
            available=None if self.available is None else int(self.available),
            availability_at=_iso(self.availability_at, known),
            # the same instant as the state's when a report set both
            last_seen=state_at if self.last_seen is self.state_at else _iso(self.last_seen, known),
        )


@dataclass(slots=True)
class Batch:
    """Rows for one transaction, with the entities whose rows they are (to retry a failed write)."""

    devices: list[DeviceRow] = field(default_factory=list)
    entities: list[Entity] = field(default_factory=list)
    rows: list[EntityRow] = field(default_factory=list)
    events: list[JournalEvent] = field(default_factory=list)  # rows built by the writer (event_row)
    reported: list[Reported] = field(default_factory=list)  # stored entities whose reports alone changed

    def __bool__(self) -> bool:
        return bool(self.devices or self.rows or self.events or self.reported)


class PendingChanges:
    """Listens to the registry's changes and keeps what the next flush must write (a ChangeListener).

    An entity whose row exists (``is_stored``) and whose reports alone changed (state, availability, last seen)
    gets only those columns updated; a discovery, a removal, or an entity without a row yet gets its whole row.
    """

    def __init__(
        self, is_stored: Callable[[str], bool] = lambda _key: False, on_change: Callable[[], None] = lambda: None
    ) -> None:
        """``on_change`` is called with every change (the persister's cue that a flush is due)."""
        self._is_stored = is_stored
        self._on_change = on_change
        self._devices: dict[str, DeviceRow] = {}
        self._entities: dict[str, Entity] = {}  # entity id -> the entity whose whole record changed
        self._reported: dict[str, Entity] = {}  # entity id -> the entity whose reported columns changed
        self._events: list[JournalEvent] = []

    def take(self) -> Batch:
        """What changed since the last call: whole entity rows are built now, from the entities as they are;
        reported columns are snapshotted now and turned into row values by the writer."""
        whole = self._entities
        reported: list[Reported] = []
        for key, entity in self._reported.items():
            if key in whole:
                continue
            if self._is_stored(key):
                reported.append(Reported.of(entity))
            else:
                whole[key] = entity
        entities = [whole[k] for k in sorted(whole)]
        batch = Batch(list(self._devices.values()), entities, [entity_row(e) for e in entities], self._events, reported)
        self._devices, self._entities, self._reported, self._events = {}, {}, {}, []
        return batch

    def restore(self, batch: Batch) -> None:
        """Put back a batch a failed write did not persist, so the next flush retries it (newer changes win)."""
        for device in batch.devices:
            self._devices.setdefault(device.id, device)
        for entity in batch.entities:
            self._entities.setdefault(entity.id, entity)
        for snapshot in batch.reported:
            self._reported.setdefault(snapshot.key, snapshot.entity)
        self._events = batch.events + self._events

    # --- ChangeListener ---------------------------------------------------------------------------

    def on_discovered(self, entity: Entity, at: datetime) -> None:
        """Write the entity and (again) its device."""
        self._devices[entity.device_id] = device_row(entity, at)
        self._entities[entity.id] = entity
        self._on_change()

    def on_touched(self, entity: Entity) -> None:
        """Write the entity's reported columns."""
        self._reported[entity.id] = entity
        self._on_change()

    def on_removed(self, entity: Entity) -> None:
        """Write the entity (as removed)."""
        self._entities[entity.id] = entity
        self._on_change()

    def on_state(self, entity: Entity) -> None:
        """Write the entity's reported columns."""
        self._reported[entity.id] = entity
        self._on_change()

    def on_availability(self, entity: Entity) -> None:
        """Write the entity's reported columns."""
        self._reported[entity.id] = entity
        self._on_change()

    def on_event(self, event: JournalEvent) -> None:
        """Append the event."""
        self._events.append(event)  # its row is built in the writer thread
        self._on_change()


class Persister:
    """Flushes dirty entities and queued events; a failed write is kept and retried, never dropped."""

    def __init__(self, registry: Registry, db: Database, interval: float, *, merge_rows: int = MERGE_ROWS) -> None:
        """``merge_rows``: appended rows (``storage.staging``) that make a merge due after a flush."""
        self._stored: set[str] = set()  # entity keys that have a row in the database
        # Set by the first change after a flush: idle, the persister does not wake at all.
        self._due = asyncio.Event()
        self._soon = asyncio.Event()
        self._pending = PendingChanges(self._stored.__contains__, self._due.set)
        registry.add_change_listener(self._pending)
        self._db = db
        self._interval = interval
        self.last_error: StorageError | None = None
        self._writers: list[Callable[[], Awaitable[bool]]] = []
        self._merge_rows = merge_rows
        self._staged = 0  # rows appended since the last merge (storage.staging), as this run counted them

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

    def flush_soon(self) -> None:
        """What changed came as a batch (a held read): flush at the loop's next turn, not an interval later."""
        if self._due.is_set():
            self._soon.set()

    async def run(self) -> None:
        """Flush ``interval`` seconds after the first change since the last flush (sooner when told to), until
        cancelled; a failed write is tried again every interval."""
        while True:
            await self._due.wait()
            if not self._soon.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._interval):
                        await self._soon.wait()
            self._due.clear()
            self._soon.clear()
            try:
                await self.flush()
            except StorageError:  # logged, and kept for the next attempt
                self._due.set()
                continue
            await self.merge_if_due()

    async def merge_if_due(self) -> None:
        """Merge when ``merge_rows`` rows or more were appended since the last merge."""
        if self._staged >= self._merge_rows:
            await self.merge()

    async def merge(self) -> None:
        """Merge the appended rows into their tables now (at start, at stop, and every ``MERGE_ROWS``); a refusal
        is logged and the rows stay appended (read as they are, merged at the next attempt)."""
        # Counted afresh either way: after a refusal (a nearly full disk has room for appends before a merge's
        # copy), the next attempt waits for as many rows again rather than following every flush.
        self._staged = 0
        try:
            moved = await self._db.run(merge_staged)
        except StorageError as exc:
            log.warning("appended history not merged yet: %s", exc, extra={"code": exc.code})
            return
        log.debug("appended history merged", extra={"rows": moved})

    async def _write(self, batch: Batch) -> None:
        """Write one batch of the registry's changes; StorageError with the batch put back."""
        # Submitted at once, so that it goes before anything handed to the writer after it (a command's row
        # references the entity this batch may be the first to write).
        try:
            write = self._db.submit(functools.partial(write_batch_rows, batch=batch))
            await self._db.result(write)
        except asyncio.CancelledError:  # only the await is cancelled, so the batch was submitted
            # Stopping while the batch waits for the writer thread: cancelling there would drop it unwritten, and
            # putting it back could write it twice; see it through (the final flush comes next), then stop.
            await asyncio.wait([write])
            if write.exception() is not None:
                self._pending.restore(batch)
            raise
        except StorageError:
            self._pending.restore(batch)
            raise
        self._stored.update(r.key for r in batch.rows)
        self._staged += len(batch.events) + len(batch.reported)

    async def flush(self) -> None:
        """Write what changed since the last flush; raise StorageError (changes kept) if the write fails."""
        batch = self._pending.take()
        wrote = bool(batch)
        try:
            if wrote:
                await self._write(batch)
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


def device_row(entity: Entity, at: datetime) -> DeviceRow:
    """The row of ``entity``'s device, first seen ``at`` (kept if the device has a row already)."""
    info = entity.config.device
    return DeviceRow(
        id=entity.device_id,
        name=info.name if info else None,
        manufacturer=info.manufacturer if info else None,
        model=info.model if info else None,
        sw_version=info.sw_version if info else None,
        first_seen=at.isoformat(),
    )


def entity_row(entity: Entity) -> EntityRow:
    """``entity``'s row as it is now."""
    return EntityRow(
        key=entity.id,
        device_id=entity.device_id,
        component=str(entity.component),
        kind=str(entity.kind),
        # A removed entity gives its unique_id up (the index is unique): the same device may come back under
        # another discovery topic, and its new row must not collide with the old one.
        unique_id=None if entity.removed_at else entity.config.unique_id,
        name=entity.name,
        config=entity.raw_config,
        discovered_at=entity.discovered_at.isoformat(),
        removed_at=entity.removed_at.isoformat() if entity.removed_at else None,
        state=entity.state_json(),
        state_at=entity.state_at.isoformat() if entity.state_at else None,
        state_error=entity.state_error.code if entity.state_error else None,
        state_error_at=entity.state_error.at.isoformat() if entity.state_error else None,
        available=None if entity.available is None else int(entity.available),
        availability_at=entity.availability_at.isoformat() if entity.availability_at else None,
        last_seen=entity.last_seen.isoformat() if entity.last_seen else None,
    )


def _iso(at: datetime | None, known: Mapping[int, str] | None = None) -> str | None:
    if at is None:
        return None
    text = None if known is None else known.get(id(at))
    return at.isoformat() if text is None else text


def event_row(event: JournalEvent, serialised: dict[int, str] | None = None) -> EventRow:
    """``event``'s row; a state event's data is the state's JSON, noted with its time's text in ``serialised`` (by
    ``id`` of each object) for the entity's row to reuse."""
    data, at = event.data, event.at.isoformat()
    if isinstance(data, StateData):
        text = data.json()
        if serialised is not None:
            serialised[id(data.state)] = text
            serialised[id(event.at)] = at
        return EventRow(at, event.entity_id, event.type, text)
    return EventRow(at, event.entity_id, event.type, dict(data))


def write_batch_rows(db: sqlite_utils.Database, *, batch: Batch) -> None:
    """The writer thread's part of a flush: the batch's event and reported-column rows built (each state
    serialised once, for its event and its entity's row alike) and written in one transaction."""
    # The states and times stay referenced by the batch throughout: their ids stay theirs.
    serialised: dict[int, str] = {}
    events = [event_row(e, serialised) for e in batch.events]
    write_batch(db, batch.devices, batch.rows, events, [r.row(serialised) for r in batch.reported])
