"""``python -m bench`` (or ``./bench.sh``): the gateway's benchmark suite; see docs/bench.md."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .process import REPO, BenchError
from .refsrun import run_refs_mode
from .runner import EMBEDDED_DEFAULT_UNITS, FULL_UNITS, Options, run
from .scalerun import run_scale_mode

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """The bench's options."""
    parser = argparse.ArgumentParser(
        prog="bench.sh",
        description="Benchmark the gateway: telemetry ingest, command round trips, start and reconnect storms, "
        "footprint. Exits non-zero only when something could not be measured, never on a missed target.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--mosquitto",
        action="store_true",
        help="spawn a private, open Mosquitto (bench/mosquitto-open.conf; restartable)",
    )
    where.add_argument("--broker", metavar="mqtt://HOST:PORT", help="use this broker as it is (no reconnect storm)")
    parser.add_argument(
        "--units",
        type=int,
        default=None,
        help=f"apartment units, 5 devices each (default {FULL_UNITS}; {EMBEDDED_DEFAULT_UNITS} on the embedded broker)",
    )
    parser.add_argument(
        "--refs",
        action="store_true",
        help="only the ingest references: the gateway beside bare gmqtt, paho and aiomqtt subscribers, fed by a "
        "raw-socket publisher, every message counted (device rate 200/s unless --device-rate says otherwise)",
    )
    parser.add_argument(
        "--scale",
        metavar="N,N,...",
        default=None,
        help="only the scale run: for each number of devices (e.g. 500,2000,5000), time to online after start and "
        "after a broker restart, and peak RSS; every step bounded, what did not finish is reported",
    )
    parser.add_argument(
        "--refs-clients",
        default=None,
        help="--refs: the bare references to run, comma-separated (default: gmqtt, paho, aiomqtt, as installed)",
    )
    parser.add_argument(
        "--realistic-seconds",
        type=float,
        default=60.0,
        help="--refs: the window of the realistic-rate pass (2 reports per device in it; 0 skips it; default 60)",
    )
    parser.add_argument(
        "--steady",
        type=float,
        metavar="SECONDS",
        nargs="?",
        const=600.0,
        default=None,
        help="the realistic steady-state run: a short saturated gateway pass, then a report per device every "
        "--steady-period s for SECONDS (default 600): CPU per message and %% of a core, RSS drift, database growth",
    )
    parser.add_argument(
        "--steady-period", type=float, default=30.0, help="--steady: seconds between two reports of a device (30)"
    )
    parser.add_argument("--rounds", type=int, default=20, help="ingest: state reports per device (default 20)")
    parser.add_argument("--commands", type=int, default=2000, help="round trips of each kind (default 2000)")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="idle CPU window (default 10)")
    parser.add_argument(
        "--device-rate",
        type=float,
        default=None,
        help="most messages/commands per device per second "
        "(default 20; 200 with --refs up to 200 rounds; 50 with --steady)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.json", help="JSON results file")
    parser.add_argument("--workdir", type=Path, default=None, help="keep logs and the database here (default: temp)")
    return parser


async def _until_signalled(options: Options, *, refs: bool = False, scale: list[int] | None = None) -> int:
    """Run the bench; SIGTERM cancels it like Ctrl-C does, so every child is stopped on the way out."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        if scale:
            return await run_scale_mode(options, scale)
        return await (run_refs_mode(options) if refs or options.steady_seconds > 0 else run(options))
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; the exit status is 0 when every figure was measured."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.units is not None and args.units < 1:
        parser.error("--units must be at least 1")
    scale: list[int] | None = None
    if args.scale:
        try:
            scale = [int(n) for n in args.scale.split(",")]
        except ValueError:
            parser.error("--scale takes numbers of devices, e.g. 500,2000,5000")
        if any(n < 5 for n in scale):
            parser.error("--scale: at least 5 devices (one unit) per size")
    if args.steady is not None and (args.steady <= 0 or args.steady_period <= 0):
        parser.error("--steady and --steady-period take a positive number of seconds")
    if args.device_rate is None:
        # --refs: 200/s per device, so the publisher is never the bottleneck (2,000 devices offer 400,000 msg/s);
        # the gateway's per-device burst (200 messages) takes a pass of up to 200 rounds whole at that rate.
        args.device_rate = (200.0 if args.rounds <= 200 else 50.0) if args.refs else 50.0 if args.steady else 20.0
    if args.rounds < 2 or args.commands < 1 or args.idle_seconds <= 0 or args.device_rate <= 0:
        parser.error("--rounds must be at least 2; --commands, --idle-seconds and --device-rate positive")
    options = Options(
        broker_url=args.broker,
        mosquitto=args.mosquitto,
        units=args.units,
        rounds=args.rounds,
        commands=args.commands,
        idle_seconds=args.idle_seconds,
        device_rate=args.device_rate,
        out=args.out,
        workdir=args.workdir,
        realistic_seconds=args.realistic_seconds,
        refs_clients=tuple(args.refs_clients.split(",")) if args.refs_clients else None,
        steady_seconds=args.steady or 0.0,
        steady_period=args.steady_period,
    )
    try:
        return asyncio.run(_until_signalled(options, refs=args.refs, scale=scale))
    except asyncio.CancelledError:  # SIGTERM: the bench has stopped what it started
        print("bench: terminated; every process it started has been stopped", file=sys.stderr)
        return 143
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    except ExceptionGroup as group:
        errors = group.subgroup(BenchError)
        if errors is None or group.subgroup(lambda e: not isinstance(e, BenchError | ExceptionGroup)) is not None:
            raise
        for error in errors.exceptions:
            print(f"bench: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started has been stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
