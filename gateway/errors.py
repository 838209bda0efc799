"""The gateway's exception tree: one root, a branch per layer, each with a stable ``code``."""

from __future__ import annotations

__all__ = [
    "BrokerUnavailable",
    "CommandError",
    "CommandRejected",
    "ConfigError",
    "GatewayError",
    "StorageError",
    "TransportError",
    "UnknownEntity",
]


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""

    code: str = "gateway_error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.field = field


class ConfigError(GatewayError):
    """Bad settings or command-line options."""

    code = "config_invalid"


class TransportError(GatewayError):
    """The MQTT layer failed."""

    code = "transport_error"


class BrokerUnavailable(TransportError):
    """The broker link is down; commands fail fast instead of waiting."""

    code = "broker_unavailable"


class StorageError(GatewayError):
    """The database refused or failed a read or write."""

    code = "storage_error"


class CommandError(GatewayError):
    """A command could not be carried out."""

    code = "command_error"


class CommandRejected(CommandError):
    """A command refused before anything was published (validation, limits, offline device)."""

    code = "command_rejected"


class UnknownEntity(CommandError):
    """No device entity with that id."""

    code = "entity_not_found"
