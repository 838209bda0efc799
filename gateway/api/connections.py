"""Connection limits uvicorn's httptools protocol lacks: request-head size, header count and read time, and a
cap on open connections per source address."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from .problems import MEDIA_TYPE, TYPE_PREFIX

__all__ = ["ConnectionLimits", "limited_protocol"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ConnectionLimits:
    """The limits of one server, and its count of open connections per source address."""

    max_head_bytes: int
    max_headers: int
    head_timeout: float
    per_source: int
    open_by_source: Counter[str] = field(default_factory=Counter)

    def admit(self, source: str) -> bool:
        """Count a new connection from ``source``; False (not counted) when the source has its share open."""
        if self.open_by_source[source] >= self.per_source:
            return False
        self.open_by_source[source] += 1
        return True

    def release(self, source: str) -> None:
        """Forget an admitted connection."""
        self.open_by_source[source] -= 1
        if self.open_by_source[source] <= 0:
            del self.open_by_source[source]


class _HeadTooLarge(Exception):
    pass


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the request head bounded (431 past its size or header count, the
    connection closed when a head takes longer than ``head_timeout``) and per-source connection admission."""

    limits: ConnectionLimits  # set by ``limited_protocol``

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._source: str | None = None  # set once admitted
        self._awaiting_head = True
        self._head_bytes = 0  # received since the current head began (approximate at pipelined boundaries)
        self._head_size = 0  # exact: url, names and values parsed so far
        self._header_count = 0
        self._head_too_large = False
        self._head_timer: asyncio.TimerHandle | None = None

    # --- connection ---------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Admit the connection within its source's share, or close it at once; start the head clock."""
        super().connection_made(transport)
        source = self.client[0] if self.client else ""
        if not self.limits.admit(source):
            log.warning("connection refused: too many from one source", extra={"source": source})
            transport.abort()  # no answer: a flood gets nothing to read and frees the socket now
            return
        self._source = source
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Release the source's share and the head clock."""
        self._cancel_head_timer()
        if self._source is not None:
            self.limits.release(self._source)
            self._source = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser, answering 431 when the head grows past its limits (before it is buffered further)."""
        if self._source is None:
            return  # refused; the transport is closing
        self._unset_keepalive_if_required()
        if self._awaiting_head:
            self._head_bytes += len(data)
            self._arm_head_timer()  # a head after a keep-alive wait gets its own clock from its first byte
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # as uvicorn's own (the API serves no WebSocket)
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._head_too_large:
                self._send_431()
                return
            log.warning("invalid HTTP request received")
            self.send_400_response("Invalid HTTP request received.")
            return
        # Bytes of a head still incomplete count even before the parser hands them over (one long header).
        if self._awaiting_head and self._head_bytes > self.limits.max_head_bytes:
            self._send_431()

    # --- parser callbacks ---------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        """A new request: its head is measured from here."""
        self._awaiting_head = True
        self._head_size = 0
        self._header_count = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        """Count the request line toward the head's size."""
        self._grow_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Count the header toward the head's size and header count."""
        self._header_count += 1
        self._grow_head(len(name) + len(value) + 4)
        if self._header_count > self.limits.max_headers:
            self._head_too_large = True
            raise _HeadTooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is in: stop its clock; the request runs (its body is the app's limit)."""
        self._awaiting_head = False
        self._head_bytes = 0
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The request is in; the next bytes begin a new head."""
        super().on_message_complete()
        self._awaiting_head = True

    # --- helpers ------------------------------------------------------------------------------------------

    def _grow_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self.limits.max_head_bytes:
            self._head_too_large = True
            raise _HeadTooLarge

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._awaiting_head and not self.transport.is_closing():
            # Idle (no request yet) or too slow a head: either way the connection is given back.
            self.transport.close()

    def _send_431(self) -> None:
        self._cancel_head_timer()
        body = json.dumps(
            {
                "type": TYPE_PREFIX + "header_too_large",
                "title": "Request header fields too large",
                "status": 431,
                "detail": f"request heads are limited to {self.limits.max_head_bytes} bytes and "
                f"{self.limits.max_headers} header fields",
                "code": "header_too_large",
            }
        ).encode()
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[431],
                    b"content-type: " + MEDIA_TYPE.encode("ascii") + b"\r\n",
                    b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )
        self.transport.close()
        self.parser = httptools.HttpRequestParser(self)  # drop what the old parser had buffered


def limited_protocol(limits: ConnectionLimits) -> type[LimitedHttpToolsProtocol]:
    """A protocol class bound to one server's limits (uvicorn instantiates the class it is given)."""

    class BoundHttpToolsProtocol(LimitedHttpToolsProtocol):
        pass

    BoundHttpToolsProtocol.limits = limits
    return BoundHttpToolsProtocol
