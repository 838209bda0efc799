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
            result: RefsResult = await run_refs(
                broker,
                db,
                gateway.pid,
                units,
                options.rounds,
                options.device_rate,
                workdir,
                realistic_seconds=options.realistic_seconds,
                clients=options.refs_clients,
                say=say,
            )
            say("stopping everything")
    notes += result.skipped
    meta: dict[str, Any] = {
        "machine": machine(broker.describe()),
        "code": code_version(REPO),
        "run": {
            "mode": "refs",
            "units": units,
            "devices": units * 5,
            "rounds": options.rounds,
            "device_rate": options.device_rate,
            "realistic_seconds": options.realistic_seconds,
        },
        "notes": notes,
    }
    figures = refs_figures(result)
    print(render(meta, figures), flush=True)
    details = asdict(result)
    details["passes"] = [
        {**asdict(p), "rate": p.rate, "cpu_us_per_message": p.cpu_us_per_message} for p in result.passes
    ]
    write_json(options.out, meta, figures, details)
    print(f"\nwritten: {options.out}", flush=True)
    return 0
