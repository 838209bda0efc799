"""The first hour of a new user: ``gateway run`` as a process, started twice, next to another gateway, on taken
ports, and ``create-operator`` without a terminal."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest

from gateway.mqtt.broker import EmbeddedBroker, free_port
from gateway.mqtt.transport import SHORT_SESSIONS_SUSPECT
from tests.support.brokers import BrokerHandle
from tests.support.runs import ADDRESS_LINES, OPERATOR, PASSWORD, Run, gateway_run

MOSQUITTO = pytest.mark.parametrize("broker", ["mosquitto"], indirect=True)


async def _gateway_exit(args: Sequence[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run a ``gateway`` command that is expected to end by itself: exit code, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "--log-format", "text", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


# --- a second start on the same database ----------------------------------------------------------------------


async def _manager(http: httpx.AsyncClient) -> str:
    """Operator sets up property elm (contract, manager maria, unit u101); the manager's token."""
    op = (await http.post("/auth/login", json={"username": OPERATOR, "password": PASSWORD})).json()["token"]
    auth = {"Authorization": f"Bearer {op}"}
    assert (await http.post("/properties", json={"id": "elm", "name": "Elm"}, headers=auth)).status_code == 201
    contract = {
        "starts_at": datetime.now(UTC).isoformat(),
        "internet": {"provided_by": "lessor", "name": "Elm Fibre", "contact": "+1 555 0100"},
    }
    assert (await http.put("/operator/properties/elm/contract", json=contract, headers=auth)).status_code == 200
    r = await http.post(
        "/operator/accounts", json={"username": "maria", "role": "manager", "property_id": "elm"}, headers=auth
    )
    activation = {"username": "maria", "activation_code": r.json()["activation_code"], "password": PASSWORD}
    assert (await http.post("/auth/activate", json=activation)).status_code == 200
    return await _login(http, "maria")


async def _login(http: httpx.AsyncClient, username: str) -> str:
    r = await http.post("/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def _unit_entities(http: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    r = await http.get("/properties/elm/units/u101", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return [entity for device in r.json()["devices"] for entity in device["entities"]]


async def _health(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    r = await http.get("/properties/elm/health", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _settled(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    """The health once every bound device reported (the simulated unit reports within a second or two)."""
    async with asyncio.timeout(15):
        while (health := await _health(http, token))["stale"] or health["offline"]:
            await asyncio.sleep(0.2)
    return health


async def test_a_second_start_simulates_again_and_shows_remembered_devices_unknown_until_they_report(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "gw.sqlite3")

    def start(simulate: str) -> contextlib.AbstractAsyncContextManager[Run]:
        args = ["--db", db, "--listen-port", str(free_port()), "--api-port", "0", "--simulate", simulate]
        return gateway_run(tmp_path, args, until="console: ")

    async with start("auto") as first:
        assert await first.line() == "no devices found: started a simulated unit (u101)\n"
        async with httpx.AsyncClient(base_url=first.api + "/api/v1") as http:
            token = await _manager(http)
            auth = {"Authorization": f"Bearer {token}"}
            assert (
                await http.post("/properties/elm/units", json={"label": "101", "id": "u101"}, headers=auth)
            ).status_code == 201
            unbound = (await http.get("/properties/elm/devices/unbound", headers=auth)).json()
            simulated = sorted(d["id"] for d in unbound if d["id"].startswith("fwsim-u101-"))
            assert simulated
            for device in simulated:
                r = await http.post("/properties/elm/units/u101/devices", json={"device_id": device}, headers=auth)
                assert r.status_code == 201, r.text
            assert (await _settled(http, token))["devices"] == len(simulated)
        await first.stop()

    # The simulated unit went with the process. Started again with no simulation, the database still remembers
    # its devices: they are listed, but neither available nor fresh, and the property is not shown healthy.
    async with start("never") as second:
        async with httpx.AsyncClient(base_url=second.api + "/api/v1") as http:
            token = await _login(http, "maria")
            entities = await _unit_entities(http, token)
            assert entities
            for entity in entities:
                assert entity["available"] is None, entity
                assert entity["stale"] is True, entity
                assert entity["stale_reason"] in ("not_heard_since_start", "never_reported"), entity
            assert {e["stale_reason"] for e in entities} >= {"not_heard_since_start"}
            health = await _health(http, token)
            assert health["stale"] == len(simulated), health
            assert any("stale:not_heard_since_start" in issue["problems"] for issue in health["issues"])
        await second.stop()

    # Started as a new user starts it again: nothing is heard, so the simulated unit comes back, and reports.
    async with start("auto") as third:
        assert await third.line() == "no devices found: started a simulated unit (u101)\n"
        async with httpx.AsyncClient(base_url=third.api + "/api/v1") as http:
            token = await _login(http, "maria")
            assert (await _settled(http, token))["devices"] == len(simulated)
            assert any(e["available"] is True for e in await _unit_entities(http, token))
        await third.stop()


# --- client ids and status topics ----------------------------------------------------------------------------


def _client_id(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        (value,) = conn.execute("SELECT value FROM gateway_settings WHERE key = 'mqtt_client_id'").fetchone()
    return str(value)


def _logged(run: Run, text: str) -> list[dict[str, Any]]:
    return [entry for line in run.log().splitlines() if text in (entry := json.loads(line))["msg"]]


@MOSQUITTO
async def test_two_gateways_on_one_broker_each_have_their_own_client_id_and_stay_connected(
    broker: BrokerHandle, tmp_path: Path
) -> None:
    def args(name: str) -> list[str]:
        return ["--broker", broker.url, "--db", str(tmp_path / name), "--no-api", "--simulate", "never"]

    async with gateway_run(tmp_path, args("a.sqlite3")) as a, gateway_run(tmp_path, args("b.sqlite3")) as b:
        ids = {_client_id(tmp_path / "a.sqlite3"), _client_id(tmp_path / "b.sqlite3")}
        assert len(ids) == 2 and all(i.startswith("aptgateway-") for i in ids)
        async with aiomqtt.Client(broker.host, broker.port, identifier=f"watch-{uuid.uuid4().hex[:6]}") as watch:
            await watch.subscribe("aptgateway/+/status", qos=1)
            statuses: dict[str, bytes] = {}
            async with asyncio.timeout(10):
                async for message in watch.messages:
                    statuses[str(message.topic)] = bytes(message.payload)
                    if {f"aptgateway/{i}/status" for i in ids} <= statuses.keys():
                        break
            assert set(statuses.values()) == {b"online"}
            await asyncio.sleep(1.5)  # two gateways on one id lost their connection several times a second here
        for run in (a, b):
            assert _logged(run, "mqtt link lost") == [], run.log()
            await run.stop()
    # The id is the installation's: the next start uses it again.
    async with gateway_run(tmp_path, args("a.sqlite3")) as again:
        await again.stop()
    assert _client_id(tmp_path / "a.sqlite3") in ids


@MOSQUITTO
async def test_a_client_taking_the_gateways_client_id_is_named_in_the_log(broker: BrokerHandle, tmp_path: Path) -> None:
    db = tmp_path / "gw.sqlite3"
    args = ["--broker", broker.url, "--db", str(db), "--no-api", "--simulate", "never", "--client-id", "gw-shared"]
    async with (
        gateway_run(tmp_path, args) as run,
        aiomqtt.Client(broker.host, broker.port, identifier=f"watch-{uuid.uuid4().hex[:6]}") as watch,
    ):
        await watch.subscribe("aptgateway/gw-shared/status", qos=1)
        messages = aiter(watch.messages)
        # Take the session over until the log names it: a bounded number of times. The link names it after
        # SHORT_SESSIONS_SUSPECT sessions in a row cut short; a session that held longer (the first one, up since
        # the start, or one that stalled: see below) starts the count again.
        said: list[dict[str, Any]] = []
        for _ in range(3 * SHORT_SESSIONS_SUSPECT):
            # The gateway (re)connected: it says online. Up to 30 s: when it reconnects while the other client is
            # still on, it takes the session back and that connection can stall until its 10 s operation timeout
            # (seen with Mosquitto), after which it reconnects again.
            async with asyncio.timeout(30):
                while bytes((await anext(messages)).payload) != b"online":
                    pass
            # Another client with the same id: the broker hands it the session and drops the gateway.
            async with aiomqtt.Client(broker.host, broker.port, identifier="gw-shared"):
                pass
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1):
                    while not (said := _logged(run, "same client id")):
                        await asyncio.sleep(0.05)
            if said:
                break
        assert said, "repeated take-overs were never named in the log"
        assert "'gw-shared'" in said[0]["msg"] and "--client-id" in said[0]["msg"], said
        await run.stop()


async def test_the_gateway_says_online_on_its_own_status_topic_and_offline_at_a_clean_stop(tmp_path: Path) -> None:
    prefix = f"ha{uuid.uuid4().hex[:8]}"
    async with (
        EmbeddedBroker() as broker,
        aiomqtt.Client(broker.host, broker.port, identifier="watch") as watch,
    ):
        await watch.subscribe(f"{prefix}/status", qos=1)
        args = ["--broker", broker.url, "--db", str(tmp_path / "gw.sqlite3"), "--no-api", "--simulate", "never"]
        args += ["--discovery-prefix", prefix]
        async with gateway_run(tmp_path, args) as run:
            status = f"aptgateway/{_client_id(tmp_path / 'gw.sqlite3')}/status"
            # Home Assistant's birth, so that devices announce themselves again: once, and not retained.
            async with asyncio.timeout(10):
                birth = await anext(aiter(watch.messages))
            assert (str(birth.topic), birth.payload, birth.retain) == (f"{prefix}/status", b"online", False)
            assert await _retained(broker, status) == b"online"
            await run.stop()
            assert "API:" not in run.out and "console:" not in run.out  # --no-api: no addresses
        assert await _retained(broker, status) == b"offline"
        assert await _retained(broker, f"{prefix}/status") is None


async def _retained(broker: EmbeddedBroker, topic: str) -> bytes | None:
    """The message retained on ``topic``, as a client subscribing now gets it (None: nothing retained)."""
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"late-{uuid.uuid4().hex[:6]}") as late:
        await late.subscribe(topic, qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                async for message in late.messages:
                    assert message.retain
                    return bytes(message.payload)
    return None


# --- ports -----------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _listening(port: int = 0) -> Any:
    """A socket listening on ``port`` (another program's), or None when the port is taken already."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        yield None
        return
    sock.listen()
    try:
        yield sock
    finally:
        sock.close()


@pytest.mark.parametrize("option", ["--api-port", "--listen-port"])
async def test_an_explicitly_chosen_port_that_is_taken_is_a_one_line_error_naming_the_option(
    tmp_path: Path, option: str
) -> None:
    with _listening() as taken:
        port = taken.getsockname()[1]
        other = "--listen-port" if option == "--api-port" else "--api-port"
        args = ["run", "--db", str(tmp_path / "gw.sqlite3"), "--simulate", "never", option, str(port), other, "0"]
        code, out, err = await _gateway_exit(args, {"GATEWAY_API_PORT": ""})
    assert code == 2, out + err
    assert f"port {port} on 127.0.0.1 is taken: choose another with {option} N (0 for a free one)" in err, err
    assert "Traceback" not in err
    assert "gateway running" not in out


async def test_a_taken_default_api_port_falls_back_to_a_free_one_and_prints_it(tmp_path: Path) -> None:
    with _listening(8080):  # whether this test or something else holds 8080, it is taken
        args = ["--db", str(tmp_path / "gw.sqlite3"), "--listen-port", str(free_port()), "--simulate", "never"]
        async with gateway_run(tmp_path, args, until="console: ") as run:
            assert ADDRESS_LINES.fullmatch(run.out), run.out
            assert not run.api.endswith(":8080")
            async with httpx.AsyncClient(base_url=run.api) as http:
                assert (await http.get("/openapi.json")).status_code == 200
            assert _logged(run, "port 8080 is taken"), run.log()
            await run.stop()


# --- create-operator ----------------------------------------------------------------------------------------------


async def test_create_operator_without_a_terminal_or_a_password_says_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_OPERATOR_PASSWORD"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "create-operator", "--db", str(tmp_path / "gw.sqlite3"), "--username", "boss",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert lines == [
        "error: no terminal to ask for the password: set GATEWAY_OPERATOR_PASSWORD or run create-operator in a terminal"
    ]
    assert out == b""
