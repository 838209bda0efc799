"""The export benchmark at a tiny scale: it runs and its streamed export holds every event the baseline does."""

from __future__ import annotations

from pathlib import Path

from bench.export import measure


async def test_export_bench_runs_at_a_tiny_scale(tmp_path: Path) -> None:
    figures = await measure(300, tmp_path)
    assert figures["events"] == 300
    # The streamed document carries the same history as the baseline's list, plus the other sections around it.
    assert figures["export_bytes"] > figures["baseline_bytes"] > 0
    assert figures["export_peak_mib"] > 0 and figures["baseline_peak_mib"] > 0
