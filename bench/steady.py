"""The realistic steady-state run: every device reporting once per period (2,000 devices, every 30 s: ~67 msg/s) for
a long window (10 minutes by default), and what the gateway costs meanwhile: CPU per message and as a share of a
core, RSS at start and end and its drift per hour, database growth per state change (WAL included).

Each round's reports are spread evenly over the period (`blaster --spread`): a steady rate, as devices reporting
on their own schedules arrive, not one burst of a report per device each period.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .broker import BrokerUnderTest
from .footprint import cpu_seconds, rss_mb
from .gatewaydb import GatewayDb
from .load import reporters
from .refs import blaster, expected_changes, load_average
from .report import Figure

__all__ = ["RSS_DRIFT_MB_PER_HOUR", "STEADY_PERIOD", "SteadyPass", "db_bytes", "run_steady", "steady_figures"]

STEADY_PERIOD = 30.0  # seconds between two reports of one device
RSS_DRIFT_MB_PER_HOUR = 5.0  # the bench's own target: a gateway that runs for months must not grow
DB_BYTES_PER_CHANGE = 1024.0  # the bench's own target: a state change's row, its event and their index entries
CORE_SHARE = 2.0  # % of one core at the realistic rate, the bench's own target
REALISTIC_RATIO = 2.0  # CPU per message at the realistic rate, times the saturated cost (issue 18)
_SAMPLE = 5.0  # seconds between RSS samples


@dataclass
class SteadyPass:
    """What the gateway cost over one steady window."""

    devices: int
    period: float
    messages: int
    seconds: float
    cpu_s: float
    rss_start_mb: float
    rss_end_mb: float
    rss_max_mb: float
    db_start_bytes: int
    db_end_bytes: int
    state_changes: int
    lost: int
    load_start: float
    load_end: float

    @property
    def cpu_us_per_message(self) -> float:
        """CPU microseconds per message, idle work included."""
        return 1e6 * self.cpu_s / max(self.messages, 1)

    @property
    def core_percent(self) -> float:
        """CPU over the window as a percentage of one core."""
        return 100.0 * self.cpu_s / max(self.seconds, 1e-9)

    @property
    def rss_drift_mb_per_hour(self) -> float:
        """RSS at the end minus at the start, per hour of the window."""
        return (self.rss_end_mb - self.rss_start_mb) * 3600.0 / max(self.seconds, 1e-9)

    @property
    def db_bytes_per_change(self) -> float | None:
        """Database growth (main file + WAL + shared memory) per state change recorded."""
        return None if not self.state_changes else (self.db_end_bytes - self.db_start_bytes) / self.state_changes


def db_bytes(path: Path) -> int:
    """Bytes of the SQLite database on disk: the main file, its WAL and its shared-memory file."""
    total = 0
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            total += os.stat(f"{path}{suffix}").st_size
    return total


async def run_steady(
    broker: BrokerUnderTest,
    db: GatewayDb,
    gateway_pid: int,
    units: int,
    seconds: float,
    logdir: Path,
    *,
    period: float = STEADY_PERIOD,
) -> SteadyPass:
    """One report per device every ``period`` seconds for ``seconds``; the gateway's cost over the whole window."""
    rounds = max(2, round(seconds / period))
    keys = {r.entity_key for r in reporters(units)}
    expected = expected_changes(units, rounds, db.states(keys))
    before = db.last_event_id()
    pub = blaster(broker, units, rounds, 1.0 / period, "fwsim", logdir, spread=True)
    try:
        await pub.start()
        ready = await pub.event(60)
        load_start, rss_start, db_start = load_average(), rss_mb(gateway_pid), db_bytes(db.path)
        cpu0, go = cpu_seconds(gateway_pid), time.monotonic()
        await pub.send("go")
        sent = asyncio.ensure_future(pub.event(seconds + 120))
        rss_max = rss_start
        try:
            while time.monotonic() - go < seconds:
                await asyncio.sleep(min(_SAMPLE, max(0.0, go + seconds - time.monotonic())))
                rss_max = max(rss_max, rss_mb(gateway_pid))
            cpu, wall = cpu_seconds(gateway_pid) - cpu0, time.monotonic() - go
            rss_end, load_end = rss_mb(gateway_pid), load_average()
            await sent
        finally:
            sent.cancel()
        await pub.send("quit")
        await pub.event(60)
    finally:
        await pub.stop()
    got = await db.state_events_settled(before, expected, 10.0)  # the last reports: held, then written
    lost = sum(max(0, n - got.get(k, 0)) for k, n in expected.items())
    return SteadyPass(
        devices=units * 5,
        period=period,
        messages=int(ready["messages"]),
        seconds=wall,
        cpu_s=cpu,
        rss_start_mb=rss_start,
        rss_end_mb=rss_end,
        rss_max_mb=max(rss_max, rss_end),
        db_start_bytes=db_start,
        db_end_bytes=db_bytes(db.path),
        state_changes=sum(got.values()),
        lost=lost,
        load_start=load_start,
        load_end=load_end,
    )


def steady_figures(s: SteadyPass, saturated_us: float | None) -> list[Figure]:
    """CPU per message against the saturated cost, share of a core, RSS drift, database growth; each with the load."""
    load = f"load avg {s.load_start:.2f} at start, {s.load_end:.2f} at end"
    how = (
        f"{s.devices:,} devices, a report each every {s.period:g} s, {s.messages:,} reports over {s.seconds:.0f} s "
        f"({s.messages / max(s.seconds, 1e-9):,.0f} msg/s), {s.lost} state changes lost; {load}"
    )
    changes = s.db_bytes_per_change
    return [
        Figure(
            "steady_cpu_ratio",
            "steady: CPU per message, times saturated",
            None if not saturated_us else s.cpu_us_per_message / saturated_us,
            "x",
            "<=",
            REALISTIC_RATIO,
            f"<= {REALISTIC_RATIO:g}x saturated",
            reference=f"{s.cpu_us_per_message:.0f} µs/msg against {saturated_us or 0:.0f} saturated (same run)",
            note=how,
            ran=saturated_us is not None,
        ),
        Figure(
            "steady_core_percent",
            "steady: gateway CPU, % of one core",
            s.core_percent,
            "%",
            "<=",
            CORE_SHARE,
            f"<= {CORE_SHARE:g} %",
            note=f"{s.cpu_s:.1f} CPU s over {s.seconds:.0f} s; {load}",
        ),
        Figure(
            "steady_rss_drift",
            "steady: RSS drift",
            s.rss_drift_mb_per_hour,
            "MB/h",
            "<=",
            RSS_DRIFT_MB_PER_HOUR,
            f"<= {RSS_DRIFT_MB_PER_HOUR:g} MB/h",
            note=f"RSS {s.rss_start_mb:.1f} MB at start, {s.rss_end_mb:.1f} MB at end, {s.rss_max_mb:.1f} MB at most; "
            f"{load}",
        ),
        Figure(
            "steady_db_bytes_per_change",
            "steady: database growth per state change (WAL included)",
            changes,
            "B",
            "<=",
            DB_BYTES_PER_CHANGE,
            f"<= {DB_BYTES_PER_CHANGE:g} B",
            note=f"{s.db_start_bytes:,} B at start, {s.db_end_bytes:,} B at end, {s.state_changes:,} state changes; "
            f"{load}",
        ),
    ]
