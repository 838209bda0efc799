"""The Host header allow-list (against DNS rebinding): 400 problem+json ``host_not_allowed`` for any other."""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from .problems import MEDIA_TYPE, TYPE_PREFIX

__all__ = ["HostAllowList", "default_allowed_hosts"]

_LOCAL = ("localhost", "127.0.0.1", "::1")
_ANY_ADDRESS = ("0.0.0.0", "::", "")
IP_LITERALS = "<ip>"  # allows any IP literal: a rebinding attack needs a name that resolves to the gateway


def default_allowed_hosts(listen_host: str) -> tuple[str, ...]:
    """The listening address, localhost and the loopback addresses; when listening on every address, also any IP
    literal and this machine's name (and its ``.local`` mDNS name)."""
    hosts = [listen_host, *_LOCAL]
    if listen_host in _ANY_ADDRESS:
        name = socket.gethostname().lower()
        hosts += [IP_LITERALS, name, f"{name}.local"]
    return tuple(dict.fromkeys(h.lower() for h in hosts if h))


def host_name(header: str) -> str:
    """The host of a Host header, without its port or IPv6 brackets, lower case ("" when malformed)."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        rest = header[end + 1 :]
        if end < 0 or (rest and not (rest[0] == ":" and rest[1:].isdigit())):
            return ""
        return header[1:end]
    name, _, port = header.partition(":")
    if port and not port.isdigit():
        return ""
    return name.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostAllowList:
    """Answer 400 ``host_not_allowed`` to requests whose ``Host`` (any port) is not allowed; entries are names,
    ``*.suffix`` wildcards, ``*`` (any) or ``<ip>`` (any IP literal)."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        self.allowed = {h.strip().lower().strip("[]") for h in allowed_hosts}
        self.any = "*" in self.allowed
        self.suffixes = tuple(h[1:] for h in self.allowed if h.startswith("*."))

    def allows(self, header: str) -> bool:
        """Whether a Host header value is allowed."""
        if self.any:
            return True
        name = host_name(header)
        if not name:
            return False
        if name in self.allowed or (self.suffixes and name.endswith(self.suffixes)):
            return True
        return IP_LITERALS in self.allowed and _is_ip(name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope.get("headers", ()) if k == b"host"), b"")
        if self.allows(header.decode("latin-1")):
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {
                "type": TYPE_PREFIX + "host_not_allowed",
                "title": "Bad Request",
                "status": 400,
                "detail": "this Host is not one the gateway answers to",
                "code": "host_not_allowed",
                "instance": scope.get("path"),
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
