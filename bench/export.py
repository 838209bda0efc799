"""The data export's memory: ``python -m bench.export [--events N]`` streams a resident's export of a unit with N
history events and prints its peak traced memory beside the same rows read and serialised at once (the baseline,
measured in the same run) and their ratio. The export reads a page at a time, so its peak stays flat as N grows."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import sqlite_utils

from gateway.accounts import Account, AccountService, AccountStatus, Principal, Role, Session
from gateway.audit import AuditLog
from gateway.building import BuildingService
from gateway.clock import ManualClock
from gateway.privacy import PrivacyService
from gateway.privacy.export import SECTIONS, Subject, page
from gateway.storage import Database

__all__ = ["main", "measure"]

START = datetime(2026, 1, 1, tzinfo=UTC)
ACCOUNT = "a11ce0000000400080000000000000a1"


def _fill(db: sqlite_utils.Database, events: int) -> None:
    at = START.isoformat()
    conn = db.conn
    conn.execute("BEGIN")
    conn.execute("INSERT INTO properties VALUES ('p1', 'Elm Court', ?)", [at])
    conn.execute("INSERT INTO units VALUES ('u1', 'p1', '101', ?)", [at])
    conn.execute("INSERT INTO devices VALUES ('d1', 'light', 'fwsim', 'light', '1', ?)", [at])
    conn.execute(
        "INSERT INTO entities (key, device_id, component, kind, config, discovered_at) "
        "VALUES ('light/d1/light', 'd1', 'light', 'light', '{}', ?)",
        [at],
    )
    conn.execute("INSERT INTO bindings (device_id, unit_id, bound_at, bound_by) VALUES ('d1', 'u1', ?, 'x')", [at])
    conn.execute(
        "INSERT INTO accounts (id, username, role, property_id, unit_id, status, created_at, activated_at) "
        "VALUES (?, 'alice', 'resident', 'p1', 'u1', 'active', ?, ?)",
        [ACCOUNT, at, at],
    )
    conn.executemany(
        "INSERT INTO events (at, entity_key, type, data) VALUES (?, 'light/d1/light', 'state', ?)",
        (
            ((START + timedelta(seconds=30 * i)).isoformat(), json.dumps({"state": "ON" if i % 2 else "OFF"}))
            for i in range(events)
        ),
    )
    conn.execute("COMMIT")


def _principal(now: datetime) -> Principal:
    account = Account(
        id=ACCOUNT, username="alice", display_name=None, role=Role.RESIDENT, property_id="p1", unit_id="u1",
        status=AccountStatus.ACTIVE, status_reason=None, created_at=START, activated_at=START, ended_at=None,
    )  # fmt: skip
    session = Session(
        id="s1", account_id=ACCOUNT, client=None, created_at=now, last_used_at=now,
        expires_at=now + timedelta(days=1), revoked_at=None, revoked_reason=None,
    )  # fmt: skip
    return Principal(account, session)


async def measure(events: int, workdir: Path) -> dict[str, float]:
    """Peak traced memory (MiB) and seconds of the streamed export and of the all-at-once baseline."""
    clock = ManualClock(START + timedelta(seconds=30 * events + 60))
    async with Database(workdir / "export.sqlite3") as db:
        await db.run(partial(_fill, events=events))
        audit = AuditLog(db, clock)
        accounts = AccountService(db, clock, audit=audit)

        async def nothing() -> None:
            return None

        building = BuildingService(db, clock, nothing, audit=audit)

        async def settle(_actor: str) -> None:
            return None

        privacy = PrivacyService(db, clock, accounts, building, audit=audit, settle=settle, forget=lambda _: None)
        subject = Subject(ACCOUNT, f"account:{ACCOUNT}", "u1", START.isoformat(), None)
        history = next(s for s in SECTIONS if s.name == "device_history")

        tracemalloc.start()
        began = time.perf_counter()
        size = 0
        async for chunk in await privacy.export(_principal(clock.now())):
            size += len(chunk)
        streamed_s = time.perf_counter() - began
        streamed = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()

        tracemalloc.start()
        began = time.perf_counter()
        rows, _ = await db.run(partial(page, section=history, subject=subject, after=None, limit=events + 1))
        whole = len(json.dumps(rows))
        baseline_s = time.perf_counter() - began
        baseline = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return {
        "events": events,
        "export_bytes": size,
        "baseline_bytes": whole,
        "export_peak_mib": streamed / 2**20,
        "baseline_peak_mib": baseline / 2**20,
        "peak_ratio": streamed / baseline,
        "export_s": streamed_s,
        "baseline_s": baseline_s,
    }


def main() -> None:
    """Print the figures for ``--events`` (default 100,000: about 35 days of one device changing every 30 s)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        figures = asyncio.run(measure(args.events, Path(workdir)))
    print(f"export of {figures['events']:,} history events ({figures['export_bytes'] / 2**20:.1f} MiB of JSON)")
    print(f"  streamed: peak {figures['export_peak_mib']:.2f} MiB traced, {figures['export_s']:.2f} s")
    print(f"  baseline (all rows at once): peak {figures['baseline_peak_mib']:.2f} MiB, {figures['baseline_s']:.2f} s")
    print(f"  ratio streamed/baseline: {figures['peak_ratio']:.3f}")


if __name__ == "__main__":
    main()
