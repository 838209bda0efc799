"""The gateway's footprint: peak resident memory and CPU while nothing happens (psutil on its process)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # no stubs installed; the values are converted below

__all__ = ["IdleCpu", "PeakMemory", "cpu_seconds", "idle_cpu", "peak_rss", "rss_mb"]

_MB = 1_000_000  # decimal megabytes: the stricter reading of "150 MB"


@dataclass(frozen=True, slots=True)
class IdleCpu:
    """CPU time used over a quiet wall-clock window, as a percentage of one core."""

    percent: float
    seconds: float
    cpu_seconds: float


@dataclass(frozen=True, slots=True)
class PeakMemory:
    """Peak resident set size in MB (10^6 bytes) and how it was known."""

    mb: float
    current_mb: float
    source: str


def cpu_seconds(pid: int) -> float:
    """CPU seconds the process has used so far: its threads' run time from the scheduler (nanoseconds) where Linux
    gives it, else user + system from psutil (10 ms ticks, which a tiny pass may never reach)."""
    tasks = Path(f"/proc/{pid}/task")
    if (tasks / str(pid) / "schedstat").exists():
        total = 0
        for task in tasks.iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                continue  # a thread that ended meanwhile
        return total / 1e9
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def idle_cpu(pid: int, seconds: float) -> IdleCpu:
    """User + system CPU of ``pid`` over ``seconds`` of wall time, as percent of one core."""
    proc = psutil.Process(pid)
    loop = asyncio.get_running_loop()
    before, started = proc.cpu_times(), loop.time()
    await asyncio.sleep(seconds)
    after, wall = proc.cpu_times(), loop.time() - started
    used = (after.user - before.user) + (after.system - before.system)
    return IdleCpu(percent=100.0 * used / wall, seconds=wall, cpu_seconds=used)


def peak_rss(pid: int, sampled_mb: float = 0.0) -> PeakMemory:
    """The process's peak RSS: the kernel's high-water mark (VmHWM) on Linux, else the largest sample seen."""
    current = rss_mb(pid)
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):  # in KiB
                return PeakMemory(int(line.split()[1]) * 1024 / _MB, current, "VmHWM, the kernel's high-water mark")
    except OSError:
        pass
    return PeakMemory(max(current, sampled_mb), current, "the largest RSS sampled between phases")


def rss_mb(pid: int) -> float:
    """The process's RSS now, in MB."""
    return float(psutil.Process(pid).memory_info().rss) / _MB
