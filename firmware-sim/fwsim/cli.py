"""Command line: ``firmware-sim unit ...`` runs one apartment unit, ``firmware-sim fleet ...`` many."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from .address import BrokerAddress
from .faults import Fault, FaultInvalid, parse_fault
from .fleet import Fleet
from .unit import UNIT_DEVICES, UnitSim

__all__ = ["build_parser", "device_fault", "main"]

log = logging.getLogger("fwsim")

PASSWORD_ENV = "FWSIM_MQTT_PASSWORD"
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

Body = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


def device_fault(text: str) -> tuple[str, Fault]:
    """Parse ``--fault DEVICE=FAULT`` (e.g. ``lock=jam``, ``light=offline:5``); raise ArgumentTypeError."""
    device, sep, spec = text.partition("=")
    if not sep or device not in UNIT_DEVICES:
        raise argparse.ArgumentTypeError(f"expected DEVICE=FAULT with DEVICE one of {', '.join(UNIT_DEVICES)}")
    try:
        return device, parse_fault(spec)
    except FaultInvalid as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _positive(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://[user:pass@]host:port or mqtts://")
    parser.add_argument("--username", help="broker user name (overrides the URL's)")
    parser.add_argument(
        "--password", default=os.environ.get(PASSWORD_ENV), help=f"broker password (or ${PASSWORD_ENV})"
    )
    parser.add_argument("--tls", action="store_true", default=None, help="use TLS even with an mqtt:// URL")
    parser.add_argument("--ca-file", help="CA bundle to verify the broker's certificate (implies --tls)")
    parser.add_argument("--discovery-prefix", default="homeassistant", help="Home Assistant discovery prefix")
    parser.add_argument("--base-topic", default="fwsim", help="prefix of the devices' own topics")
    parser.add_argument("--command-delay", type=_positive, default=0.2, help="seconds a device takes to obey")
    parser.add_argument("--drift-interval", type=float, default=5.0, help="seconds between thermostat drift steps")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def build_parser() -> argparse.ArgumentParser:
    """The ``firmware-sim`` argument parser."""
    parser = argparse.ArgumentParser(prog="firmware-sim", description="Simulated smart-home devices over MQTT.")
    commands = parser.add_subparsers(dest="command", required=True)
    unit = commands.add_parser("unit", help="simulate one apartment unit (light, dimmer, lock, thermostat, leak)")
    unit.add_argument("--unit", default="u101", help="unit id (default u101)")
    unit.add_argument("--temperature-sensor", action="store_true", help="give the thermostat a temperature sensor")
    unit.add_argument(
        "--fault",
        type=device_fault,
        action="append",
        default=[],
        metavar="DEVICE=FAULT",
        help="apply a fault once online, e.g. lock=jam, thermostat=ignore, light=offline:5, leak=leak:on",
    )
    _common(unit)
    fleet = commands.add_parser("fleet", help="simulate units u001..uNNN")
    fleet.add_argument("--units", type=int, required=True, help="how many units (5 MQTT clients each)")
    fleet.add_argument("--first-unit", type=int, default=1, help="number of the first unit (default 1)")
    fleet.add_argument("--batch-size", type=int, default=20, help="units connecting at once (default 20)")
    fleet.add_argument(
        "--connect-concurrency",
        type=int,
        default=32,
        help="MQTT connects in flight at once, at start and on reconnection (default 32)",
    )
    _common(fleet)
    return parser


def _address(args: argparse.Namespace) -> BrokerAddress:
    return BrokerAddress.parse(args.broker).with_options(
        username=args.username, password=args.password, tls=args.tls, ca_file=args.ca_file
    )


def _unit_body(args: argparse.Namespace, address: BrokerAddress, started: asyncio.Event) -> Body:
    async def body(stop: asyncio.Event) -> None:
        async with UnitSim(
            address,
            args.unit,
            discovery_prefix=args.discovery_prefix,
            base_topic=args.base_topic,
            command_delay=args.command_delay,
            drift_interval=args.drift_interval,
            temperature_sensor=args.temperature_sensor,
        ) as unit:
            started.set()
            if args.fault and await _until(stop, unit.wait_online()):
                for device, fault in args.fault:
                    await unit.devices[device].apply_fault(fault)
            await stop.wait()
            log.info("stopping unit %s", unit.unit)

    return body


def _fleet_body(args: argparse.Namespace, address: BrokerAddress, started: asyncio.Event) -> Body:
    async def body(stop: asyncio.Event) -> None:
        async with Fleet(
            address,
            args.units,
            first_unit=args.first_unit,
            discovery_prefix=args.discovery_prefix,
            base_topic=args.base_topic,
            command_delay=args.command_delay,
            drift_interval=args.drift_interval,
            batch_size=args.batch_size,
            connect_concurrency=args.connect_concurrency,
        ) as fleet:
            started.set()
            await stop.wait()
            log.info("stopping fleet of %d units", len(fleet.units))

    return body


async def _until(stop: asyncio.Event, work: Coroutine[Any, Any, None]) -> bool:
    """Run ``work`` until it finishes (True) or ``stop`` is set first (False)."""
    work_task = asyncio.ensure_future(work)
    stop_task = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({work_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (work_task, stop_task):
            task.cancel()
        await asyncio.gather(work_task, stop_task, return_exceptions=True)
    return work_task.done() and not work_task.cancelled() and work_task.exception() is None


async def _run(body: Body, started: asyncio.Event) -> None:
    """Run ``body`` until SIGINT/SIGTERM; a body still starting up when stopped is cancelled."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with asyncio.TaskGroup() as group:
            main_task = group.create_task(body(stop), name="fwsim-main")
            if not await _until(stop, _wait_done(main_task)) and not started.is_set():
                main_task.cancel()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _wait_done(task: asyncio.Task[None]) -> None:
    await asyncio.wait({task})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``firmware-sim`` and ``python -m fwsim``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        address = _address(args)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format=_LOG_FORMAT)
    started = asyncio.Event()
    body = _unit_body(args, address, started) if args.command == "unit" else _fleet_body(args, address, started)
    log.info("firmware-sim %s against %s", args.command, address.url)
    asyncio.run(_run(body, started))
    log.info("firmware-sim stopped")
    return 0
