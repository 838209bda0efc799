"""The ``gateway`` command as a user runs it: a real process, stopped by a signal or killed."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from pathlib import Path

from gateway.app import Gateway
from gateway.config import BrokerSettings, GatewaySettings
from gateway.mqtt.broker import EmbeddedBroker


async def _start_gateway(broker: EmbeddedBroker, db: Path) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "--log-format",
        "json",
        "run",
        "--broker",
        broker.url,
        "--db",
        str(db),
        "--simulate",
        "never",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    async with asyncio.timeout(20):
        line = await proc.stdout.readline()
    assert line.startswith(b"gateway running"), line
    return proc


def _runs(db: Path) -> list[tuple[str | None]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT stopped_at FROM gateway_runs ORDER BY id").fetchall()


async def test_sigint_stops_cleanly_and_sigkill_is_detected_at_next_start(tmp_path: Path) -> None:
    db = tmp_path / "gw.sqlite3"
    async with EmbeddedBroker() as broker:
        proc = await _start_gateway(broker, db)
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            assert await proc.wait() == 0
        assert [r[0] is not None for r in _runs(db)] == [True]

        proc = await _start_gateway(broker, db)
        proc.kill()
        await proc.wait()
        assert [r[0] is not None for r in _runs(db)] == [True, False]

        settings = GatewaySettings(broker=BrokerSettings(port=broker.port), database=db)
        async with Gateway(settings) as gw:
            assert gw.unclean_previous_run is not None
            assert gw.unclean_previous_run["stopped_at"] is None


async def test_demo_runs_and_every_outcome_is_as_expected() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "--log-level",
        "warning",
        "demo",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    text = out.decode()
    assert proc.returncode == 0, text + err.decode()[-2000:]
    for expected in ("confirmed", "out_of_range", "device_jammed", "command_timeout"):
        assert expected in text
