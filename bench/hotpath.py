"""``python -m bench.hotpath``: CPU per state message after the MQTT client, measured in-process.

The simulated fleet (``bench.load``) is discovered by a real ``Registry``, then every round's real state payloads
go through ``Registry.handle`` and the persister's pending changes, and each flush's batch is written to a real
(migrated, WAL) database file by the writer thread, as the gateway does, but without MQTT. Printed per message:
main-thread CPU (``handle`` and taking the batch), writer CPU (rows built and written) and the process's total.

``--baseline REF`` also runs this same file against ``git archive REF`` (in a temporary directory) and alternates
the two, so that a before/after pair is measured in the same conditions and reported as a ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["main"]

_PREFIX = "homeassistant"


async def _measure(units: int, rounds: int, flush_every: int) -> dict[str, float]:
    """One run of the current tree (whatever ``gateway`` imports): us per message."""
    from bench.load import reporters, round_publishes
    from gateway.clock import SystemClock
    from gateway.core import persister as persister_module
    from gateway.core.metrics import Metrics
    from gateway.core.persister import PendingChanges
    from gateway.core.ratelimit import RateLimiter
    from gateway.core.registry import Registry
    from gateway.mqtt.transport import InboundMessage
    from gateway.storage import Database

    fleet = reporters(units)
    registry = Registry(_PREFIX, SystemClock(), Metrics(), RateLimiter(50.0, 200))
    stored: set[str] = set()
    pending = PendingChanges(stored.__contains__)
    registry.add_change_listener(pending)
    write = getattr(persister_module, "write_batch_rows", None) or _old_write(persister_module)
    for r in fleet:
        registry.handle(InboundMessage(f"{_PREFIX}/{r.entity_key}/config", r.config.to_payload(), True, 0))
    messages = [
        [InboundMessage(p.topic, p.payload, False, 0) for p in round_publishes(fleet, n)] for n in range(rounds + 2)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        async with Database(Path(tmp) / "hot.db") as db:
            batch = pending.take()
            await db.run(functools.partial(write, batch=batch))
            stored.update(r.key for r in batch.rows)
            for warm in messages[:2]:  # first states of every entity (whole rows), then one steady round
                for m in warm:
                    registry.handle(m)
                batch = pending.take()
                await db.run(functools.partial(write, batch=batch))
                stored.update(r.key for r in batch.rows)
            flat = [m for round_ in messages[2:] for m in round_]
            main = writer = 0.0
            process_start = time.process_time()
            for start in range(0, len(flat), flush_every):
                t0 = time.thread_time()
                for m in flat[start : start + flush_every]:
                    registry.handle(m)
                batch = pending.take()
                main += time.thread_time() - t0
                w0 = time.process_time()
                await db.run(functools.partial(write, batch=batch))
                writer += time.process_time() - w0
            total = time.process_time() - process_start
            count = "SELECT count(*) FROM all_events WHERE type='state'"
            events = await db.run(lambda d: d.execute(count).fetchone()[0])
    n = len(flat)
    if registry.metrics.accepted["state"] < n:
        raise SystemExit(f"only {registry.metrics.accepted['state']} of {n} states accepted")
    return {
        "messages": n,
        "main_us": main / n * 1e6,
        "writer_us": writer / n * 1e6,
        "total_us": total / n * 1e6,
        "state_events": events,
    }


def _old_write(persister_module: Any) -> Any:
    """The writer's work as the tree before ``write_batch_rows`` did it (inline in ``Persister._write``)."""
    from gateway.storage.records import write_batch

    def write(db: Any, *, batch: Any) -> None:
        events = [persister_module.event_row(e) for e in batch.events]
        write_batch(db, batch.devices, batch.rows, events, [r.row() for r in batch.reported])

    return write


def _child(tree: Path | None, args: argparse.Namespace) -> dict[str, float]:
    """Run one measurement in a fresh interpreter (of ``tree``, or of this one's tree)."""
    cwd = tree if tree is not None else Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    cmd = [sys.executable, "-m", "bench.hotpath", "--child", "--units", str(args.units), "--rounds", str(args.rounds)]
    cmd += ["--flush-every", str(args.flush_every)]
    out = subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def _baseline_tree(ref: str, into: Path) -> Path:
    """``ref``'s files (git archive), with this file added so the same measurement runs there."""
    repo = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(repo), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    shutil.copy(Path(__file__), into / "bench" / "hotpath.py")
    return into


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bench.hotpath``."""
    parser = argparse.ArgumentParser(prog="python -m bench.hotpath")
    parser.add_argument("--units", type=int, default=400, help="simulated units (5 devices each, as --mosquitto)")
    parser.add_argument("--rounds", type=int, default=10, help="measured rounds (every device reports once each)")
    parser.add_argument(
        "--flush-every", type=int, default=3000, help="messages per flush (the 0.2 s interval at ~15k msg/s)"
    )
    parser.add_argument("--baseline", metavar="REF", help="also measure this git ref, alternating with this tree")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each tree (alternated)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(asyncio.run(_measure(args.units, args.rounds, args.flush_every))))
        return 0
    print(f"load average {os.getloadavg()[0]:.2f}; {args.units} units x {args.rounds} rounds", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        base = _baseline_tree(args.baseline, Path(tmp)) if args.baseline else None
        runs: dict[str, list[dict[str, float]]] = {"baseline": [], "this tree": []}
        for _ in range(args.repeat):
            if base is not None:
                runs["baseline"].append(_child(base, args))
                print("  baseline ", _line(runs["baseline"][-1]), flush=True)
            runs["this tree"].append(_child(None, args))
            print("  this tree", _line(runs["this tree"][-1]), flush=True)
    medians = {name: _median(r) for name, r in runs.items() if r}
    for name, m in medians.items():
        print(f"median {name:9} {_line(m)}")
    if "baseline" in medians:
        b, t = medians["baseline"], medians["this tree"]
        ratios = ", ".join(f"{k[:-3]} {t[k] / b[k]:.2f}x" for k in ("main_us", "writer_us", "total_us"))
        print(f"this tree / baseline: {ratios}; load average {os.getloadavg()[0]:.2f}")
    return 0


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def _line(r: dict[str, float]) -> str:
    return (
        f"main {r['main_us']:6.2f} us/msg  writer {r['writer_us']:6.2f}  total {r['total_us']:6.2f}"
        f"  ({int(r['messages'])} messages, {int(r['state_events'])} state events)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
