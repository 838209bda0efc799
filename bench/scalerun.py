"""``./bench.sh --scale 500,2000,5000``: one scale step per size, each on a broker of its own, then the table."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .process import REPO
from .report import Figure, code_version, machine, render, write_json
from .runner import Options, Progress, broker_for, workdir_for
from .scale import ONLINE_TARGET_S, RSS_TARGET_MB, ScaleStep, run_scale_step

__all__ = ["run_scale_mode", "scale_figures"]


def _load(step: ScaleStep) -> str:
    return "load avg " + "/".join(f"{x:.2f}" for x in step.load_avg)


def scale_figures(steps: list[ScaleStep]) -> list[Figure]:
    """Start, reconnect and peak RSS for every size, each beside its target."""
    figures: list[Figure] = []
    for s in steps:
        bare = "did not finish" if s.bare_seen_s is None else f"{s.bare_seen_s:.2f} s"
        left = ("; not finished: " + "; ".join(s.unfinished)) if s.unfinished else ""
        figures.append(
            Figure(
                f"start_online_s_{s.devices}",
                f"{s.devices:,} devices online after start",
                s.start_s,
                "s",
                "<",
                ONLINE_TARGET_S,
                f"< {ONLINE_TARGET_S:g} s",
                reference=f"a bare subscriber saw every device's config in {bare}.",
                note=f"{s.start_online:,}/{s.devices:,} online ({s.entities:,} entities); {_load(s)}{left}",
            )
        )
        figures.append(
            Figure(
                f"reconnect_online_s_{s.devices}",
                f"{s.devices:,} devices online after a broker restart",
                s.reconnect_s,
                "s",
                "<",
                ONLINE_TARGET_S,
                f"< {ONLINE_TARGET_S:g} s",
                reference=(
                    "a bare subscriber to every availability topic, from its own reconnection: "
                    + ("did not see" if s.bare_reconnect_s is None else f"{s.bare_reconnect_s:.2f} s to see")
                    + f" every device online again ({s.bare_reconnect_online:,}/{s.devices:,}): the simulated "
                    "building's own reconnection bounds this figure."
                ),
                note=f"{s.reconnect_online:,}/{s.devices:,} online again; {_load(s)}",
                ran=s.start_s is not None,
            )
        )
        figures.append(
            Figure(
                f"peak_rss_mb_{s.devices}",
                f"gateway peak RSS at {s.devices:,} devices",
                s.peak_rss_mb,
                "MB",
                "<",
                RSS_TARGET_MB,
                f"< {RSS_TARGET_MB:g} MB",
                note=_load(s),
                ran=s.start_s is not None,
            )
        )
    return figures


async def run_scale_mode(options: Options, sizes: list[int]) -> int:
    """Every size in turn; 0 always (a size that did not finish is reported, never an error)."""
    say = Progress()
    steps: list[ScaleStep] = []
    describe: dict[str, object] = {}
    with workdir_for(options.workdir) as workdir:
        for devices in sizes:
            where = workdir / f"scale-{devices}"
            where.mkdir(parents=True, exist_ok=True)
            broker = broker_for(options, where)
            describe = broker.describe()
            steps.append(await run_scale_step(broker, devices, where, say))
            say(f"scale {devices:,}: " + (", ".join(steps[-1].unfinished) or "finished"))
    meta: dict[str, Any] = {
        "machine": machine(describe),
        "code": code_version(REPO),
        "run": {"mode": "scale", "sizes": ",".join(str(s) for s in sizes)},
        "notes": [],
    }
    figures = scale_figures(steps)
    print(render(meta, figures), flush=True)
    write_json(options.out, meta, figures, {"steps": [asdict(s) for s in steps]})
    print(f"\nwritten: {options.out}", flush=True)
    return 0
