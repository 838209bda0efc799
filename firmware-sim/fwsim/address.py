"""Where the simulators' broker is: host, port, credentials and TLS, parsed from an ``mqtt://`` URL."""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass, field, replace
from urllib.parse import unquote, urlsplit

__all__ = ["DEFAULT_PORTS", "BrokerAddress"]

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """An MQTT broker endpoint; the password never appears in ``repr`` or ``url``."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Parse ``mqtt://[user:pass@]host[:port]`` or ``mqtts://...``; raise ValueError otherwise."""
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise ValueError(f"broker URL must start with mqtt:// or mqtts://, got {url[:80]!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"broker URL takes no path, query or fragment: {url[:80]!r}")
        host = parts.hostname
        if not host:
            raise ValueError(f"broker URL has no host: {url[:80]!r}")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"broker URL has a bad port: {url[:80]!r}") from exc
        if port == 0:
            raise ValueError(f"broker URL has a bad port: {url[:80]!r}")  # would be retried for ever
        return cls(
            host=host,
            port=port if port is not None else DEFAULT_PORTS[scheme],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            tls=scheme == "mqtts",
        )

    @property
    def url(self) -> str:
        """The address as a URL, with the user name but without the password (for logs)."""
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{user}{host}:{self.port}"

    def with_options(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: bool | None = None,
        ca_file: str | None = None,
    ) -> BrokerAddress:
        """A copy with the given options overriding the URL's (None keeps the URL's value)."""
        return replace(
            self,
            username=username if username is not None else self.username,
            password=password if password is not None else self.password,
            tls=tls if tls is not None else (self.tls or ca_file is not None),
            ca_file=ca_file if ca_file is not None else self.ca_file,
        )

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context to connect with (shared by every device using the same CA), or None."""
        return _context(self.ca_file) if self.tls else None


@functools.cache
def _context(ca_file: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)
