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


REFS_FIGURES = {
    "ingest_share_of_paho",
    "cpu_per_message_vs_gmqtt",
    "ingest_lost_messages",
    "ingest_loss_undetected",
    "publisher_headroom",
    "realistic_cpu_ratio",
}


def test_refs_run_at_a_tiny_scale(tmp_path: Path) -> None:
    """``--refs`` with two units on the embedded broker: every bare reference this environment has and the gateway
    take in every message, none lost per message, each pass with its publisher rate and load average."""
    out = tmp_path / "refs.json"
    argv = [sys.executable, "-m", "bench", "--refs", "--units", "2", "--rounds", "3", "--realistic-seconds", "1"]
    argv += ["--out", str(out), "--workdir", str(tmp_path / "work")]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=100, check=False)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    document = json.loads(out.read_text())
    figures = {f["key"]: f for f in document["figures"]}
    assert set(figures) == REFS_FIGURES
    assert figures["ingest_lost_messages"]["value"] == 0, f"{figures['ingest_lost_messages']}\n{result.stdout}"
    passes = {p["consumer"]: p for p in document["details"]["passes"]}
    assert {"paho", "aiomqtt", "gateway"} <= set(passes)
    for consumer, figures_of in passes.items():
        assert figures_of["received"] == figures_of["messages"] == 30, (consumer, figures_of)
        assert figures_of["lost"] == figures_of["duplicated"] == 0, (consumer, figures_of)
        assert figures_of["publisher_rate"] > 0 and figures_of["load_avg"] >= 0, (consumer, figures_of)
    assert figures["ingest_share_of_paho"]["value"] is not None
    assert figures["ingest_loss_undetected"]["value"] == 0
    assert passes["gateway"]["final_states"] is True and passes["gateway"]["timed_out"] is False
    assert "load avg" in result.stdout


STEADY_FIGURES = {"steady_cpu_ratio", "steady_core_percent", "steady_rss_drift", "steady_db_bytes_per_change"}


def test_steady_run_at_a_tiny_scale(tmp_path: Path) -> None:
    """``--steady`` for 6 s with a report per device every 2 s (two units, the embedded broker): CPU per message
    against the saturated pass and per core, RSS drift, database growth per state change, each beside its target
    with the load average, in the table and the JSON; nothing lost."""
    out = tmp_path / "steady.json"
    argv = [sys.executable, "-m", "bench", "--steady", "6", "--steady-period", "2", "--units", "2", "--rounds", "3"]
    argv += ["--out", str(out), "--workdir", str(tmp_path / "work")]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=100, check=False)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    document = json.loads(out.read_text())
    figures = {f["key"]: f for f in document["figures"]}
    assert set(figures) >= STEADY_FIGURES
    for key in STEADY_FIGURES:
        assert isinstance(figures[key]["value"], int | float), f"{figures[key]}\n{result.stdout}"
        assert figures[key]["target_text"] and "load avg" in figures[key]["note"], figures[key]
    steady = document["details"]["steady"]
    assert steady["messages"] == 30 and steady["lost"] == 0, steady  # 3 rounds x 10 devices
    assert steady["state_changes"] > 0 and steady["db_end_bytes"] >= steady["db_start_bytes"] > 0, steady
    assert steady["rss_start_mb"] > 0 and steady["rss_end_mb"] > 0, steady
    assert document["run"]["mode"] == "steady"
    assert "steady: RSS drift" in result.stdout


def test_scale_run_at_a_tiny_scale(tmp_path: Path) -> None:
    """``--scale 5`` on the embedded broker: the step finishes, and start, reconnect and peak RSS are measured and
    printed with their targets."""
    out = tmp_path / "scale.json"
    argv = [sys.executable, "-m", "bench", "--scale", "5", "--out", str(out), "--workdir", str(tmp_path / "work")]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=100, check=False)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    document = json.loads(out.read_text())
    figures = {f["key"]: f for f in document["figures"]}
    assert set(figures) == {"start_online_s_5", "reconnect_online_s_5", "peak_rss_mb_5"}
    for figure in figures.values():
        assert isinstance(figure["value"], int | float), f"{figure}\n{result.stdout}"
    (step,) = document["details"]["steps"]
    assert step["unfinished"] == [] and step["bare_seen_s"] is not None, step
    assert "load avg" in result.stdout
