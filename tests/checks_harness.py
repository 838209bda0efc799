"""A local uplink target that a test opens and closes, a local webhook that counts deliveries, and polling."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from gateway.config import ChecksSettings, UplinkSettings, UplinkTarget


class UplinkTargetServer:
    """A TCP port on 127.0.0.1 standing in for the internet: ``close()`` stops listening, ``open()`` listens again."""

    def __init__(self) -> None:
        self.port = _free_port()
        self._server: asyncio.Server | None = None

    @property
    def target(self) -> UplinkTarget:
        """The gateway's uplink target for this port."""
        return UplinkTarget.parse(f"127.0.0.1:{self.port}")

    async def open(self) -> None:
        """Accept connections (and close each at once)."""
        if self._server is None:
            self._server = await asyncio.start_server(_hang_up, "127.0.0.1", self.port)

    async def close(self) -> None:
        """Stop listening: connects are refused, as when the uplink is down."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


@dataclass
class Webhook:
    """A local HTTP endpoint recording each POST (its Idempotency-Key and JSON body); answers ``status``."""

    status: int = 200
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """Where to POST."""
        return f"http://127.0.0.1:{self.port}/reports"

    def keys(self) -> list[str]:
        """Idempotency keys of every delivery, in order."""
        return [key for key, _ in self.received]

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in head.split("\r\n")[1:] if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if self.status < 300:
                self.received.append((headers.get("idempotency-key", ""), json.loads(body)))
            writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
        finally:
            writer.close()


def uplink_settings(target: UplinkTarget | None) -> UplinkSettings:
    """A fast broadband check for tests: every 20 ms, 2 in a row open or close an outage."""
    return UplinkSettings(
        target=target, interval_seconds=0.02, timeout_seconds=0.5, fail_threshold=2, recover_threshold=2
    )


def checks_settings(webhook: str | None = None, mqtt: str | None = None, *, automatic: bool = True) -> ChecksSettings:
    """No periodic tick (tests call it; outages still wake it), quick delivery retries."""
    return ChecksSettings(
        automatic_tests=automatic,
        report_webhook=webhook,
        report_mqtt=mqtt,
        device_timeout_seconds=1.0,
        tick_seconds=3600,
        retry_initial_seconds=0.05,
        retry_cap_seconds=0.2,
    )


async def _hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
