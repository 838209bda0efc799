"""``gateway`` command line: run, demo, and the installer's helpers (init-db, check-broker, devices, history,
retention)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from .errors import GatewayError
from .logs import configure_logging
from .memory import limit_malloc_arenas

__all__ = ["build_parser", "main"]

log = logging.getLogger("gateway")
DEFAULT_DB = Path("data/gateway.sqlite3")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="gateway", description="Apartment smart-home gateway")
    parser.add_argument("--log-level", default=os.environ.get("GATEWAY_LOG_LEVEL", "info"))
    parser.add_argument(
        "--log-format",
        choices=("json", "text"),
        default=os.environ.get("GATEWAY_LOG_FORMAT", "text" if sys.stderr.isatty() else "json"),
        help="json lines (default when not on a terminal) or text",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="run the gateway (embedded broker unless --broker is given)",
        description="Run the gateway. Its embedded broker admits no anonymous client: every client logs in with a "
        "broker credential the gateway issued (the gateway's own and the simulated unit's are made at each start). "
        "An external broker (--broker, logging in with --username/--password) is locked down by its own "
        "configuration: deploy/mosquitto-dynsec.conf for Mosquitto (no anonymous access, dynamic security).",
    )
    _broker_options(run)
    _gateway_options(run)
    run.add_argument(
        "--listen-host",
        default="127.0.0.1",
        help="embedded broker address (loopback only, anonymous clients refused; LAN devices: --listen-tls)",
    )
    run.add_argument(
        "--listen-port",
        type=int,
        default=None,
        help="embedded broker port (0: a free one; default 1883, or a free one when 1883 is taken)",
    )
    _listen_tls_options(run)
    _api_options(run)
    run.add_argument(
        "--dynsec",
        action="store_true",
        help="with --broker: Mosquitto's dynamic security, managed by the gateway (its --username is a dynsec admin)",
    )
    run.add_argument(
        "--simulate",
        choices=("auto", "always", "never"),
        default="auto",
        help="start a simulated unit: auto = on the embedded broker when no device shows up",
    )

    demo = sub.add_parser("demo", help="start everything with a simulated unit, run commands, print outcomes")
    _broker_options(demo)
    demo.add_argument("--db", type=Path, default=None, help="database file (default: a temporary one)")

    operator = sub.add_parser(
        "create-operator",
        help="create the first operator account (password from GATEWAY_OPERATOR_PASSWORD or a prompt)",
    )
    operator.add_argument("--db", type=Path, default=Path(os.environ.get("GATEWAY_DB", DEFAULT_DB)))
    operator.add_argument("--username", required=True)

    init = sub.add_parser("init-db", help="create or migrate the database and check its integrity")
    init.add_argument("--db", type=Path, default=DEFAULT_DB)

    check = sub.add_parser("check-broker", help="connect to the broker and report")
    _broker_options(check)

    devices = sub.add_parser("devices", help="list the devices stored in the database")
    devices.add_argument("--db", type=Path, default=DEFAULT_DB)

    tls_ca = sub.add_parser("tls-ca", help="print the CA certificate devices trust for --listen-tls (made if none yet)")
    tls_ca.add_argument("--db", type=Path, default=Path(os.environ.get("GATEWAY_DB", DEFAULT_DB)))
    tls_ca.add_argument("--pem", action="store_true", help="print the certificate itself, not its path")

    history = sub.add_parser("history", help="list recent commands and their outcomes")
    history.add_argument("--db", type=Path, default=DEFAULT_DB)
    history.add_argument("--limit", type=int, default=20)

    retention = sub.add_parser(
        "retention",
        help="show or change how long each category is kept and the database's size budget (audited)",
        description="Without options: print the retention per category, the size budget and the database's state. "
        "With --keep CATEGORY=DAYS (repeatable), --budget-bytes or --watermark-percent: change them (stored and "
        "audited; a running gateway reads them at its next start) and print the result. --purge runs a pass now "
        "(stop the gateway first: one writer).",
    )
    retention.add_argument("--db", type=Path, default=Path(os.environ.get("GATEWAY_DB", DEFAULT_DB)))
    retention.add_argument("--keep", action="append", default=[], metavar="CATEGORY=DAYS")
    retention.add_argument("--budget-bytes", type=int, default=None)
    retention.add_argument("--watermark-percent", type=int, default=None)
    retention.add_argument("--purge", action="store_true", help="run a purge pass now")
    return parser


def _broker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", default=os.environ.get("GATEWAY_BROKER"), help="mqtt://host:port or mqtts://…")
    parser.add_argument(
        "--username",
        default=os.environ.get("GATEWAY_MQTT_USERNAME"),
        help="the gateway's login on an external broker (or GATEWAY_MQTT_USERNAME); on the embedded broker it makes "
        "its own at each start",
    )
    parser.add_argument("--password", default=os.environ.get("GATEWAY_MQTT_PASSWORD"), help="or GATEWAY_MQTT_PASSWORD")
    parser.add_argument("--tls", action="store_true", default=None, help="use TLS (implied by mqtts://)")
    parser.add_argument("--ca-file", type=Path, default=None)
    parser.add_argument("--tls-insecure", action="store_true", default=None, help="do not verify the certificate")
    parser.add_argument("--discovery-prefix", default="homeassistant")


def _listen_tls_options(parser: argparse.ArgumentParser) -> None:
    tls = parser.add_argument_group("the embedded broker on the building's network (TLS only)")
    tls.add_argument(
        "--listen-tls",
        metavar="HOST:PORT",
        default=os.environ.get("GATEWAY_LISTEN_TLS"),
        help="a TLS listener for devices (e.g. 192.168.1.10:8883); the plaintext one stays on loopback",
    )
    tls.add_argument("--tls-cert", type=Path, default=None, help="its certificate (default: one the gateway makes)")
    tls.add_argument("--tls-key", type=Path, default=None, help="its private key, with --tls-cert")


def _api_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-host", default=os.environ.get("GATEWAY_API_HOST", "127.0.0.1"), help="API address")
    parser.add_argument(
        "--api-port",
        type=int,
        default=os.environ.get("GATEWAY_API_PORT") or None,
        help="API port (0: a free one; default 8080, or a free one when 8080 is taken)",
    )
    parser.add_argument(
        "--api-allowed-hosts",
        default=os.environ.get("GATEWAY_API_ALLOWED_HOSTS"),
        metavar="HOST[,HOST...]",
        help="Host header names the API answers to (e.g. gateway.example.org,*.lan; '*': any); default: the API "
        "address, localhost and 127.0.0.1, and when listening on every address any IP and this machine's name",
    )
    parser.add_argument("--no-api", action="store_true", help="do not serve the HTTP API")


def _gateway_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, default=Path(os.environ.get("GATEWAY_DB", DEFAULT_DB)))
    parser.add_argument(
        "--client-id", default=None, help="MQTT client id (default: this installation's own, kept in the database)"
    )
    parser.add_argument("--command-timeout", type=float, default=5.0)
    parser.add_argument(
        "--read-hold",
        type=float,
        default=None,
        help="seconds a quiet-rate MQTT read may wait for more messages, 0 to 5 (0: each at once; default 0.5, or "
        "GATEWAY_READ_HOLD_SECONDS)",
    )
    checks = parser.add_argument_group("connectivity and the monthly self-test")
    checks.add_argument(
        "--uplink",
        default=os.environ.get("GATEWAY_UPLINK"),
        help="broadband check target: host:port (TCP connect) or an http(s) URL (HEAD); default: no check",
    )
    checks.add_argument("--uplink-interval", type=float, default=30.0, help="seconds between broadband checks")
    checks.add_argument(
        "--report-webhook", default=os.environ.get("GATEWAY_REPORT_WEBHOOK"), help="failure reports: POST URL"
    )
    checks.add_argument(
        "--report-mqtt",
        default=os.environ.get("GATEWAY_REPORT_MQTT"),
        help="failure reports: mqtt(s)://host:port/topic on the upstream broker",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gateway`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "dynsec", False) and (args.broker is None or not args.username):
        parser.error("--dynsec needs --broker and the gateway's dynsec admin login (--username, --password)")
    configure_logging(args.log_level, args.log_format)
    limit_malloc_arenas()  # before the first thread
    try:
        return asyncio.run(_dispatch(args))
    except KeyboardInterrupt:
        return 130
    except GatewayError as exc:
        log.error("%s", exc, extra={"code": exc.code})  # noqa: TRY400 - a clear message, not a traceback
        print(f"error [{exc.code}]: {exc}", file=sys.stderr)
        return 2


async def _dispatch(args: argparse.Namespace) -> int:
    from . import subcommands

    if args.command == "run":
        await _until_signalled(subcommands.run(args))
        return 0
    if args.command == "demo":
        return await subcommands.demo(args)
    if args.command == "create-operator":
        return await subcommands.create_operator(args.db, args.username)
    if args.command == "init-db":
        return await subcommands.init_db(args.db)
    if args.command == "check-broker":
        return await subcommands.check_broker(args)
    if args.command == "devices":
        return await subcommands.list_devices(args.db)
    if args.command == "tls-ca":
        return await subcommands.tls_ca(args.db, args.pem)
    if args.command == "history":
        return await subcommands.history(args.db, args.limit)
    if args.command == "retention":
        return await subcommands.retention(args)
    raise GatewayError(f"unknown command {args.command}")  # pragma: no cover - argparse refuses it first


async def _until_signalled(job: Coroutine[Any, Any, None]) -> None:
    """Run ``job`` until SIGINT or SIGTERM, then let it shut down cleanly."""
    task = asyncio.create_task(job, name="gateway-main")
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise
        log.info("stopped by signal")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
