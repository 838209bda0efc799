"""The database's storage trouble: set by a write refused for want of room, ended by itself once room returns."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.errors import StorageError
from gateway.storage import Database
from gateway.storage.retry import StorageRetry
from tests.support.polling import eventually


async def test_a_full_database_is_in_trouble_until_the_probe_finds_room(tmp_path: Path) -> None:
    async with Database(tmp_path / "db.sqlite3", probe_seconds=0.05) as db:
        await db.run(lambda d: d.execute("CREATE TABLE filler (pad BLOB)"))
        pages = await db.run(lambda d: d.execute("PRAGMA page_count").fetchone()[0])
        await db.run(lambda d: d.execute(f"PRAGMA max_page_count = {pages}"))
        with pytest.raises(StorageError) as refused:
            await db.run(lambda d: d.execute("INSERT INTO filler VALUES (zeroblob(100000))"))
        assert refused.value.code == "storage_full"
        assert db.trouble is not None and db.trouble.code == "storage_full"
        assert await db.run(lambda d: d.execute("SELECT count(*) FROM filler").fetchone()[0]) == 0  # reads go on
        await db.run(lambda d: d.execute(f"PRAGMA max_page_count = {pages + 1000}"))
        await eventually(lambda: db.trouble is None, timeout=2.0, what="the probe finding room")
        tables = await db.run(lambda d: d.table_names())
        assert "storage_probe" not in tables  # the probe leaves nothing behind


async def test_a_read_only_database_is_out_of_trouble_with_the_next_write(tmp_path: Path) -> None:
    async with Database(tmp_path / "db.sqlite3", probe_seconds=60) as db:
        await db.run(lambda d: d.execute("CREATE TABLE t (x)"))
        await db.run(lambda d: d.execute("PRAGMA query_only = ON"))
        with pytest.raises(StorageError):
            await db.run(lambda d: d.execute("INSERT INTO t VALUES (1)"))
        assert db.trouble is not None and db.trouble.code == "storage_readonly"
        await db.run(lambda d: d.execute("PRAGMA query_only = OFF"))
        await db.run(lambda d: d.execute("SELECT * FROM t").fetchall())
        assert db.trouble is not None  # a read proves nothing
        await db.run(lambda d: d.execute("INSERT INTO t VALUES (1)"))
        assert db.trouble is None
        await db.wait_recovered()


def test_storage_retry_backs_off_to_a_cap_and_logs_without_flooding(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    retry = StorageRetry(
        logging.getLogger("t"), "cannot write", initial=1, cap=8, log_every=60, monotonic=lambda: now[0]
    )
    full = StorageError("disk full", code="storage_full")
    with caplog.at_level(logging.INFO, "t"):
        delays = [retry.failed(full) for _ in range(6)]
        assert delays == [1, 2, 4, 8, 8, 8]
        assert len(caplog.records) == 1  # the first only
        retry.failed(StorageError("read-only", code="storage_readonly"))  # a new cause is said
        now[0] = 61
        retry.failed(StorageError("read-only", code="storage_readonly"))  # and a reminder a minute later
        retry.succeeded()
    assert [r.levelname for r in caplog.records] == ["ERROR", "ERROR", "ERROR", "INFO"]
    assert retry.failures == 0 and retry.delay() == 0
