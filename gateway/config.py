"""Settings: the gateway's own (broker, storage, discovery, timeouts, checks, sign-in) and, apart, the HTTP API's."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from .errors import ConfigError

__all__ = [
    "DEFAULT_READ_HOLD_SECONDS",
    "MAX_READ_HOLD_SECONDS",
    "AccountSettings",
    "ApiSettings",
    "BrokerSettings",
    "ChecksSettings",
    "GatewaySettings",
    "PurgeSettings",
    "UplinkSettings",
    "UplinkTarget",
]


class BrokerSettings(BaseModel):
    """Where the MQTT broker is and how to log in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    tls_insecure: bool = False
    keepalive: Annotated[int, Field(ge=5, le=3600)] = 30

    @classmethod
    def from_url(cls, url: str, **overrides: object) -> BrokerSettings:
        """Parse ``mqtt://[user:pass@]host[:port]`` or ``mqtts://…``; options override the URL."""
        # urlsplit itself refuses some text ("mqtt://[" is not a valid IPv6 URL) with a ValueError: a ConfigError
        # like any other bad URL, not a traceback.
        try:
            parts = urlsplit(url)
            hostname = parts.hostname
        except ValueError as exc:
            raise ConfigError(f"broker URL must look like mqtt://host:port, got {url!r}", field="broker") from exc
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not hostname:
            raise ConfigError(f"broker URL must look like mqtt://host:port, got {url!r}", field="broker")
        tls = parts.scheme in ("mqtts", "ssl")
        try:
            explicit = parts.port
        except ValueError as exc:
            raise ConfigError(f"bad port in broker URL {url!r}", field="broker") from exc
        values: dict[str, object] = {
            "host": hostname,
            # Not ``parts.port or default``: port 0 is refused below rather than silently read as the default.
            "port": explicit if explicit is not None else (8883 if tls else 1883),
            "tls": tls,
            "username": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"]) or "broker"
            raise ConfigError(f"broker URL {url!r}: {where}: {error['msg']}", field="broker") from exc

    @property
    def url(self) -> str:
        """The broker URL without credentials (safe to log); an IPv6 address in brackets, so that it parses back."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"


class UplinkTarget(BaseModel):
    """What the broadband check reaches: ``host:port`` (a TCP connect) or an ``http(s)://`` URL (a HEAD request)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: Annotated[str, Field(min_length=1, max_length=253)]
    port: Annotated[int, Field(ge=1, le=65535)]
    url: str | None = None

    @classmethod
    def parse(cls, value: str) -> Self:
        """``host:port``, ``[v6]:port`` or ``http(s)://host[:port]/path``; ConfigError otherwise."""
        text = value.strip()
        url: str | None = None
        if "://" in text:
            try:
                parts = urlsplit(text)  # raises ValueError itself for some text, e.g. "http://[" (bad IPv6 URL)
                hostname = parts.hostname
            except ValueError as exc:
                raise ConfigError(f"uplink URL must be http(s)://host/..., got {value[:80]!r}", field="uplink") from exc
            if parts.scheme not in ("http", "https") or not hostname:
                raise ConfigError(f"uplink URL must be http(s)://host/..., got {value[:80]!r}", field="uplink")
            try:
                explicit = parts.port
            except ValueError as exc:
                raise ConfigError(f"bad port in uplink URL {value[:80]!r}", field="uplink") from exc
            host, port, url = (
                hostname,
                explicit if explicit is not None else (443 if parts.scheme == "https" else 80),
                text,
            )
        else:
            host, sep, port_text = text.rpartition(":")
            # isascii: str.isdigit() is also true of "²" and other digits int() refuses.
            if not sep or not host or not (port_text.isascii() and port_text.isdigit()):
                raise ConfigError(f"uplink target must be host:port or a URL, got {value[:80]!r}", field="uplink")
            host, port = host.strip("[]"), int(port_text)
        try:
            return cls(host=host, port=port, url=url)
        except ValidationError as exc:
            raise ConfigError(f"uplink target {value[:80]!r}: {exc.errors()[0]['msg']}", field="uplink") from exc

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return self.url or f"{host}:{self.port}"


class UplinkSettings(BaseModel):
    """The broadband check: target, period, and how many results in a row open or close an outage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: UplinkTarget | None = None
    interval_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    # Damping: one lost probe is not an outage, one lucky probe is not a recovery.
    fail_threshold: Annotated[int, Field(ge=1, le=100)] = 3
    recover_threshold: Annotated[int, Field(ge=1, le=100)] = 2


class ChecksSettings(BaseModel):
    """The self-test, compliance reminders, and where failure reports go upstream."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Upstream for failure reports: an http(s) webhook, or mqtt(s)://host:port/topic/path on an upstream broker.
    report_webhook: Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2000)] | None = None
    report_mqtt: Annotated[str, Field(pattern=r"^mqtts?://\S+/\S+$", max_length=2000)] | None = None
    device_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    tick_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    retry_initial_seconds: Annotated[float, Field(gt=0, le=600)] = 1.0
    retry_cap_seconds: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    report_outage_after_seconds: Annotated[int, Field(ge=0)] = 900
    automatic_tests: bool = True  # test idle units that owe a test without waiting for anyone
    # A battery below this is low: the alert, and the health views' count (one threshold for both).
    low_battery_percent: Annotated[float, Field(ge=0, le=100)] = 20.0


class AccountSettings(BaseModel):
    """Sign-in, whatever the edge: session lifetimes and the operator account created at first start."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    session_ttl_seconds: Annotated[int, Field(ge=60)] = 30 * 86_400
    idle_timeout_seconds: Annotated[int, Field(ge=60)] = 7 * 86_400
    bootstrap_operator: Annotated[str, Field(min_length=3, max_length=64)] | None = None
    bootstrap_password: SecretStr | None = None


class PurgeSettings(BaseModel):
    """The background purge's pace (retention days and the size budget are the operator's, stored in the database)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tick_seconds: Annotated[float, Field(gt=0, le=86_400)] = 300.0  # a pass this often (sizes are checked each time)
    batch_rows: Annotated[int, Field(ge=10, le=100_000)] = 500  # rowids one delete spans: ~20 ms of the writer
    pause_seconds: Annotated[float, Field(ge=0, le=10)] = 0.02  # between batches: other writes go first
    vacuum_pages: Annotated[int, Field(ge=1, le=100_000)] = 512  # free pages given back per incremental vacuum step


DEFAULT_READ_HOLD_SECONDS = 0.5
"""How long a quiet-rate read may wait for more messages by default (``GatewaySettings.read_hold_seconds``)."""
MAX_READ_HOLD_SECONDS = 5.0


class GatewaySettings(BaseModel):
    """Everything the gateway's services need to run, with or without the HTTP API."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    broker: BrokerSettings = BrokerSettings()
    client_id: Annotated[str, Field(min_length=1, max_length=64)] = "aptgateway"
    database: Path = Path("data/gateway.sqlite3")
    discovery_prefix: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^#+]+$")] = "homeassistant"
    command_timeout: Annotated[float, Field(gt=0, le=120)] = 5.0
    state_flush_interval: Annotated[float, Field(gt=0, le=10)] = 0.2
    # At a quiet rate, the broker link lets messages gather this long and reads them in one wake-up (a lone message
    # costs over 10x one of a batch; see gateway.mqtt.hold). Commands and the liveness echo are never held. 0: off.
    read_hold_seconds: Annotated[float, Field(ge=0, le=MAX_READ_HOLD_SECONDS)] = DEFAULT_READ_HOLD_SECONDS
    # QoS 0: Mosquitto drops QoS 1 messages to a slow subscriber beyond max_inflight_messages + max_queued_messages
    # (1,020 by default; retained ones on a fresh subscription too), QoS 0 ones only once the socket's buffers are
    # full as well (measured in docs/bench.md); and devices publish at QoS 0, which a QoS 1 subscription cannot
    # raise. What is dropped anyway is caught up by resyncs (below).
    subscribe_qos: Annotated[int, Field(ge=0, le=1)] = 0
    # Subscribe to everything again this often (the broker re-sends every retained config, state and availability):
    # the catch-all for messages the broker dropped unseen. 0: only on a detected gap (an event loop held up).
    resync_seconds: Annotated[float, Field(ge=0, le=86_400)] = 3600.0
    # The event loop held up this long counts as a gap (the broker may have dropped messages meanwhile).
    stall_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    uplink: UplinkSettings = UplinkSettings()
    # A device with no last will that says nothing for this long counts as down (its own expire_after wins).
    device_silence_seconds: Annotated[int, Field(ge=60)] = 86_400
    device_check_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    # The broker link's liveness check: an echo through the broker this often; one not back within the timeout while
    # the link looks up (session taken over, subscriptions lost) forces a reconnect and counts as a broker outage.
    liveness_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    liveness_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10.0
    checks: ChecksSettings = ChecksSettings()
    accounts: AccountSettings = AccountSettings()
    purge: PurgeSettings = PurgeSettings()
    # Per device: state and availability messages beyond this are dropped and counted (a flooding device
    # must not starve the others). Real devices report a few times a minute; 50/s is far above any of them.
    device_rate_per_second: Annotated[float, Field(gt=0, le=100_000)] = 50.0
    device_burst: Annotated[int, Field(ge=1, le=1_000_000)] = 200
    # An external Mosquitto with dynamic security: the gateway's login is a dynsec admin, and the gateway creates and
    # deletes a client (and role) there for each broker credential it issues and revokes.
    dynsec: bool = False
    # Whether the gateway trusts discovery topics to say who published them. "enforced": the broker gives every
    # client a credential scoped to its own topics (the gated embedded broker, Mosquitto with dynamic security), so
    # a config is accepted only under a node id a live credential owns, naming only topics inside its roots, and a
    # device id belongs to its first publisher. "open": anyone may publish anything (an anonymous broker); configs
    # are taken as they come, and `gateway run` warns at start.
    device_plane: Literal["enforced", "open"] = "open"
    # Enforced plane only: a property's credentials may have this many discovered devices waiting, unbound, for
    # staff; the next new device is refused (unbound_devices_limit) until some are bound or removed, or the flooding
    # credential is revoked. And one device may have this many entities (device_entities_limit).
    unbound_devices_per_property: Annotated[int, Field(ge=1, le=100_000)] = 200
    entities_per_device: Annotated[int, Field(ge=1, le=10_000)] = 64


class ApiSettings(BaseModel):
    """The local HTTP API: where it listens, request limits, and what its views call stale or low."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080  # 0: any free port
    max_body_bytes: Annotated[int, Field(ge=1024, le=1_048_576)] = 16_384
    stale_after_seconds: Annotated[int, Field(ge=60)] = 86_400
    stream_keepalive_seconds: Annotated[float, Field(gt=0, le=300)] = 15.0
    # Connection limits: one host cannot hold the server (the request head is bounded in size, count and time;
    # idle keep-alive connections are closed; each source address and each account has its own share).
    max_head_bytes: Annotated[int, Field(ge=1024, le=1_048_576)] = 16_384  # request line + headers -> 431
    max_headers: Annotated[int, Field(ge=8, le=1000)] = 100  # -> 431
    head_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0  # a connection's first byte to its full head
    keepalive_timeout_seconds: Annotated[int, Field(ge=1, le=300)] = 10  # keep-alive between requests
    max_connections: Annotated[int, Field(ge=16, le=65_536)] = 1024  # all sources; beyond it 503
    max_connections_per_source: Annotated[int, Field(ge=1, le=65_536)] = 64  # more are closed at once
    max_streams_per_account: Annotated[int, Field(ge=1, le=1000)] = 4  # -> 429 too_many_streams
    max_streams_per_source: Annotated[int, Field(ge=1, le=65_536)] = 32  # -> 429 too_many_streams
    # Host header allow-list against DNS rebinding (400 host_not_allowed). None: the listening address, localhost
    # and 127.0.0.1 / ::1 (any port); listening on every address (0.0.0.0, ::) also allows any IP literal and this
    # machine's name (DNS rebinding needs a name). Entries: exact names, "*.example.org", or "*" for any.
    allowed_hosts: tuple[str, ...] | None = None
