"""The benchmark suite at a tiny scale: it runs end to end, reports every figure beside its target, loses nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.brokers import REPO

FIGURES = {
    "ingest_rate",
    "ingest_lost_updates",
    "command_p50_ms",
    "command_p99_ms",
    "commands_unconfirmed",
    "start_storm_s",
    "reconnect_storm_s",
    "peak_rss_mb",
    "idle_cpu_percent",
}


def test_bench_runs_at_a_tiny_scale(tmp_path: Path) -> None:
    """Two units on the embedded broker: exit 0, a JSON file with every figure measured, no lost state update."""
    out = tmp_path / "results.json"
    argv = [sys.executable, "-m", "bench", "--units", "2", "--commands", "30", "--rounds", "2"]
    argv += ["--idle-seconds", "1", "--out", str(out), "--workdir", str(tmp_path / "work")]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    document = json.loads(out.read_text())
    figures = {f["key"]: f for f in document["figures"]}
    assert set(figures) == FIGURES
    for figure in figures.values():
        assert isinstance(figure["value"], int | float), f"{figure}\n{result.stdout}"
        assert isinstance(figure["target"], int | float), figure
        assert figure["target_text"], figure
        assert figure["pass"] in (True, False), figure
    assert figures["ingest_lost_updates"]["value"] == 0, f"{figures['ingest_lost_updates']}\n{result.stdout}"
    assert document["machine"]["broker"]["kind"] == "embedded"
    assert document["machine"]["cpus"] and document["machine"]["python"]
    assert "lost state updates" in result.stdout  # the table is printed too
