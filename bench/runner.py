"""One bench run: broker, building, gateway, then each measurement in turn; every child stopped on the way out."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .broker import BrokerUnderTest, ExternalBroker, embedded, mosquitto
from .building import FleetProcess, GatewayProcess, fleet_devices
from .commands import (
    MAX_UNITS,
    Latencies,
    command_plan,
    gateway_round_trips,
    h11_poster,
    httpx_poster,
    mqtt_round_trips,
)
from .figures import Measured, build_figures, latency_summary
from .footprint import cpu_seconds, idle_cpu, peak_rss, rss_mb
from .gatewaydb import GatewayDb
from .http11 import Http11Client
from .ingest import run_ingest
from .process import REPO, BenchError
from .report import code_version, machine, render, write_json
from .resident import http_client, set_up_resident
from .storms import reconnect_storm, start_storm

__all__ = [
    "EMBEDDED_DEFAULT_UNITS",
    "FULL_UNITS",
    "Options",
    "Progress",
    "broker_for",
    "run",
    "start_building",
    "units_for",
    "workdir_for",
]

FULL_UNITS = 400
EMBEDDED_DEFAULT_UNITS = 20  # what amqtt 0.12 reliably takes in here (see docs/bench.md)
WARM_UP_COMMANDS = 20
HTTPX_COMMANDS = 500  # the same commands through httpx, for the note on what the client costs
_SETTLE_SECONDS = 2.0


@dataclass(frozen=True)
class Options:
    """What to run, from the command line."""

    broker_url: str | None
    mosquitto: bool
    units: int | None
    rounds: int
    commands: int
    idle_seconds: float
    device_rate: float
    out: Path
    workdir: Path | None
    realistic_seconds: float = 0.0
    refs_clients: tuple[str, ...] | None = None
    steady_seconds: float = 0.0
    steady_period: float = 30.0


class Progress:
    """Timestamped progress lines on stderr."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def __call__(self, text: str) -> None:
        print(f"[{time.monotonic() - self._t0:6.1f} s] {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def workdir_for(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="aptgateway-bench-") as tmp:
        yield Path(tmp)


def broker_for(options: Options, workdir: Path) -> BrokerUnderTest:
    if options.broker_url is not None:
        return ExternalBroker(options.broker_url)
    if options.mosquitto:
        return mosquitto(workdir)
    return embedded(workdir)


def units_for(options: Options, broker: BrokerUnderTest, notes: list[str]) -> int:
    if options.units is not None:
        return options.units
    if broker.kind == "embedded":
        notes.append(
            f"embedded broker (amqtt, ~11x slower than Mosquitto): {EMBEDDED_DEFAULT_UNITS} units "
            f"({EMBEDDED_DEFAULT_UNITS * 5:,} devices) by default instead of {FULL_UNITS}; --units overrides"
        )
        return EMBEDDED_DEFAULT_UNITS
    return FULL_UNITS


async def _commands(
    options: Options, broker: BrokerUnderTest, gateway: GatewayProcess, db: GatewayDb, units: int, m: Measured
) -> None:
    plan = command_plan(units)
    bound = sorted(fleet_devices(min(units, MAX_UNITS)))  # every device of those units: 20 at most, the plan's limit
    async with http_client(gateway.api) as http:
        token = await set_up_resident(http, gateway.operator, gateway.operator_password, bound)
        await mqtt_round_trips(broker.host, broker.port, plan, WARM_UP_COMMANDS, options.device_rate)
        m.bare_commands = await mqtt_round_trips(broker.host, broker.port, plan, options.commands, options.device_rate)
        # Connected only now: the gateway closes a keep-alive connection idle for 10 s, and on a loaded machine the
        # set-up and the bare round trips above can take longer than that.
        async with Http11Client(gateway.api) as lean:
            post = h11_poster(lean, token)
            await gateway_round_trips(post, plan, WARM_UP_COMMANDS, options.device_rate)
            since, cpu = datetime.now(UTC), cpu_seconds(gateway.pid)
            m.gateway_commands = await gateway_round_trips(post, plan, options.commands, options.device_rate)
            m.gateway_commands_cpu_s = cpu_seconds(gateway.pid) - cpu
        m.gateway_service = Latencies(ms=db.command_durations_ms(since), seconds=m.gateway_commands.seconds)
        heavy = httpx_poster(http, token)
        await gateway_round_trips(heavy, plan, WARM_UP_COMMANDS, options.device_rate)
        m.httpx_commands = await gateway_round_trips(heavy, plan, HTTPX_COMMANDS, options.device_rate)


async def start_building(stack: contextlib.AsyncExitStack, units: int, broker_url: str, workdir: Path) -> float:
    """The units that take the timed commands in a simulator process of their own, the rest in another; how long
    the slower took to come online.

    Real devices are separate hardware: one Python process hosting 2,000 device clients makes a commanded device
    answer late whenever the process is busy with the other 1,995 (measured here: p99 of the gateway's round trip
    14 ms that way, 8-9 ms with the commanded units apart). Both the gateway's and the bare round trips go to the
    same devices, so the comparison stays like for like.
    """
    commanded = min(units, MAX_UNITS)
    fleets = [FleetProcess(commanded, broker_url, workdir, name="fleet-commanded")]
    if units > commanded:
        fleets.append(FleetProcess(units - commanded, broker_url, workdir, first_unit=commanded + 1))
    for fleet in fleets:
        stack.push_async_callback(fleet.stop)
    timeout = 60 + units * 0.5
    return max(await asyncio.gather(*(fleet.start(timeout=timeout) for fleet in fleets)))


async def _measure(options: Options, broker: BrokerUnderTest, units: int, workdir: Path, m: Measured) -> None:
    """Every phase in order; whatever happens, the exit stack stops every child."""
    say = Progress()
    async with contextlib.AsyncExitStack() as stack:
        say(f"starting the {broker.kind} broker")
        await broker.start()
        stack.push_async_callback(broker.stop)
        fleet_ids = fleet_devices(units)
        say(f"starting the building: {units} units, {len(fleet_ids):,} simulated devices (firmware-sim fleet)")
        m.fleet_start_s = await start_building(stack, units, broker.url, workdir)
        gateway = GatewayProcess(broker.url, workdir)
        stack.push_async_callback(gateway.stop)
        db = GatewayDb(gateway.db_path)
        stack.callback(db.close)
        say(f"building online in {m.fleet_start_s:.1f} s; start storm: starting the gateway")
        m.start = await start_storm(gateway, db, fleet_ids, timeout=max(120.0, units * 0.5))
        if m.start.seconds is None:
            raise BenchError(f"start storm: only {m.start.online}/{m.start.devices} devices online in time")
        await gateway.wait_api(30)
        m.rss_mb["after start"] = rss_mb(gateway.pid)
        say(f"start storm {m.start.seconds:.2f} s; ingest: {options.rounds} rounds x {len(fleet_ids):,} devices")
        m.ingest = await run_ingest(broker, db, gateway.pid, units, options.rounds, options.device_rate, workdir)
        m.rss_mb["after ingest"] = rss_mb(gateway.pid)
        say(f"ingest done; gateway CPU at idle over {options.idle_seconds:g} s")
        await asyncio.sleep(_SETTLE_SECONDS)
        m.idle = await idle_cpu(gateway.pid, options.idle_seconds)
        say(f"commands: API set-up, then {options.commands:,} bare MQTT and {options.commands:,} HTTP round trips")
        await _commands(options, broker, gateway, db, units, m)
        m.rss_mb["after commands"] = rss_mb(gateway.pid)
        if broker.restartable:
            say("reconnect storm: restarting the broker")
            m.reconnect = await reconnect_storm(broker, gateway, db, fleet_ids, timeout=max(120.0, units * 0.5))
            m.rss_mb["after reconnect"] = rss_mb(gateway.pid)
        else:
            m.reconnect_skipped = "not run: the bench does not restart an external broker."
        peak = peak_rss(gateway.pid, max(m.rss_mb.values()))
        m.peak_rss_mb, m.rss_source = peak.mb, peak.source
        say("stopping everything")


def _details(m: Measured) -> dict[str, Any]:
    out = asdict(m)
    out["bare_commands"] = latency_summary(m.bare_commands)
    out["gateway_commands"] = latency_summary(m.gateway_commands)
    out["gateway_service"] = latency_summary(m.gateway_service)
    out["httpx_commands"] = latency_summary(m.httpx_commands)
    return out


async def run(options: Options) -> int:
    """Run the bench, print the table, write the JSON; 0 unless something could not be measured."""
    notes: list[str] = []
    with workdir_for(options.workdir) as workdir:
        broker = broker_for(options, workdir)
        units = units_for(options, broker, notes)
        measured = Measured()
        await _measure(options, broker, units, workdir, measured)
    meta = {
        "machine": machine(broker.describe()),
        "code": code_version(REPO),
        "run": {
            "units": units,
            "devices": units * 5,
            "rounds": options.rounds,
            "commands": options.commands,
            "idle_seconds": options.idle_seconds,
            "device_rate": options.device_rate,
        },
        "notes": notes,
    }
    figures = build_figures(measured)
    print(render(meta, figures), flush=True)
    write_json(options.out, meta, figures, _details(measured))
    print(f"\nwritten: {options.out}", flush=True)
    return 0
