"""A full database: the purge thins the oldest history at once, the writes go on, and the gateway never stops."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from functools import partial
from pathlib import Path

import pytest

from gateway.audit import AuditLog
from gateway.clock import ManualClock
from gateway.config import PurgeSettings
from gateway.errors import StorageError
from gateway.retention import RetentionService
from gateway.storage import Database, DeviceRow, EntityRow, EventRow
from gateway.storage.records import write_batch
from tests.fixtures.databases import make
from tests.support.polling import eventually

KEY = "light.full.light"


async def test_on_a_full_disk_the_oldest_state_history_goes_and_writes_resume(tmp_path: Path) -> None:
    clock = ManualClock()
    at = clock.now().isoformat()
    device = DeviceRow("full", None, None, None, None, at)
    entity = EntityRow(
        KEY, "full", "light", "light", None, None, "{}", at, None, None, None, None, None, None, None, None
    )

    def changes(n: int) -> list[EventRow]:
        return [EventRow(at, KEY, "state", {"on": True, "pad": "x" * 200}) for _ in range(n)]

    path = tmp_path / "db.sqlite3"
    # the purge's tick is an hour: it is the full disk that has it run, at the storage probe's pace
    settings = PurgeSettings(tick_seconds=3600, pause_seconds=0)
    async with (
        Database(path, probe_seconds=0.05) as db,
        RetentionService(db, clock, AuditLog(db, clock), settings) as keeper,
    ):
        await eventually(lambda: keeper.last_purge is not None, what="the pass at start")
        await db.run(partial(write_batch, devices=[device], entities=[entity], events=changes(5000)))
        pages = await db.run(lambda d: d.execute("PRAGMA page_count").fetchone()[0])
        await db.run(lambda d: d.execute(f"PRAGMA max_page_count = {pages + 50}"))  # the disk is nearly full
        with pytest.raises(StorageError) as refused:
            for _ in range(1000):  # small writes, until not even the storage probe fits
                await db.run(partial(write_batch, devices=[], entities=[], events=changes(5)))
        assert refused.value.code == "storage_full"
        stored = await db.run(lambda d: d.execute("SELECT count(*), min(id) FROM all_events").fetchone())

        await eventually(lambda: db.trouble is None, timeout=10, what="room made by thinning the history")
        await db.run(partial(write_batch, devices=[], entities=[], events=changes(100)))  # writes go on
        count, oldest = await db.run(lambda d: d.execute("SELECT count(*), min(id) FROM all_events").fetchone())
    # nothing was 30 days old: only thinning for room removed them, the oldest first
    assert count < stored[0] + 100 and oldest > stored[1]


async def test_an_older_database_is_converted_to_incremental_vacuum_once_at_start(tmp_path: Path) -> None:
    copy = tmp_path / "old.sqlite3"
    shutil.copyfile(make.path_of(9), copy)
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (0,)  # as every gateway before retention made it
    async with Database(copy):
        pass
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'events_type'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM accounts").fetchone()[0] > 0, "nothing lost"
