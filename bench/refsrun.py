"""``./bench.sh --refs``: the ingest references alone (broker, building, gateway, then each pass in turn)."""

from __future__ import annotations

import contextlib
from dataclasses import asdict
from typing import Any

from .building import GatewayProcess, fleet_devices
from .gatewaydb import GatewayDb
from .process import REPO, BenchError
from .refs import RefsResult, run_refs
from .refsreport import refs_figures
from .report import code_version, machine, render, write_json
from .runner import Options, Progress, broker_for, start_building, units_for, workdir_for
from .steady import SteadyPass, run_steady, steady_figures
from .storms import start_storm

__all__ = ["run_refs_mode"]


async def run_refs_mode(options: Options) -> int:
    """Run the references, print the table, write the JSON; 0 unless something could not be measured."""
    notes: list[str] = []
    say = Progress()
    with workdir_for(options.workdir) as workdir:
        broker = broker_for(options, workdir)
        units = units_for(options, broker, notes)
        async with contextlib.AsyncExitStack() as stack:
            say(f"starting the {broker.kind} broker")
            await broker.start()
            stack.push_async_callback(broker.stop)
            fleet_ids = fleet_devices(units)
            say(f"starting the building: {units} units, {len(fleet_ids):,} simulated devices")
            await start_building(stack, units, broker.url, workdir)
            gateway = GatewayProcess(broker.url, workdir)
            stack.push_async_callback(gateway.stop)
            db = GatewayDb(gateway.db_path)
            stack.callback(db.close)
            start = await start_storm(gateway, db, fleet_ids, timeout=max(120.0, units * 0.5))
            if start.seconds is None:
                raise BenchError(f"start: only {start.online}/{start.devices} devices online in time")
            say(f"gateway up, every device online in {start.seconds:.2f} s")
            steady = options.steady_seconds > 0
            result: RefsResult = await run_refs(
                broker,
                db,
                gateway.pid,
                units,
                options.rounds,
                options.device_rate,
                workdir,
                realistic_seconds=0.0 if steady else options.realistic_seconds,
                clients=() if steady else options.refs_clients,  # --steady: the saturated gateway pass only
                say=say,
            )
            steady_pass: SteadyPass | None = None
            if steady:
                say(
                    f"steady state: a report per device every {options.steady_period:g} s "
                    f"for {options.steady_seconds:g} s"
                )
                steady_pass = await run_steady(
                    broker, db, gateway.pid, units, options.steady_seconds, workdir, period=options.steady_period
                )
            say("stopping everything")
    notes += result.skipped
    meta: dict[str, Any] = {
        "machine": machine(broker.describe()),
        "code": code_version(REPO),
        "run": {
            "mode": "steady" if steady_pass is not None else "refs",
            "units": units,
            "devices": units * 5,
            "rounds": options.rounds,
            "device_rate": options.device_rate,
            "realistic_seconds": options.realistic_seconds,
            "steady_seconds": options.steady_seconds,
            "steady_period": options.steady_period,
        },
        "notes": notes,
    }
    figures = refs_figures(result)
    if steady_pass is not None:
        saturated = result.of("gateway")
        figures += steady_figures(steady_pass, None if saturated is None else saturated.cpu_us_per_message)
    print(render(meta, figures), flush=True)
    details = asdict(result)
    details["passes"] = [
        {**asdict(p), "rate": p.rate, "cpu_us_per_message": p.cpu_us_per_message} for p in result.passes
    ]
    if steady_pass is not None:
        details["steady"] = {
            **asdict(steady_pass),
            "cpu_us_per_message": steady_pass.cpu_us_per_message,
            "core_percent": steady_pass.core_percent,
            "rss_drift_mb_per_hour": steady_pass.rss_drift_mb_per_hour,
            "db_bytes_per_change": steady_pass.db_bytes_per_change,
        }
    write_json(options.out, meta, figures, details)
    print(f"\nwritten: {options.out}", flush=True)
    return 0
