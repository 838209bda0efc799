"""Brokers the tests run against: the embedded one always, Mosquitto where its binary or service exists."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Protocol

import pytest

from gateway.mqtt.broker import free_port

__all__ = [
    "REPO",
    "BrokerHandle",
    "MosquittoProcess",
    "mosquitto_binary",
    "private_mosquitto",
    "system_mosquitto_up",
    "wait_port",
]

REPO = Path(__file__).resolve().parents[2]


class BrokerHandle(Protocol):
    """A broker a test can stop and start again on the same port."""

    host: str
    port: int

    @property
    def url(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def mosquitto_binary() -> str | None:
    """Path of the mosquitto binary, if installed."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )


def system_mosquitto_up(host: str = "127.0.0.1", port: int = 1883) -> bool:
    """Whether something answers on the machine's Mosquitto port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


async def wait_port(host: str, port: int, timeout: float = 5.0) -> None:
    """Wait until ``host:port`` accepts TCP connections."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                _, writer = await asyncio.open_connection(host, port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            await writer.wait_closed()
            return


class MosquittoProcess:
    """A private, open Mosquitto spawned from bench/mosquitto-open.conf on a free port."""

    def __init__(self, workdir: Path, binary: str, overrides: Mapping[str, str] | None = None) -> None:
        """``overrides``: config options (``max_queued_messages``...) replacing the shipped file's."""
        self.host = "127.0.0.1"
        self.port = free_port()
        self._binary = binary
        self._conf = workdir / "mosquitto.conf"
        self._overrides = dict(overrides or {})
        self._write_conf()
        self._proc: subprocess.Popen[bytes] | None = None

    def _write_conf(self) -> None:
        shipped = (REPO / "bench" / "mosquitto-open.conf").read_text()
        replaced = {"listener", *self._overrides}
        lines = [ln for ln in shipped.splitlines() if ln.split(" ", 1)[0] not in replaced]
        extra = [f"{key} {value}" for key, value in self._overrides.items()]
        self._conf.write_text("\n".join([f"listener {self.port} {self.host}", *lines, *extra]) + "\n")

    @property
    def url(self) -> str:
        """mqtt://host:port."""
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        """Spawn the broker and wait for its port (another free port if something took this one meanwhile)."""
        for attempt in range(3):
            self._proc = subprocess.Popen(  # noqa: ASYNC220 - a short spawn, the wait below is async
                [self._binary, "-c", str(self._conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                await wait_port(self.host, self.port)
            except TimeoutError:
                # A broker that exited could not bind: another process took the port between free_port() and the
                # spawn (seen with several test runs on one machine).
                if self._proc.poll() is None or attempt == 2:
                    raise
                self.port = free_port()
                self._write_conf()
            else:
                return

    async def stop(self) -> None:
        """Kill the broker (clients see an abrupt loss)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            await asyncio.to_thread(proc.wait, 5)


@contextlib.asynccontextmanager
async def private_mosquitto(workdir: Path, overrides: Mapping[str, str]) -> AsyncIterator[MosquittoProcess]:
    """A private Mosquitto with ``overrides`` for the block's length; the test is skipped where none is installed."""
    binary = mosquitto_binary()
    if binary is None:
        pytest.skip("mosquitto is not installed")
    broker = MosquittoProcess(workdir, binary, overrides)
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()
