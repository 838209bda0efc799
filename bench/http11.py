"""A lean keep-alive HTTP/1.1 client for the timed round trips: h11 over one asyncio stream, TCP_NODELAY.

httpx spends about 1.1 ms of the bench's own CPU on every request here (measured: a GET the gateway answers in
0.5 ms takes 1.6 ms through httpx), which would be counted against the gateway; the bare MQTT reference has no
such client cost. The bench reports the httpx figure too, as a note.
"""

from __future__ import annotations

import asyncio
import json
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import h11

from .process import TCP_NODELAY, BenchError

__all__ = ["Http11Client", "Reply"]


class Reply:
    """Status and body of one response."""

    __slots__ = ("body", "status")

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body

    def json(self) -> Any:
        """The body, parsed."""
        return json.loads(self.body) if self.body else None


class Http11Client:
    """One persistent connection to ``base_url``; requests go one at a time."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise BenchError(f"not an http://host:port URL: {base_url}")
        self._host, self._port, self._prefix = parts.hostname, parts.port, parts.path.rstrip("/")
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._conn = h11.Connection(h11.CLIENT)

    async def __aenter__(self) -> Self:
        self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        self._writer.get_extra_info("socket").setsockopt(*TCP_NODELAY)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()

    async def post_json(self, path: str, body: Any, token: str) -> Reply:
        """POST ``body`` as JSON to ``path`` (under the base URL's path) and read the whole answer."""
        assert self._reader is not None and self._writer is not None
        data = json.dumps(body).encode()
        headers = [
            ("host", f"{self._host}:{self._port}"),
            ("authorization", f"Bearer {token}"),
            ("content-type", "application/json"),
            ("content-length", str(len(data))),
        ]
        conn = self._conn
        self._writer.write(
            conn.send(h11.Request(method="POST", target=self._prefix + path, headers=headers))
            + conn.send(h11.Data(data=data))
            + conn.send(h11.EndOfMessage())
        )
        status, chunks = 0, []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                received = await self._reader.read(65536)
                if not received:
                    raise BenchError("the gateway closed the connection")
                conn.receive_data(received)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise BenchError("the gateway closed the connection")
        conn.start_next_cycle()
        return Reply(status, b"".join(chunks))
