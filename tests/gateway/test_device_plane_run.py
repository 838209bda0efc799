"""``gateway run`` on its embedded broker, as a process, as ``./run.sh`` starts it: the device plane is locked.

Nobody logs in but with a credential the gateway issued: the gateway with its own (made at each start), the
simulated unit with one per device, and here the test's own two, stored before the run: ``watcher``, a gateway
credential that sees what the gateway sees, and ``mallory``, a device credential of its own namespace (an
attacker with a real device). Whether an attack published nothing is told by a fence: a message mallory publishes
on its own topic afterwards, which the watcher receives only after anything mallory sent before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
from paho.mqtt.reasoncodes import ReasonCode

from gateway.clock import SystemClock
from gateway.mqtt.acl import CredentialKind, Namespace
from gateway.mqtt.broker import free_port
from gateway.mqtt.credentials import MADE_AT_START, BrokerCredentials
from gateway.storage import Database
from tests.support.runs import OPERATOR, PASSWORD, Run, gateway_run

LOCK = "fwsim/u101/lock"
SET, STATE = f"{LOCK}/set", f"{LOCK}/state"
MALLORY_ROOT = "mallory/1"
FENCE = f"{MALLORY_ROOT}/fence"
SIMULATED = {f"fwsim-u101-{name}" for name in ("light", "dimmer", "lock", "thermostat", "leak")}

Login = tuple[str, str]


@dataclass(frozen=True)
class Logins:
    """The test's own credentials, issued in the gateway's database before it starts."""

    watcher: Login
    mallory: Login


async def issue_logins(db: Path) -> Logins:
    async with Database(db) as database:
        credentials = BrokerCredentials(database, SystemClock())
        watcher = await credentials.create("watcher", CredentialKind.GATEWAY, property_id=None, created_by="test")
        mallory = await credentials.create(
            "mallory",
            CredentialKind.DEVICE,
            property_id=None,
            namespace=Namespace(node_ids=("mallory-1",), state_roots=(MALLORY_ROOT,), command_roots=(MALLORY_ROOT,)),
            created_by="test",
        )
    return Logins(
        watcher=("watcher", watcher.password.get_secret_value()),
        mallory=("mallory", mallory.password.get_secret_value()),
    )


def client(run: Run, login: Login | None, client_id: str | None = None) -> aiomqtt.Client:
    host, port = run.broker
    username, password = login or (None, None)
    identifier = client_id or (username if username == "mallory" else f"t-{uuid.uuid4().hex[:8]}")
    return aiomqtt.Client(host, port, username=username, password=password, identifier=identifier, timeout=5)


async def refusal(run: Run, login: Login | None, client_id: str | None = None) -> str:
    """How the broker answers a CONNECT it must refuse (the CONNACK's reason)."""
    try:
        async with client(run, login, client_id):
            pass
    except aiomqtt.MqttCodeError as exc:
        return str(exc.rc)
    raise AssertionError(f"the broker admitted {login and login[0]!r} with client id {client_id!r}")


def granted(codes: tuple[int, ...] | list[ReasonCode]) -> bool:
    code = codes[0]
    return (code.value if isinstance(code, ReasonCode) else code) < 128


async def until(watcher: aiomqtt.Client, topic: str, payload: bytes | None = None) -> list[tuple[str, bytes]]:
    """Messages the watcher gets before one on ``topic`` (with ``payload``, if given) arrives."""
    got: list[tuple[str, bytes]] = []
    async with asyncio.timeout(10):
        async for message in watcher.messages:
            body = bytes(message.payload) if isinstance(message.payload, bytes | bytearray) else b""
            if str(message.topic) == topic and payload in (None, body):
                return got
            got.append((str(message.topic), body))
    raise AssertionError("the watcher's stream ended")


async def retained(run: Run, login: Login, topic: str) -> bytes:
    """The retained message on ``topic``, as a new subscriber gets it."""
    async with client(run, login) as late:
        await late.subscribe(topic, qos=1)
        async with asyncio.timeout(5):
            async for message in late.messages:
                assert isinstance(message.payload, bytes | bytearray) and message.retain
                return bytes(message.payload)
    raise AssertionError("no retained message")


@contextlib.asynccontextmanager
async def started(tmp_path: Path, db: Path) -> AsyncIterator[Run]:
    """``gateway run`` with the embedded defaults, once its simulated unit is up."""
    args = ["--db", str(db), "--listen-port", str(free_port()), "--api-port", "0"]
    async with gateway_run(tmp_path, args, until="no devices found: started a simulated unit") as run:
        yield run
        await run.stop()


async def manager(http: httpx.AsyncClient) -> dict[str, str]:
    """The operator makes property elm (at the first start) and its manager maria; her authorisation header."""
    r = await http.post("/auth/login", json={"username": OPERATOR, "password": PASSWORD})
    op = {"Authorization": f"Bearer {r.json()['token']}"}
    if (await http.post("/properties", json={"id": "elm", "name": "Elm"}, headers=op)).status_code == 201:
        body = {"username": "maria", "role": "manager", "property_id": "elm"}
        code = (await http.post("/operator/accounts", json=body, headers=op)).json()["activation_code"]
        activation = {"username": "maria", "activation_code": code, "password": PASSWORD}
        assert (await http.post("/auth/activate", json=activation)).status_code == 200
    r = await http.post("/auth/login", json={"username": "maria", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def lock_state_heard(run: Run, until_state: dict[str, str]) -> None:
    """Wait until the gateway heard the lock in ``until_state`` (a manager's view of unbound devices)."""
    async with httpx.AsyncClient(base_url=run.api + "/api/v1") as http, asyncio.timeout(10):
        auth = await manager(http)
        while True:
            r = await http.get("/properties/elm/devices/unbound", headers=auth)
            assert r.status_code == 200, r.text
            devices: list[dict[str, Any]] = r.json()
            lock = [e for d in devices if d["id"] == "fwsim-u101-lock" for e in d["entities"] if e["kind"] == "lock"]
            if [e["state"] for e in lock] == [until_state]:
                return
            await asyncio.sleep(0.1)


def made_at_start(db: Path) -> list[tuple[str, str | None]]:
    """(username, revoked_at) of every login the gateway made for its starts, oldest first."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT username, revoked_at FROM broker_credentials WHERE created_by = ? ORDER BY created_at, rowid",
            (MADE_AT_START,),
        ).fetchall()
    return [(str(u), r) for u, r in rows]


async def test_only_logins_the_gateway_issued_get_in_and_the_simulated_unit_works_at_every_start(
    tmp_path: Path,
) -> None:
    db = tmp_path / "gw.sqlite3"
    logins = await issue_logins(db)
    async with started(tmp_path, db) as run:
        assert await refusal(run, None) == "Not authorized"  # anonymous
        assert await refusal(run, None, "fwsim-u101-lock") == "Not authorized"  # anonymous, a device's client id
        assert await refusal(run, ("fwsim-u101-lock", "made-up password")) == "Not authorized"
        assert await refusal(run, ("admin", "admin")) == "Not authorized"
        assert await refusal(run, (logins.mallory[0], logins.mallory[1] + "x")) == "Not authorized"
        client_id = next(u for u, _ in made_at_start(db) if u not in SIMULATED)  # the gateway's own login
        assert await refusal(run, logins.mallory, client_id) == "Not authorized"  # taking the gateway's session

        # The simulated unit logged in with its own logins and obeys commands; the gateway hears it.
        async with client(run, logins.watcher) as watcher:
            await watcher.subscribe(STATE, qos=1)
            assert await until(watcher, STATE, b"LOCKED") == []  # retained, from the simulated lock
            await watcher.publish(SET, b"UNLOCK", qos=1)
            await until(watcher, STATE, b"UNLOCKED")
        await lock_state_heard(run, {"status": "unlocked"})

    first = made_at_start(db)
    assert {u for u, _ in first} == SIMULATED | {client_id} and len(first) == 6
    assert all(revoked is None for _, revoked in first)

    # A second start, as `./run.sh` again: the first start's logins are revoked, new ones made, the unit back.
    async with started(tmp_path, db) as run:
        async with client(run, logins.watcher) as watcher:  # the test's own credentials stay
            await watcher.subscribe(STATE, qos=1)
            assert await until(watcher, STATE, b"LOCKED") == []  # a new simulated lock (the old state was in memory)
            await watcher.publish(SET, b"UNLOCK", qos=1)
            await until(watcher, STATE, b"UNLOCKED")
        await lock_state_heard(run, {"status": "unlocked"})
    both = made_at_start(db)
    assert [revoked is None for _, revoked in both] == [False] * 6 + [True] * 6
    assert {u for u, _ in both[6:]} == SIMULATED | {client_id}


async def test_attacks_on_the_lock_over_mqtt_are_refused_and_nothing_reaches_it(tmp_path: Path) -> None:
    db = tmp_path / "gw.sqlite3"
    logins = await issue_logins(db)
    async with started(tmp_path, db) as run:
        async with client(run, logins.watcher) as watcher:
            for topic in (SET, STATE, FENCE):
                await watcher.subscribe(topic, qos=1)
            assert await until(watcher, STATE, b"LOCKED") == []
            await watcher.publish(SET, b"UNLOCK", qos=1)  # as the gateway would, for the resident
            await until(watcher, STATE, b"UNLOCKED")

            # Anonymous: no subscription to `#`, no UNLOCK, no retained LOCKED, for nobody gets in at all.
            assert await refusal(run, None) == "Not authorized"

            async with client(run, logins.mallory) as mallory:
                # A device of its own: `#` and the lock's topics are not granted, and nothing arrives.
                for topic in ("#", f"{LOCK}/#", STATE, SET, "homeassistant/#"):
                    assert not granted(await mallory.subscribe(topic, qos=1)), topic
                await mallory.publish(SET, b"LOCK", qos=1)  # the door it wants to open or close
                await mallory.publish(SET, b"UNLOCK", qos=1)
                await mallory.publish(STATE, b"LOCKED", qos=1, retain=True)  # the app would show a locked door
                await mallory.publish(f"{LOCK}/availability", b"offline", qos=1, retain=True)
                await mallory.publish("homeassistant/lock/u101-lock/lock/config", b"", qos=1, retain=True)
                await mallory.publish(FENCE, b"fence", qos=1)
                assert await until(watcher, FENCE) == []  # nothing on the lock's topics, from mallory or the lock
        assert await retained(run, logins.watcher, STATE) == b"UNLOCKED"
        assert await retained(run, logins.watcher, f"{LOCK}/availability") == b"online"
        assert await retained(run, logins.watcher, "homeassistant/lock/u101-lock/lock/config") != b""
        await lock_state_heard(run, {"status": "unlocked"})
