"""The broker under test: the embedded one or Mosquitto in a child process we can restart, or one at a URL.

``python -m bench.broker --port N`` runs the gateway's embedded broker (amqtt) on its own until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import logging
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import aiomqtt

from gateway.mqtt.broker import EmbeddedBroker, free_port

from .process import REPO, BenchError, Child, port_open, wait_port

__all__ = ["BrokerUnderTest", "ExternalBroker", "SpawnedBroker", "embedded", "main", "mosquitto"]

_START_TIMEOUT = 20.0


class BrokerUnderTest:
    """What every broker offers the bench: an address, a description, and (maybe) a restart."""

    kind: str = "broker"
    host: str = "127.0.0.1"
    port: int = 1883
    restartable: bool = False
    version: str = "unknown"
    config: str = ""

    @property
    def url(self) -> str:
        """mqtt://host:port."""
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        """Make the broker available (nothing to do for an external one)."""

    async def stop(self) -> None:
        """Stop it if we started it."""

    async def restart(self) -> float:
        """Stop and start it again on the same port; return the seconds it was unreachable."""
        raise BenchError(f"the {self.kind} broker cannot be restarted by the bench")

    def describe(self) -> dict[str, object]:
        """Name, version, address and configuration, for the report."""
        return {"kind": self.kind, "version": self.version, "url": self.url, "config": self.config}


class SpawnedBroker(BrokerUnderTest):
    """A broker in a child process of ours on a free port: restartable."""

    restartable = True

    def __init__(self, kind: str, argv: list[str], port: int, logdir: Path, version: str, config: str) -> None:
        self.kind = kind
        self.port = port
        self.version = version
        self.config = config
        self._argv = argv
        self._logdir = logdir
        self._child: Child | None = None
        self._starts = 0

    async def start(self) -> None:
        """Spawn it and wait for its port."""
        if port_open(self.host, self.port):
            raise BenchError(f"port {self.port} is taken before the {self.kind} broker started")
        self._starts += 1
        child = Child(f"broker-{self._starts}", self._argv, self._logdir)
        await child.start()
        self._child = child
        try:
            await wait_port(self.host, self.port, _START_TIMEOUT)
        except BenchError as exc:
            raise BenchError(f"{exc}\n{child.tail()}") from exc

    async def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL)."""
        child, self._child = self._child, None
        if child is not None:
            await child.stop(timeout=10.0)

    async def restart(self) -> float:
        """Stop it and start it again on the same port; return the seconds the port was closed."""
        loop = asyncio.get_running_loop()
        down = loop.time()
        await self.stop()
        await self.start()
        return loop.time() - down

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return None if self._child is None else self._child.pid


class ExternalBroker(BrokerUnderTest):
    """A broker someone else runs, at a URL: used as it is, never restarted."""

    kind = "external"

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise BenchError(f"--broker takes mqtt://host:port (no TLS, no credentials), got {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 1883
        self.config = "as configured by its owner (not known to the bench)"

    async def start(self) -> None:
        """Check that it answers, and ask it its version (``$SYS/broker/version``, which Mosquitto publishes)."""
        await wait_port(self.host, self.port, _START_TIMEOUT)
        self.version = await _sys_version(self.host, self.port) or "unknown (no $SYS/broker/version)"


async def _sys_version(host: str, port: int) -> str | None:
    """The broker's own ``$SYS/broker/version``, if it publishes one within a second."""
    try:
        async with aiomqtt.Client(host, port, identifier="bench-version-probe") as client:
            await client.subscribe("$SYS/broker/version")
            async with asyncio.timeout(1.0):
                async for message in client.messages:
                    if isinstance(message.payload, bytes | bytearray):
                        return bytes(message.payload).decode(errors="replace")[:100]
    except (aiomqtt.MqttError, TimeoutError):
        return None
    return None


def mosquitto_binary() -> str | None:
    """Path of the mosquitto binary, if installed."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )


def mosquitto(logdir: Path, binary: str | None = None) -> SpawnedBroker:
    """A private, open Mosquitto from bench/mosquitto-open.conf, on a free port of 127.0.0.1."""
    binary = binary or mosquitto_binary()
    if binary is None:
        raise BenchError("--mosquitto: no mosquitto binary found (install mosquitto, or use --broker URL)")
    port = free_port()
    shipped = (REPO / "bench" / "mosquitto-open.conf").read_text()
    settings = [ln for ln in shipped.splitlines() if ln.strip() and not ln.startswith(("#", "listener "))]
    conf = logdir / "mosquitto.conf"
    conf.write_text("\n".join([f"listener {port} 127.0.0.1", *settings]) + "\n")
    try:
        banner = subprocess.run([binary, "-h"], capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        banner = ""
    version = banner.splitlines()[0].strip() if banner.strip() else "mosquitto (version unknown)"
    described = "bench/mosquitto-open.conf (" + ", ".join(s for s in settings if not s.startswith("allow_")) + ")"
    return SpawnedBroker("mosquitto", [binary, "-c", str(conf)], port, logdir, version, described)


def embedded(logdir: Path) -> SpawnedBroker:
    """The gateway's embedded broker (amqtt) in a child process (``python -m bench.broker``) on a free port."""
    port = free_port()
    version = f"amqtt {importlib.metadata.version('amqtt')} (gateway.mqtt.broker.EmbeddedBroker)"
    argv = [sys.executable, "-m", "bench.broker", "--port", str(port)]
    return SpawnedBroker("embedded", argv, port, logdir, version, "the gateway's defaults (anonymous, no limits)")


async def _serve(host: str, port: int) -> None:
    """Run the embedded broker until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with EmbeddedBroker(host, port):
        print(f"embedded broker on mqtt://{host}:{port}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bench.broker``."""
    parser = argparse.ArgumentParser(prog="python -m bench.broker", description="the embedded broker, alone")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
