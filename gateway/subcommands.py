"""What the ``gateway`` subcommands do: run the service, the demo, and the installer's checks."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import getpass
import json
import logging
import os
import secrets
import socket
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr, ValidationError

from .api import ApiService
from .app import Gateway
from .clock import SystemClock
from .config import (
    DEFAULT_READ_HOLD_SECONDS,
    MAX_READ_HOLD_SECONDS,
    AccountSettings,
    ApiSettings,
    BrokerSettings,
    ChecksSettings,
    GatewaySettings,
    UplinkSettings,
    UplinkTarget,
)
from .errors import ConfigError, TransportError
from .mqtt.acl import CredentialKind
from .mqtt.credential_service import DropOnWithdraw
from .mqtt.credentials import MADE_AT_START, BrokerCredentials
from .mqtt.transport import MqttLink
from .policy.store import get_setting, set_setting
from .retention import Category
from .services import Services
from .simulator import simulated_unit, simulator_logins
from .storage import Database
from .storage.records import load_entities, recent_commands

if TYPE_CHECKING:
    import sqlite_utils

    from .mqtt.broker import EmbeddedBroker
    from .mqtt.broker_auth import DeferredVerifier, Verifier
    from .mqtt.tls import TlsListener

# The embedded broker (amqtt, with its websockets, yaml and transitions), the TLS helpers (cryptography) and the
# demo are imported where they are used: a gateway on an external broker never needs them, and importing them
# cost it ~0.3 s of its start and several MB (docs/bench.md, "Scale run").

__all__ = [
    "account_settings",
    "api_settings",
    "broker_settings",
    "check_broker",
    "create_operator",
    "demo",
    "history",
    "init_db",
    "installation_client_id",
    "list_devices",
    "run",
    "start_records",
    "tls_ca",
    "tls_listener",
]

log = logging.getLogger("gateway")
SIMULATION_GRACE_SECONDS = 3.0
SIMULATION_DISCOVERY_SECONDS = 10.0
"""How long to wait for the gateway to discover the simulated unit before going on anyway."""
DEFAULT_BROKER_PORT = 1883
DEFAULT_API_PORT = 8080
CLIENT_ID_SETTING = "mqtt_client_id"


def broker_settings(args: argparse.Namespace, url: str) -> BrokerSettings:
    """Broker settings from a URL plus the command-line overrides."""
    return BrokerSettings.from_url(
        url,
        username=args.username,
        password=args.password,
        tls=args.tls,
        ca_file=args.ca_file,
        tls_insecure=args.tls_insecure,
    )


def print_json(value: object) -> None:
    """Print a value as indented JSON on stdout."""
    print(json.dumps(value, indent=2, default=str))


def port_in_use(error: TransportError) -> bool:
    """Whether a broker start failed because the port was taken."""
    text = str(error).lower()
    return "address already in use" in text or "errno 98" in text


def port_taken(host: str, port: int) -> bool:
    """Whether ``host:port`` cannot be listened on because something else listens there now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: TIME_WAIT is no taker
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def port_taken_error(what: str, host: str, port: int, option: str) -> ConfigError:
    """The one-line error for an explicitly chosen port that is taken, naming the option that changes it."""
    return ConfigError(
        f"{what} port {port} on {host} is taken: choose another with {option} N (0 for a free one)",
        field=option.removeprefix("--").replace("-", "_"),
    )


async def _embedded_broker(
    host: str, port: int | None, credentials: Verifier, tls: TlsListener | None = None
) -> EmbeddedBroker:
    """Start the embedded broker, admitting only ``credentials`` (on every listener); when the default port is taken
    (say by Mosquitto), use a free one."""
    from .mqtt.broker import EmbeddedBroker, free_port

    if tls is not None and tls.port and port_taken(tls.host, tls.port):
        raise port_taken_error("TLS listener", tls.host, tls.port, "--listen-tls")
    chosen = DEFAULT_BROKER_PORT if port is None else port or free_port(host)
    broker = EmbeddedBroker(host, chosen, credentials=credentials, tls=tls)
    try:
        await broker.start()
    except TransportError as exc:
        if not port_in_use(exc):
            raise
        if port is not None:
            raise port_taken_error("broker", host, port, "--listen-port") from exc
        broker = EmbeddedBroker(host, free_port(host), credentials=credentials, tls=tls)
        log.warning("port %d is taken; embedded broker on %s instead", DEFAULT_BROKER_PORT, broker.url)
        await broker.start()
    if broker.tls is not None:
        log.info("TLS listener on %s (devices trust the CA: gateway tls-ca)", broker.tls.url)
    return broker


@dataclass(frozen=True)
class _GatedBroker:
    """The embedded broker of this start, the gateway's own login on it, and the verifier it asks."""

    broker: EmbeddedBroker
    login: tuple[str, str]
    verifier: DeferredVerifier

    @property
    def url(self) -> str:
        """The broker's address."""
        return self.broker.url

    def broker_settings(self, settings: BrokerSettings) -> BrokerSettings:
        """``settings`` logging in with the gateway's own login."""
        username, password = self.login
        return settings.model_copy(update={"username": username, "password": password})

    def bind(self, services: Services) -> None:
        """Admit the logins the services' credential store knows (from when it is open), and cut a credential's
        live connections the moment staff revoke it."""
        self.verifier.bind(services.broker_credentials.verify)
        services.device_credentials.attach(DropOnWithdraw(self.broker))


async def _gated_broker(
    stack: contextlib.AsyncExitStack, login: tuple[str, str], host: str, port: int | None, tls: TlsListener | None
) -> _GatedBroker:
    """Start the embedded broker, stopped when ``stack`` closes, admitting nobody until bound to the services."""
    from .mqtt.broker_auth import DeferredVerifier

    verifier = DeferredVerifier()
    broker = await _embedded_broker(host, port, verifier, tls)
    stack.push_async_callback(broker.stop)
    return _GatedBroker(broker, login, verifier)


async def _start_logins(db: Database, client_id: str, *, own: bool) -> tuple[str, str] | None:
    """Revoke the logins the previous start made (their passwords died with it) and, with ``own``, make the
    gateway's own for this start: a gateway credential named after its client id, its password only in memory."""
    credentials = BrokerCredentials(db, SystemClock())
    await credentials.revoke_made_by(MADE_AT_START, revoked_by=MADE_AT_START)
    if not own:
        return None
    issued = await credentials.create(
        client_id,
        CredentialKind.GATEWAY,
        property_id=None,
        client_id=client_id,
        label="the gateway's own login on its embedded broker (made at each start)",
        created_by=MADE_AT_START,
    )
    return client_id, issued.password.get_secret_value()


async def start_records(path: Path, client_id: str | None, *, embedded: bool) -> tuple[str, tuple[str, str] | None]:
    """What a start needs from the database before the broker and the services are up: the client id (this
    installation's unless one is given) and, on the embedded broker, the gateway's own login for this start.

    The database is open only for this, and closed before the services open it (one writer at a time).
    """
    async with Database(path) as db:
        chosen: str = client_id if client_id else await db.run(_client_id)
        return chosen, await _start_logins(db, chosen, own=embedded)


def _client_id(db: sqlite_utils.Database) -> str:
    stored = get_setting(db, CLIENT_ID_SETTING)
    if stored:
        return stored
    made = f"aptgateway-{secrets.token_hex(4)}"
    set_setting(db, CLIENT_ID_SETTING, made, datetime.now(UTC), "gateway")
    return made


async def tls_listener(args: argparse.Namespace) -> TlsListener | None:
    """The embedded broker's TLS listener from ``--listen-tls`` with the operator's ``--tls-cert``/``--tls-key``, or
    the certificate the gateway makes and keeps beside its database; None without ``--listen-tls``."""
    if args.listen_tls is None:
        if args.tls_cert is not None or args.tls_key is not None:
            raise ConfigError("--tls-cert and --tls-key go with --listen-tls HOST:PORT", field="listen_tls")
        return None
    if args.broker is not None:
        raise ConfigError("--listen-tls is for the embedded broker: not with --broker", field="listen_tls")
    from .mqtt.tls import TlsListener, ensure_server_certificate, parse_listen, tls_directory

    host, port = parse_listen(args.listen_tls, "--listen-tls")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together", field="tls_cert")
    if args.tls_cert is not None:
        for option, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
            if not path.is_file():
                raise ConfigError(f"{option}: no file at {path}", field=option.removeprefix("--").replace("-", "_"))
        return TlsListener(host, port, args.tls_cert, args.tls_key)
    made = await asyncio.to_thread(ensure_server_certificate, tls_directory(args.db), host)
    return TlsListener(host, port, made.cert, made.key)


async def tls_ca(path: Path, pem: bool) -> int:
    """Print the path (or the PEM) of this installation's CA certificate, which devices are given to trust; the CA is
    made if there is none yet."""
    from .mqtt.tls import ensure_ca, tls_directory

    files = tls_directory(path)
    await asyncio.to_thread(ensure_ca, files)
    if pem:
        sys.stdout.write(files.ca_cert.read_text())
    else:
        print(files.ca_cert)
    return 0


def api_port(host: str, port: int | None) -> int:
    """The API's port: a chosen one must be free (ConfigError), the default falls back to a free one (0)."""
    if port is None:
        if not port_taken(host, DEFAULT_API_PORT):
            return DEFAULT_API_PORT
        log.warning("port %d is taken; the API listens on a free port instead (printed below)", DEFAULT_API_PORT)
        return 0
    if port != 0 and port_taken(host, port):
        raise port_taken_error("API", host, port, "--api-port")
    return port


async def installation_client_id(path: Path) -> str:
    """This installation's MQTT client id: made at random at the first start and kept in the database.

    Two gateways on one broker with one client id would take the session from each other over and over.
    """
    async with Database(path) as db:
        return await db.run(_client_id)


async def run(args: argparse.Namespace) -> None:
    """Run the gateway until cancelled.

    On the embedded broker (no ``--broker``) every client must log in with a credential the gateway issued: the
    gateway with its own, made at this start; the simulated unit with one per device. On an external broker the
    gateway logs in with ``--username``/``--password``, and the broker's own configuration locks it down.
    """
    read_hold = read_hold_seconds(args)  # a bad option ends it before anything starts
    async with contextlib.AsyncExitStack() as stack:
        embedded = args.broker is None
        if embedded and (args.username or args.password):
            log.warning(
                "--username/--password are for an external broker (--broker): on its embedded broker the gateway "
                "logs in with a login of its own, made at each start"
            )
        port = None if args.no_api else api_port(args.api_host, args.api_port)
        client_id, login = await start_records(args.db, args.client_id, embedded=embedded)
        tls = await tls_listener(args)
        gated = None if login is None else await _gated_broker(stack, login, args.listen_host, args.listen_port, tls)
        broker = broker_settings(args, gated.url if gated else args.broker)
        settings = GatewaySettings(
            broker=gated.broker_settings(broker) if gated else broker,
            database=args.db,
            discovery_prefix=args.discovery_prefix,
            client_id=client_id,
            command_timeout=args.command_timeout,
            read_hold_seconds=read_hold,
            uplink=uplink_settings(args),
            checks=checks_settings(args),
            accounts=account_settings(),
            dynsec=args.dynsec,
            # The broker scopes every client to its own topics (gated embedded broker, or Mosquitto's dynamic
            # security): so the gateway can trust a topic to say who published it. Otherwise it warns at start.
            device_plane="enforced" if embedded or args.dynsec else "open",
        )
        # The same services with or without HTTP: the self-tests, reminders and report outbox run either way.
        services = Services(settings)
        if gated is not None:
            gated.bind(services)
        await stack.enter_async_context(services)
        gateway = services.gateway
        api_url = None
        if port is not None:
            api = await stack.enter_async_context(ApiService(services, api_settings(args, port)))
            api_url = api.url
        print(addresses(settings, api_url), flush=True)
        if args.simulate == "always" or (args.simulate == "auto" and embedded):
            with contextlib.suppress(TransportError):
                await gateway.wait_connected(SIMULATION_GRACE_SECONDS)
            await asyncio.sleep(SIMULATION_GRACE_SECONDS)  # let retained discovery configs and live devices speak
            if args.simulate == "always" or not heard_devices(gateway):
                prefix = settings.discovery_prefix
                logins = await simulator_logins(services.broker_credentials, prefix) if gated else None
                unit = await stack.enter_async_context(simulated_unit(settings.broker, prefix, logins=logins))
                await _wait_heard(gateway, [f"fwsim-{unit.unit}-{name}" for name in unit.devices])
                print("no devices found: started a simulated unit (u101)", flush=True)
        # Everything made while starting (modules, the API's schemas, the stored entities) lives as long as the
        # process: moved out of the collector's reach, a full collection no longer walks it (measured here: a
        # 71 ms full collection with 20 devices, felt by whichever command was running).
        gc.freeze()
        await asyncio.Event().wait()


def addresses(settings: GatewaySettings, api_url: str | None) -> str:
    """What ``gateway run`` prints once up: the broker and database, then the API, its docs and the console."""
    lines = [f"gateway running: broker {settings.broker.url}, database {settings.database}"]
    if api_url is not None:
        lines += [f"API:     {api_url}/api/v1", f"docs:    {api_url}/docs", f"console: {api_url}/console"]
    return "\n".join(lines)


def heard_devices(gateway: Gateway) -> set[str]:
    """Devices that reported since this start and are not offline (the database's memory of others is no device)."""
    return {e.device_id for e in gateway.registry.entities() if e.heard_since_start and e.available is not False}


async def _wait_heard(gateway: Gateway, device_ids: list[str]) -> None:
    """Wait until every device in ``device_ids`` has reported, so that whoever reads the next line finds them."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(SIMULATION_DISCOVERY_SECONDS):
            while not set(device_ids) <= heard_devices(gateway):
                await asyncio.sleep(0.05)


def uplink_settings(args: argparse.Namespace) -> UplinkSettings:
    """The broadband check from the command line (ConfigError when malformed)."""
    try:
        target = UplinkTarget.parse(args.uplink) if args.uplink else None
        return UplinkSettings(target=target, interval_seconds=args.uplink_interval)
    except ValidationError as exc:
        raise ConfigError(f"--uplink-interval: {exc.errors()[0]['msg']}", field="uplink_interval") from exc


def read_hold_seconds(args: argparse.Namespace) -> float:
    """``--read-hold`` (or ``GATEWAY_READ_HOLD_SECONDS``, or 0.5), checked (ConfigError when malformed)."""
    raw = args.read_hold
    if raw is None:
        raw = os.environ.get("GATEWAY_READ_HOLD_SECONDS", DEFAULT_READ_HOLD_SECONDS)
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= MAX_READ_HOLD_SECONDS:
        raise ConfigError(f"--read-hold: {raw!r} is not 0 to {MAX_READ_HOLD_SECONDS:g} seconds", field="read_hold")
    return seconds


def checks_settings(args: argparse.Namespace) -> ChecksSettings:
    """Where failure reports go, from the command line (ConfigError when malformed)."""
    try:
        return ChecksSettings(report_webhook=args.report_webhook, report_mqtt=args.report_mqtt)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "report"
        raise ConfigError(f"--{field.replace('_', '-')}: {error['msg']}", field=field) from exc


def api_settings(args: argparse.Namespace, port: int) -> ApiSettings:
    """API settings from the command line (``port`` resolved by ``api_port``)."""
    hosts = getattr(args, "api_allowed_hosts", None)
    allowed = tuple(h.strip() for h in hosts.split(",") if h.strip()) if hosts else None
    return ApiSettings(host=args.api_host, port=port, allowed_hosts=allowed)


def account_settings() -> AccountSettings:
    """Sign-in settings: the bootstrap operator from its environment variables."""
    password = os.environ.get("GATEWAY_OPERATOR_PASSWORD")
    return AccountSettings(
        bootstrap_operator=os.environ.get("GATEWAY_OPERATOR_USERNAME") or None,
        bootstrap_password=SecretStr(password) if password else None,
    )


async def create_operator(path: Path, username: str) -> int:
    """Create an operator account; the password comes from GATEWAY_OPERATOR_PASSWORD or a prompt, never a default."""
    password = os.environ.get("GATEWAY_OPERATOR_PASSWORD")
    if not password and not sys.stdin.isatty():
        print(
            "error: no terminal to ask for the password: set GATEWAY_OPERATOR_PASSWORD or run create-operator in a "
            "terminal",
            file=sys.stderr,
        )
        return 2
    if not password:
        password = getpass.getpass(f"password for operator {username}: ")
        if password != getpass.getpass("again: "):
            print("error: the passwords differ", file=sys.stderr)
            return 2
    async with Services.offline(GatewaySettings(database=path)) as services:
        account = await services.accounts.create_operator(username, password, created_by="cli")
    print(f"operator {account.username} created ({account.id})")
    return 0


async def init_db(path: Path) -> int:
    """Create or migrate the database and check its integrity."""
    async with Database(path) as db:
        version = await db.run(lambda d: d.execute("PRAGMA user_version").fetchone()[0])
    print(f"database {path} ok (schema {version})")
    return 0


async def check_broker(args: argparse.Namespace) -> int:
    """Connect to the broker once and report."""
    if args.broker is None:
        print("error: --broker is required", flush=True)
        return 2
    settings = broker_settings(args, args.broker)
    link = MqttLink(settings, client_id="aptgateway-check", subscriptions=[], on_message=lambda _m: None)
    async with link:
        try:
            await link.wait_connected(5)
        except TransportError as exc:
            print(f"broker {settings.url}: unreachable ({exc})")
            return 1
    print(f"broker {settings.url}: ok")
    return 0


def _existing(path: Path) -> Path:
    if not path.exists():
        raise ConfigError(f"no database at {path} (start the gateway first, or pass --db)", field="db")
    return path


async def list_devices(path: Path) -> int:
    """Print the stored entities."""
    async with Database(_existing(path)) as db:
        rows = await db.run(load_entities)
    print_json(
        [
            {
                "id": r.key,
                "kind": r.kind,
                "device": r.device_id,
                "available": r.available,
                "state": r.state,
                "last_seen": r.last_seen,
                "removed": r.removed_at is not None,
            }
            for r in rows
        ]
    )
    return 0


async def history(path: Path, limit: int) -> int:
    """Print the newest commands and their outcomes."""
    async with Database(_existing(path)) as db:
        rows = await db.run(lambda d: recent_commands(d, None, limit))
    print_json(
        [
            {
                "id": r.id,
                "entity": r.entity_key,
                "actor": r.actor,
                "command": r.command,
                "status": r.status,
                "reason": r.reason,
                "created_at": r.created_at,
                "finished_at": r.finished_at,
            }
            for r in rows
        ]
    )
    return 0


async def retention(args: argparse.Namespace) -> int:
    """Print (and with options change, audited as the gateway itself) the retention and the size budget."""
    days: dict[Category, int] = {}
    for item in args.keep:
        name, _, value = str(item).partition("=")
        if name not in {c.value for c in Category} or not value.isdigit():
            choices = ", ".join(c.value for c in Category)
            raise ConfigError(f"--keep wants CATEGORY=DAYS with a category of {choices}: {item!r}", field="keep")
        days[Category(name)] = int(value)
    async with Services.offline(GatewaySettings(database=_existing(args.db))) as services:
        keeper = services.retention
        if days or args.budget_bytes is not None or args.watermark_percent is not None:
            await keeper.update(
                None, days=days, budget_bytes=args.budget_bytes, watermark_percent=args.watermark_percent
            )
        report = await keeper.purge() if args.purge else None
        status = await keeper.status()
    policy = keeper.policy
    print_json(
        {
            "days": {str(c): d for c, d in policy.days.items()},
            "budget_bytes": policy.budget_bytes,
            "watermark_percent": policy.watermark_percent,
            "state": status.state,
            "used_bytes": status.used_bytes,
            "file_bytes": status.file_bytes,
            **({} if report is None else {"purged": report.deleted, "thinned": report.thinned}),
        }
    )
    return 0


async def demo(args: argparse.Namespace) -> int:
    """Start a broker, the gateway and a simulated unit; run representative commands; print the outcomes."""
    from .demo import run_demo
    from .mqtt.broker import free_port

    with tempfile.TemporaryDirectory(prefix="gateway-demo-") as tmp:
        db = args.db or Path(tmp) / "demo.sqlite3"
        client_id = "aptgateway-demo"
        async with contextlib.AsyncExitStack() as stack:
            _, login = await start_records(db, client_id, embedded=args.broker is None)
            gated = None if login is None else await _gated_broker(stack, login, "127.0.0.1", free_port(), None)
            broker = broker_settings(args, gated.url if gated else args.broker)
            settings = GatewaySettings(
                broker=gated.broker_settings(broker) if gated else broker,
                database=db,
                discovery_prefix=args.discovery_prefix,
                client_id=client_id,
                command_timeout=2.0,
                checks=ChecksSettings(device_timeout_seconds=2.0),
                device_plane="enforced" if gated else "open",
            )
            return await run_demo(stack, settings, None if gated is None else gated.bind)
    return 1  # pragma: no cover
