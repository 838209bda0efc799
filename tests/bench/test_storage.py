"""The storage benchmark at a tiny scale: it runs end to end, the size flattens, and the dropped index saves bytes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.brokers import REPO


def test_storage_bench_runs_and_the_database_stops_growing_once_retention_is_reached(tmp_path: Path) -> None:
    out = tmp_path / "storage.json"
    argv = [sys.executable, "-m", "bench.storage", "--devices", "100", "--hours", "0.75", "--day-minutes", "15"]
    argv += ["--changes", "2000", "--rounds", "1", "--out", str(out)]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    document = json.loads(out.read_text())
    cost = document["write_cost"]
    # the events_type index is an entry per change: without it every change stores fewer bytes
    assert cost["bytes_ratio"] < 0.99, cost
    assert cost["now"]["us"] > 0 and cost["baseline"]["us"] > 0
    steady = document["steady_state"]
    samples = steady["samples"]
    assert samples[0]["events"] < samples[-1]["events"], "it grew first"
    assert 0.9 < steady["ratio"] < 1.1, steady  # then stayed flat
    kept = {s["events"] for s in samples if s["hours"] * 60 >= 15 + 5}
    assert max(kept) - min(kept) <= 100 // 10, kept  # one retention day of changes, give or take a flush
    assert "write cost per state change" in result.stdout and "steady state" in result.stdout
