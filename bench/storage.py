"""``python -m bench.storage``: the database of a realistic building in steady state, and what a state change costs.

Two parts, both in one process on the gateway's own storage code (the single writer, the persister's write, the
retention service), with an injectable clock that runs far faster than the wall clock:

1. Write cost: the same state changes written in the persister's batches (one transaction per 0.2 s flush, appended
   and merged every ``MERGE_ROWS`` rows as the persister does) to a
   database with the ``events_type`` index that migration 10 drops (the baseline, as every database was before)
   and to one without it; bytes and microseconds per change, each with its ratio to the baseline.
2. Steady state: the building (2,000 devices, each reporting a change every 30 s, and a command per unit every
   10 minutes) runs for some simulated hours with a retention of one "day" shortened to ``--day-minutes``; the
   purge runs every simulated 5 minutes. The database's size is printed as it goes: it grows until the retention
   is reached, then stays flat (the last figure is the ratio of the final size to the size when retention was
   first reached).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

import sqlite_utils

from gateway.audit import AuditLog
from gateway.clock import ManualClock
from gateway.config import PurgeSettings
from gateway.retention import Category, RetentionService
from gateway.retention.store import sizes
from gateway.storage import CommandRow, Database, DeviceRow, EntityRow, EventRow
from gateway.storage.records import EntityStateRow, insert_command, update_command, write_batch
from gateway.storage.staging import MERGE_ROWS, merge_staged

__all__ = ["main"]

FLUSH = timedelta(seconds=0.2)  # the persister writes every 0.2 s (state_flush_interval)
TICK = timedelta(minutes=5)
_CONFIG = json.dumps(
    {
        "name": None,
        "state_topic": "homeassistant/light/u101-light/state",
        "command_topic": "homeassistant/light/u101-light/set",
        "availability_topic": "homeassistant/light/u101-light/availability",
        "schema": "json",
        "brightness": True,
        "supported_color_modes": ["brightness"],
        "unique_id": "u101-light",
        "device": {"identifiers": ["u101-light"], "name": "u101 light", "model": "fwsim dimmer"},
    }
)


@dataclass(frozen=True, slots=True)
class Building:
    """The building's shape: devices (one entity each), units, how often each device changes, commands per unit."""

    devices: int
    change_seconds: float
    command_minutes: float

    @property
    def units(self) -> int:
        """Five devices per unit."""
        return max(self.devices // 5, 1)

    def key(self, n: int) -> str:
        """Entity key of device ``n``."""
        return f"light.dev{n:05d}.light"


def _rows(building: Building, at: str) -> tuple[list[DeviceRow], list[EntityRow]]:
    devices = [DeviceRow(f"dev{n:05d}", f"device {n}", "fwsim", "dimmer", "1.0", at) for n in range(building.devices)]
    entities = [_entity(building, n, at, None) for n in range(building.devices)]
    return devices, entities


def _entity(building: Building, n: int, at: str, state: str | None) -> EntityRow:
    key = building.key(n)
    return EntityRow(
        key, f"dev{n:05d}", "light", "light", key, None, _CONFIG, at, None, state, at, None, None, 1, at, at
    )


def _state(i: int) -> dict[str, object]:
    return {"on": i % 2 == 0, "brightness": (i * 37) % 256, "color_mode": "brightness", "color_temp": None}


class Writer:
    """Writes the building's state changes as the persister does: per flush, each changed entity's reported
    columns and one event each, appended in one transaction, merged every ``MERGE_ROWS`` appended rows."""

    def __init__(self, building: Building, db: Database, clock: ManualClock) -> None:
        self.building = building
        self.db = db
        self.clock = clock
        self.next_device = 0
        self.changes = 0
        self.commands = 0
        self.write_cpu = 0.0  # CPU seconds the writer thread spent in the state writes and their merges
        self._staged = 0
        self._carry = 0.0
        self._command_carry = 0.0

    async def setup(self) -> None:
        """Store the devices and entities once."""
        devices, entities = _rows(self.building, self.clock.now().isoformat())
        await self.db.run(partial(write_batch, devices=devices, entities=entities, events=[]))

    async def advance(self, span: timedelta, flush: timedelta = FLUSH) -> None:
        """Let ``span`` of simulated time pass, writing every flush's changes (and the commands due)."""
        end = self.clock.now() + span
        per_flush = self.building.devices * flush.total_seconds() / self.building.change_seconds
        commands_per_flush = self.building.units * flush.total_seconds() / (self.building.command_minutes * 60)
        while self.clock.now() < end:
            self.clock.advance(flush)
            self._carry += per_flush
            count, self._carry = int(self._carry), self._carry - int(self._carry)
            at = self.clock.now().isoformat()
            reported, events = [], []
            for _ in range(count):
                n = self.next_device
                self.next_device = (n + 1) % self.building.devices
                state = _state(self.changes)
                self.changes += 1
                reported.append(EntityStateRow(json.dumps(state), at, None, None, 1, at, at, self.building.key(n)))
                events.append(EventRow(at, self.building.key(n), "state", state))
            if events:
                batch = partial(write_batch, devices=[], entities=[], events=events, states=reported)
                self.write_cpu += await self.db.run(partial(_thread_cpu, batch))
                self._staged += len(events) + len(reported)
            if self._staged >= MERGE_ROWS:
                await self.merge()
            self._command_carry += commands_per_flush
            while self._command_carry >= 1:
                self._command_carry -= 1
                await self._command(at)

    async def merge(self) -> None:
        """Merge what was appended (as the persister does every ``MERGE_ROWS`` rows and at stop)."""
        self.write_cpu += await self.db.run(partial(_thread_cpu, merge_staged))
        self._staged = 0

    async def _command(self, at: str) -> None:
        n = self.commands * 5 % self.building.devices
        row = CommandRow(
            f"cmd{self.commands:09d}",
            self.building.key(n),
            "account:bench",
            '{"on":true}',
            "pending",
            None,
            None,
            at,
            None,
        )
        self.commands += 1
        await self.db.run(partial(insert_command, row=row))
        await self.db.run(
            partial(update_command, command_id=row.id, status="confirmed", reason=None, detail=None, finished_at=at)
        )


def _thread_cpu(work: Callable[[sqlite_utils.Database], object], db: sqlite_utils.Database) -> float:
    # the writer thread's own CPU time for the write: SQLite's work, not the loop's nor another process's
    began = time.thread_time()
    work(db)
    return time.thread_time() - began


def _used(db: sqlite_utils.Database) -> int:
    page = int(db.execute("PRAGMA page_size").fetchone()[0])
    pages = int(db.execute("PRAGMA page_count").fetchone()[0])
    free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
    return (pages - free) * page


def _count(db: sqlite_utils.Database, table: str) -> int:
    return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


@dataclass(frozen=True, slots=True)
class WriteCost:
    """Bytes (used pages) and the writer thread's CPU microseconds per state change."""

    bytes_per_change: float
    us_per_change: float


async def write_cost(
    workdir: Path, building: Building, changes: int, *, with_type_index: bool, attempt: int = 0
) -> WriteCost:
    """Write ``changes`` state changes in flush-sized batches; the growth of the used pages and the time, per change."""
    path = workdir / f"cost-{'index' if with_type_index else 'now'}-{attempt}.sqlite3"
    clock = ManualClock()
    async with Database(path) as db:
        if with_type_index:  # the schema before migration 10
            await db.run(lambda d: d.execute("CREATE INDEX events_type ON events(type)"))
        writer = Writer(building, db, clock)
        await writer.setup()
        await writer.advance(timedelta(seconds=building.change_seconds))  # every entity row has a state
        await writer.merge()
        before, done = await db.run(_used), writer.changes
        span = timedelta(seconds=changes * building.change_seconds / building.devices)
        cpu = writer.write_cpu
        await writer.advance(span)
        await writer.merge()  # every change is merged in the end: its cost is part of the change's
        seconds = writer.write_cpu - cpu
        after = await db.run(_used)
        written = writer.changes - done
    return WriteCost((after - before) / written, seconds * 1e6 / written)


@dataclass(frozen=True, slots=True)
class Sample:
    """The database at one simulated moment."""

    hours: float
    events: int
    commands: int
    used_bytes: int
    file_bytes: int  # the database file and its WAL


async def steady_state(
    workdir: Path, building: Building, hours: float, day: timedelta
) -> tuple[list[Sample], float, float]:
    """Run the building for ``hours`` with a retention day of ``day``, purging every 5 simulated minutes."""
    path = workdir / "steady.sqlite3"
    clock = ManualClock()
    samples: list[Sample] = []
    purge_seconds, longest = 0.0, 0.0
    async with Database(path) as db:
        keeper = RetentionService(db, clock, AuditLog(db, clock), PurgeSettings(pause_seconds=0), day=day)
        await keeper.load()
        history = {Category.EVENTS: 1, Category.COMMANDS: 1, Category.NOTIFICATIONS: 1}
        await keeper.update(None, days=history)
        writer = Writer(building, db, clock)
        await writer.setup()
        start = clock.now()
        while clock.now() - start < timedelta(hours=hours):
            await writer.advance(TICK, flush=timedelta(seconds=5))  # coarser batches: the same rows, faster
            began = time.perf_counter()
            report = await keeper.purge()
            longest = max(longest, report.longest_batch_seconds)
            purge_seconds += time.perf_counter() - began
            size = await db.run(partial(sizes, path=path))
            events, commands = await db.run(lambda d: (_count(d, "all_events"), _count(d, "commands")))
            elapsed = (clock.now() - start).total_seconds() / 3600
            samples.append(Sample(elapsed, events, commands, size.used_bytes, size.file_bytes + size.wal_bytes))
    return samples, purge_seconds, longest


def _mb(value: float) -> str:
    return f"{value / 1e6:,.1f} MB"


async def run(args: argparse.Namespace) -> int:
    """Both parts; print the figures (and write them as JSON with ``--out``)."""
    building = Building(args.devices, args.change_seconds, args.command_minutes)
    day = timedelta(minutes=args.day_minutes)
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        work = Path(tmp)
        print(
            f"building: {building.devices} devices, a change every {building.change_seconds:g} s each, "
            f"a command per unit every {building.command_minutes:g} min"
        )
        # alternated, the best of each kept: the machine is shared, and the slowest run says most about the others
        bases, nows = [], []
        for attempt in range(args.rounds):
            bases.append(await write_cost(work, building, args.changes, with_type_index=True, attempt=attempt))
            nows.append(await write_cost(work, building, args.changes, with_type_index=False, attempt=attempt))
        base = WriteCost(min(c.bytes_per_change for c in bases), min(c.us_per_change for c in bases))
        now = WriteCost(min(c.bytes_per_change for c in nows), min(c.us_per_change for c in nows))
        print(
            f"\nwrite cost per state change ({args.changes:,} changes, one transaction per 0.2 s flush; "
            f"best of {args.rounds} alternated runs)"
        )
        print(f"  {'':34} {'bytes':>9} {'ratio':>6} {'CPU µs':>9} {'ratio':>6}")
        print(
            f"  {'baseline: with events_type index':34} {base.bytes_per_change:9.1f} {1:6.2f} "
            f"{base.us_per_change:9.1f} {1:6.2f}"
        )
        print(
            f"  {'now: index dropped (migration 10)':34} {now.bytes_per_change:9.1f} "
            f"{now.bytes_per_change / base.bytes_per_change:6.2f} {now.us_per_change:9.1f} "
            f"{now.us_per_change / base.us_per_change:6.2f}"
        )

        started = time.perf_counter()
        samples, purge_seconds, longest = await steady_state(work, building, args.hours, day)
        wall = time.perf_counter() - started
    reached = next((s for s in samples if s.hours * 60 >= args.day_minutes + 5), samples[-1])
    last = samples[-1]
    print(
        f"\nsteady state: {args.hours:g} simulated hours in {wall:.1f} s, events and commands kept one retention "
        f"day = {args.day_minutes:g} simulated minutes, a purge every 5 simulated minutes"
    )
    print(f"  {'hours':>6} {'events':>10} {'commands':>9} {'used':>11} {'on disk':>11} {'vs reached':>11}")
    every = max(len(samples) // 12, 1)
    for s in samples[::every] + ([last] if (len(samples) - 1) % every else []):
        print(
            f"  {s.hours:6.2f} {s.events:10,} {s.commands:9,} {_mb(s.used_bytes):>11} {_mb(s.file_bytes):>11} "
            f"{s.file_bytes / reached.file_bytes:16.2f}"
        )
    flat = last.file_bytes / reached.file_bytes
    print(
        f"  size once retention was reached ({reached.hours:.2f} h): {_mb(reached.file_bytes)}; at the end: "
        f"{_mb(last.file_bytes)} (ratio {flat:.2f}); purge time {purge_seconds:.1f} s of {wall:.1f} s, the longest "
        f"single delete (the writer held) {longest * 1000:.1f} ms"
    )
    if args.out is not None:
        document = {
            "building": {"devices": building.devices, "change_seconds": building.change_seconds},
            "write_cost": {
                "baseline": {"bytes": base.bytes_per_change, "us": base.us_per_change},
                "now": {"bytes": now.bytes_per_change, "us": now.us_per_change},
                "bytes_ratio": now.bytes_per_change / base.bytes_per_change,
                "time_ratio": now.us_per_change / base.us_per_change,
            },
            "steady_state": {
                "day_minutes": args.day_minutes,
                "reached": reached.file_bytes,
                "final": last.file_bytes,
                "ratio": flat,
                "purge_seconds": purge_seconds,
                "longest_batch_ms": longest * 1000,
                "samples": [_sample(s) for s in samples],
            },
        }
        args.out.write_text(json.dumps(document, indent=2) + "\n")
    return 0


def _sample(s: Sample) -> dict[str, float | int]:
    return {"hours": s.hours, "events": s.events, "commands": s.commands, "used": s.used_bytes, "file": s.file_bytes}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.storage", description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=2000, help="devices, one entity each (default 2,000)")
    parser.add_argument("--change-seconds", type=float, default=30.0, help="each device changes this often (30)")
    parser.add_argument("--command-minutes", type=float, default=10.0, help="a command per unit this often (10)")
    parser.add_argument("--changes", type=int, default=20_000, help="write cost: state changes measured (20,000)")
    parser.add_argument("--rounds", type=int, default=3, help="write cost: alternated runs of each (3)")
    parser.add_argument("--hours", type=float, default=1.5, help="steady state: simulated hours (1.5)")
    parser.add_argument("--day-minutes", type=float, default=30.0, help="a retention day, simulated minutes (30)")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    if min(args.devices, args.changes, args.rounds) < 1 or min(args.hours, args.day_minutes, args.change_seconds) <= 0:
        parser.error("every number must be positive")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
