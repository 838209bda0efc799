"""A local uplink target that a test opens and closes, a local webhook that counts deliveries, the two-unit
building under the checks, a spy on the simulators' topics, and polling helpers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiomqtt
import pytest

from gateway.clock import ManualClock
from gateway.config import ChecksSettings, UplinkSettings, UplinkTarget
from tests.support.api import Api, Building, bearer, building, running_api
from tests.support.brokers import REPO, BrokerHandle
from tests.support.gateway import GatewayFactory
from tests.support.polling import until


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


EMBEDDED = pytest.mark.parametrize("broker", ["embedded"], indirect=True)
ROOT = REPO
# These tests move the clock by months; sessions here must outlive that (their expiry is tested elsewhere).
LONG_SESSIONS = {"idle_timeout_seconds": 400 * 86400, "session_ttl_seconds": 400 * 86400}


class Wire:
    """Every message on the devices' topics (by default the simulators'): commands and state requests."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    @property
    def topics(self) -> list[str]:
        """Topics of every message seen, in order."""
        return [topic for topic, _ in self.messages]

    def commands(self) -> list[str]:
        """Topics of commands that reached a simulator (its command topics all have ``/set``)."""
        return [t for t in self.topics if "/set" in t]

    def on(self, topics: Collection[str]) -> list[tuple[str, bytes]]:
        """Messages seen on any of ``topics``."""
        return [(t, p) for t, p in self.messages if t in topics]

    def requests(self, device: str) -> list[str]:
        """State requests sent to one simulated device (e.g. ``lock``)."""
        return [t for t in self.topics if t.endswith("/get") and t.split("/")[2] == device]


@contextlib.asynccontextmanager
async def listening(api: Api, *filters: str) -> AsyncIterator[Wire]:
    """Record everything published on ``filters`` (default: the simulators' topics) for the block."""
    wire = Wire()
    async with aiomqtt.Client(api.broker.host, api.broker.port, identifier=f"wire-{uuid.uuid4().hex[:6]}") as client:
        for topic_filter in filters or (f"{api.prefix}-sim/#",):
            await client.subscribe(topic_filter, qos=1)

        async def collect() -> None:
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                wire.messages.append((str(message.topic), payload))

        async with asyncio.TaskGroup() as tasks:
            task = tasks.create_task(collect(), name="wire")
            try:
                yield wire
            finally:
                task.cancel()


@contextlib.asynccontextmanager
async def checked_building(
    make_gateway: GatewayFactory,
    broker: BrokerHandle,
    prefix: str,
    clock: ManualClock,
    uplink: UplinkTargetServer | None,
    webhook: str | None = None,
    mqtt: str | None = None,
    *,
    automatic: bool = True,
) -> AsyncIterator[Building]:
    """The API over a gateway checking ``uplink`` and reporting to ``webhook``, with the two-unit building."""
    factory = make_gateway.using(
        uplink=uplink_settings(None if uplink is None else uplink.target),
        checks=checks_settings(webhook, mqtt, automatic=automatic),
        device_check_seconds=0.05,
    )
    async with running_api(factory, broker, prefix, clock, **LONG_SESSIONS) as api, building(api) as b:
        if uplink is not None:
            await until(lambda: is_(api.gateway.connectivity.uplink.state, "up"), what="uplink up")
        yield b


async def is_(value: object, expected: str) -> bool:
    """Whether ``value`` reads as ``expected`` (for polling an enum's state)."""
    return str(value) == expected


async def outages(api: Api, token: str, kind: str | None = None) -> list[dict[str, Any]]:
    """The property's outages this month, as a manager sees them."""
    r = await api.http.get("/properties/p1/outages", headers=bearer(token))
    assert r.status_code == 200, r.text
    return [o for o in r.json() if kind is None or o["kind"] == kind]


async def my_status(api: Api, token: str) -> dict[str, Any]:
    """The resident's testing status."""
    r = await api.http.get("/me/self-test", headers=bearer(token))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert "not a security or alarm system" in body["note"]
    return dict(body["compliance"])


async def self_test(api: Api, token: str) -> dict[str, Any]:
    """Run the resident's self-test and return the result."""
    r = await api.http.post("/me/self-test", headers=bearer(token))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def asked(wire: Wire, device: str) -> bool:
    """Whether the spy saw a state request to that simulated device."""
    return bool(wire.requests(device))


async def nothing_pending(api: Api) -> bool:
    """Whether the outbox has delivered everything, as the operator sees it."""
    r = await api.http.get("/operator/connectivity", headers=bearer(api.operator))
    return bool(r.json()["reports_pending"] == 0)


async def status_is(api: Api, token: str, status: str) -> bool:
    """Whether the resident's testing status is ``status``."""
    return bool((await my_status(api, token))["status"] == status)


async def delivered(hook: Webhook, count: int) -> bool:
    """Whether the webhook received at least ``count`` reports."""
    return len(hook.received) >= count


async def crash_gateway(db: Path, broker: BrokerHandle, prefix: str) -> datetime:
    """Run ``gateway run`` on ``db`` until it is up, kill it with SIGKILL (no clean stop); when it died."""
    env = {**os.environ, "GATEWAY_LOG_FORMAT": "json"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "run", "--db", str(db), "--broker", f"mqtt://{broker.host}:{broker.port}",
        "--no-api", "--simulate", "never", "--discovery-prefix", prefix,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env, cwd=ROOT,
    )  # fmt: skip
    assert process.stdout is not None
    async with asyncio.timeout(30):
        while not (await process.stdout.readline()).startswith(b"gateway running"):
            pass
    killed_at = datetime.now(UTC)
    process.send_signal(signal.SIGKILL)
    await process.wait()
    return killed_at
