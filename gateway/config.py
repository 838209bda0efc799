"""Gateway settings: broker address, storage path, discovery prefix, timeouts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from .errors import ConfigError

__all__ = ["ApiSettings", "BrokerSettings", "GatewaySettings"]


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
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
            raise ConfigError(f"broker URL must look like mqtt://host:port, got {url!r}", field="broker")
        tls = parts.scheme in ("mqtts", "ssl")
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError as exc:
            raise ConfigError(f"bad port in broker URL {url!r}", field="broker") from exc
        values: dict[str, object] = {
            "host": parts.hostname,
            "port": port,
            "tls": tls,
            "username": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)

    @property
    def url(self) -> str:
        """The broker URL without credentials (safe to log)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


class GatewaySettings(BaseModel):
    """Everything the gateway process needs to run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    broker: BrokerSettings = BrokerSettings()
    client_id: Annotated[str, Field(min_length=1, max_length=64)] = "aptgateway"
    database: Path = Path("data/gateway.sqlite3")
    discovery_prefix: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^#+]+$")] = "homeassistant"
    command_timeout: Annotated[float, Field(gt=0, le=120)] = 5.0
    state_flush_interval: Annotated[float, Field(gt=0, le=10)] = 0.2
    # Wildcard subscriptions use QoS 0: Mosquitto drops retained QoS 1 messages beyond
    # max_inflight_messages + max_queued_messages (1,020 by default) on a fresh subscription.
    subscribe_qos: Annotated[int, Field(ge=0, le=1)] = 0


class ApiSettings(BaseModel):
    """The local HTTP API: where it listens, request limits, session lifetimes and the bootstrap operator."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080  # 0: any free port
    max_body_bytes: Annotated[int, Field(ge=1024, le=1_048_576)] = 16_384
    session_ttl_seconds: Annotated[int, Field(ge=60)] = 30 * 86_400
    idle_timeout_seconds: Annotated[int, Field(ge=60)] = 7 * 86_400
    stale_after_seconds: Annotated[int, Field(ge=60)] = 86_400
    low_battery_percent: Annotated[float, Field(ge=0, le=100)] = 20.0
    stream_keepalive_seconds: Annotated[float, Field(gt=0, le=300)] = 15.0
    bootstrap_operator: Annotated[str, Field(min_length=3, max_length=64)] | None = None
    bootstrap_password: SecretStr | None = None
