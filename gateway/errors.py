"""The gateway's exception tree: one root, a branch per layer, each with a stable ``code``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "AccessDenied",
    "AuthError",
    "BrokerUnavailable",
    "CommandError",
    "CommandRejected",
    "ConfigError",
    "Conflict",
    "DeliveryFailed",
    "GatewayError",
    "InvalidRequest",
    "NotFound",
    "PolicyRefused",
    "RequestError",
    "StorageError",
    "TooManyAttempts",
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


class DeliveryFailed(TransportError):
    """An upstream (webhook or broker) did not take a failure report; it stays queued for the next try."""

    code = "report_delivery_failed"


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


class RequestError(GatewayError):
    """A caller's request refused by accounts, properties or roles (the API maps each branch to a status)."""

    code = "request_refused"


class AuthError(RequestError):
    """No valid credentials: bad login, unknown, expired or revoked session, disabled account (401); ``extra``
    carries what the client needs to act on it (e.g. why the account was disabled)."""

    code = "unauthenticated"

    def __init__(self, message: str, *, code: str | None = None, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(message, code=code)
        self.extra: dict[str, Any] = dict(extra or {})


class TooManyAttempts(AuthError):
    """Logins slowed or locked out after repeated failures (429); ``retry_after`` is in seconds."""

    code = "login_throttled"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class AccessDenied(RequestError):
    """Authenticated, but the role may not do this (403); never used where a 404 must hide an id."""

    code = "role_forbidden"


class NotFound(RequestError):
    """No such thing, or not one the caller may know about (404)."""

    code = "not_found"


class Conflict(RequestError):
    """The request clashes with the current state (409)."""

    code = "conflict"


class InvalidRequest(RequestError):
    """Well-formed but unacceptable input (422), e.g. a weak password or a used activation code."""

    code = "request_invalid"


class PolicyRefused(RequestError):
    """A rule of the service (contract, plan, agreement, account, app) refused the request.

    ``link`` names the link of the chain that failed; ``extra`` carries what the client needs to act on it
    (the agreement version to accept, the minimum app version, a deadline, a limit).
    """

    code = "policy_refused"

    def __init__(self, message: str, *, code: str, link: str, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(message, code=code)
        self.link = link
        self.extra: dict[str, Any] = dict(extra or {})
