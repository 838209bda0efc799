"""The ``gateway`` command as a user runs it: a real process, stopped by a signal or killed."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import signal
import sqlite3
import sys
from pathlib import Path

import httpx
import pytest

from gateway.app import Gateway
from gateway.config import BrokerSettings, GatewaySettings
from gateway.mqtt.broker import EmbeddedBroker


async def _start_gateway(
    broker: EmbeddedBroker, db: Path, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
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
        "--api-port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None
    async with asyncio.timeout(20):
        line = await proc.stdout.readline()
    assert line.startswith(b"gateway running"), line
    return proc


def _runs(db: Path) -> list[tuple[str | None]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT stopped_at FROM gateway_runs ORDER BY id").fetchall()


# amqtt (the embedded broker) never closes a connection that ends before its CONNECT, as a SIGKILL can end one: the
# transport's ResourceWarning comes whenever the collector finds it, so it is collected here, inside the test.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
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
    gc.collect()


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
    for expected in ("confirmed", "out_of_range", "device_jammed", "command_timeout", "no_answer"):
        assert expected in text


async def _api_url(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    async with asyncio.timeout(20):
        line = (await proc.stdout.readline()).decode()
    match = re.match(r"API: +(http://\S+)/api/v1", line)
    assert match, line
    return match.group(1)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGINT)
    async with asyncio.timeout(20):
        assert await proc.wait() == 0


async def test_run_serves_the_api_with_the_operator_from_the_environment_only_once(tmp_path: Path) -> None:
    db = tmp_path / "gw.sqlite3"
    password = "a long operator passphrase"
    env = {"GATEWAY_OPERATOR_USERNAME": "ops", "GATEWAY_OPERATOR_PASSWORD": password}
    async with EmbeddedBroker() as broker:
        proc = await _start_gateway(broker, db, env)
        url = await _api_url(proc)
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/openapi.json")).json()["info"]["title"] == "aptgateway local API"
            r = await http.post("/api/v1/auth/login", json={"username": "ops", "password": password})
            assert r.status_code == 200, r.text
            assert r.json()["account"]["role"] == "operator"
        await _stop(proc)
        # A second start with other bootstrap values creates nothing: the operator exists already.
        proc = await _start_gateway(
            broker, db, {"GATEWAY_OPERATOR_USERNAME": "ops2", "GATEWAY_OPERATOR_PASSWORD": password}
        )
        url = await _api_url(proc)
        async with httpx.AsyncClient(base_url=url) as http:
            r = await http.post("/api/v1/auth/login", json={"username": "ops2", "password": password})
            assert r.status_code == 401
            assert r.json()["code"] == "login_failed"
        await _stop(proc)


async def test_create_operator_command_refuses_a_weak_password_and_creates_a_usable_account(tmp_path: Path) -> None:
    db = tmp_path / "gw.sqlite3"

    async def create(password: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "create-operator",
            "--db",
            str(db),
            "--username",
            "boss",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "GATEWAY_OPERATOR_PASSWORD": password},
        )
        out, _ = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, out.decode()

    code, out = await create("short")
    assert code == 2 and "password_too_weak" in out, out
    code, out = await create("a perfectly fine passphrase")
    assert code == 0, out
    with sqlite3.connect(db) as conn:
        role, hashed = conn.execute("SELECT role, password_hash FROM accounts WHERE username = 'boss'").fetchone()
    assert role == "operator"
    assert hashed.startswith("$argon2id$")


async def test_retention_command_shows_changes_and_refuses_by_rule(tmp_path: Path) -> None:
    db = tmp_path / "gw.sqlite3"

    async def gateway(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    assert (await gateway("init-db", "--db", str(db)))[0] == 0
    code, out, err = await gateway("retention", "--db", str(db))
    assert code == 0, err
    assert json.loads(out)["days"]["events"] == 30
    code, out, err = await gateway("retention", "--db", str(db), "--keep", "events=7", "--budget-bytes", "100000000")
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["days"]["events"], shown["budget_bytes"]) == (7, 100_000_000)
    code, out, err = await gateway("retention", "--db", str(db), "--keep", "connectivity=5")
    assert code == 2 and "retention_out_of_range" in err, err
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT key, value, updated_by FROM retention_settings ORDER BY key").fetchall()
        audited = conn.execute("SELECT actor_role, detail FROM audit_log WHERE action = 'retention.update'").fetchall()
    assert stored == [("budget_bytes", 100_000_000, "system"), ("events", 7, "system")]
    assert [(role, json.loads(detail)) for role, detail in audited] == [
        ("system", {"events": 7, "budget_bytes": 100_000_000})
    ]


@pytest.mark.parametrize(
    ("option", "environment", "expected"),
    [(None, None, 0.5), ("0", None, 0.0), ("1.5", "3", 1.5), (None, "2", 2.0), ("5", None, 5.0)],
)
def test_read_hold_comes_from_the_option_then_the_environment_then_the_default(
    monkeypatch: pytest.MonkeyPatch, option: str | None, environment: str | None, expected: float
) -> None:
    from gateway.subcommands import read_hold_seconds

    if environment is None:
        monkeypatch.delenv("GATEWAY_READ_HOLD_SECONDS", raising=False)
    else:
        monkeypatch.setenv("GATEWAY_READ_HOLD_SECONDS", environment)
    parsed = None if option is None else float(option)
    assert read_hold_seconds(argparse.Namespace(read_hold=parsed)) == expected


async def test_run_refuses_a_read_hold_out_of_range_before_starting(tmp_path: Path) -> None:
    for bad in ("-1", "5.5"):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "--log-format", "json", "run", "--db", str(tmp_path / "gw.sqlite3"),
            "--no-api", "--read-hold", bad, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
            env=dict(os.environ),
        )  # fmt: skip
        async with asyncio.timeout(60):
            _out, err = await proc.communicate()
        assert proc.returncode == 2, err.decode()
        assert "error [config_invalid]" in err.decode() and "--read-hold" in err.decode()
        assert not (tmp_path / "gw.sqlite3").exists(), "refused before anything started"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "--log-format", "json", "run", "--db", str(tmp_path / "gw.sqlite3"),
        "--no-api", cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        env={**os.environ, "GATEWAY_READ_HOLD_SECONDS": "x"},
    )  # fmt: skip
    async with asyncio.timeout(60):
        _out, err = await proc.communicate()
    assert proc.returncode == 2 and "--read-hold: 'x'" in err.decode()
