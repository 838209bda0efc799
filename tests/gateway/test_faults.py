"""Faults against real brokers: kill -9, a broker restart, a flooding device, a full or read-only database, and
property tests for every parser and router of inbound text."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sqlite3
import sys
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiomqtt
import httpx
import pytest
from fwsim import BrokerAddress, FaultInvalid, FaultKind, UnitSim, parse_fault
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices import MAX_PAYLOAD_BYTES, ClimateState, Command, LightCommand, LockCommand
from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.config import BrokerSettings, UplinkTarget
from gateway.core.commands import CommandStatus
from gateway.core.entity import Entity
from gateway.core.metrics import Metrics
from gateway.core.persister import PendingChanges, event_row
from gateway.core.ratelimit import RateLimiter
from gateway.core.registry import Registry
from gateway.errors import BrokerUnavailable, ConfigError
from gateway.mqtt.transport import InboundMessage, LinkState
from tests.support.api import Api, ApiFactory, bearer, building, command, problem, sim_unit
from tests.support.brokers import BrokerHandle
from tests.support.gateway import GatewayFactory
from tests.support.polling import eventually, until

MOSQUITTO = pytest.mark.parametrize("broker", ["mosquitto"], indirect=True)
EMBEDDED = pytest.mark.parametrize("broker", ["embedded"], indirect=True)
DEVICES = ("light", "dimmer", "lock", "thermostat", "leak")

# --- helpers: a spy on the command topics, background jobs, telemetry -------------------------------------------


@dataclass
class Wire:
    """Every non-retained command (``…/set…``) published on the simulators' topics, as topic and payload."""

    seen: list[tuple[str, bytes]] = field(default_factory=list)

    def count(self, topic: str, payload: bytes) -> int:
        """How many times exactly this command went out."""
        return sum(1 for t, p in self.seen if t == topic and p == payload)

    def on(self, topic: str) -> list[bytes]:
        """Payloads sent to one command topic."""
        return [p for t, p in self.seen if t == topic]

    def counts(self) -> Counter[tuple[str, bytes]]:
        """How many times each distinct command went out."""
        return Counter(self.seen)


@contextlib.asynccontextmanager
async def spying(broker: BrokerHandle, prefix: str) -> AsyncIterator[Wire]:
    """Record every command sent to the simulated devices (a client of its own, subscribed at QoS 1)."""
    wire = Wire()
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"spy-{uuid.uuid4().hex[:8]}") as client:
        await client.subscribe(f"{prefix}-sim/#", qos=1)

        async def collect() -> None:
            async for message in client.messages:
                topic = str(message.topic)
                if "/set" in topic and not message.retain:
                    payload = message.payload
                    wire.seen.append((topic, payload if isinstance(payload, bytes) else str(payload).encode()))

        async with background(collect()):
            yield wire


@contextlib.asynccontextmanager
async def background(*jobs: Coroutine[Any, Any, None]) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Run ``jobs`` for the duration of the block (a TaskGroup; cancelled when the block ends)."""
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(job, name=f"faults-background-{i}") for i, job in enumerate(jobs)]
        try:
            yield tasks
        finally:
            for task in tasks:
                task.cancel()


async def telemetry(sim: UnitSim, stop: asyncio.Event) -> None:
    """Steady state reports: the thermostat's room temperature changes 25 times a second (under the rate limit)."""
    i = 0
    while not stop.is_set():
        await sim.thermostat.set_current_temperature(round(15 + (i % 1000) / 100, 2))
        i += 1
        await asyncio.sleep(0.04)  # pacing the publisher, not waiting for a condition


def wire_commands(sim: UnitSim, device: str, command: Command) -> list[tuple[str, bytes]]:
    """What the gateway publishes for ``command`` (the device's own config encodes it the same way)."""
    config = next(iter(sim.devices[device].configs.values()))
    return [(p.topic, p.payload) for p in config.encode_command(command)]


def sim_states(sim: UnitSim) -> dict[str, Any]:
    """Every entity's current state on the simulators, by API entity id, as JSON."""
    return {
        f"{config.component}.{device.node_id}.{object_id}": json.loads(device.entity_state(object_id).model_dump_json())
        for device in sim.devices.values()
        for object_id, config in device.configs.items()
    }


async def api_states(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    """Every entity's state as the gateway's API shows it to the resident."""
    r = await http.get("/me/devices", headers=bearer(token))
    assert r.status_code == 200, r.text
    return {e["id"]: e["state"] for d in r.json() for e in d["entities"]}


# --- 1. kill -9 under steady telemetry ---------------------------------------------------------------------------

OPERATOR_PASSWORD = "a long operator passphrase"
PASSPHRASE = "a long resident passphrase"


@dataclass
class GatewayProcess:
    """``gateway run`` as a child process, with its API URL and the tail of its log."""

    proc: asyncio.subprocess.Process
    url: str
    log: deque[str]  # the last lines of its log (JSON lines on stderr)


@contextlib.asynccontextmanager
async def gateway_process(broker: BrokerHandle, db: Path, prefix: str) -> AsyncIterator[GatewayProcess]:
    """Start ``python -m gateway run`` on ``broker`` and ``db``; stop it with SIGINT at the end unless killed."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "--log-format", "json", "run",
        "--db", str(db), "--broker", broker.url, "--api-port", "0", "--simulate", "never",
        "--discovery-prefix", prefix, "--client-id", f"gw-{uuid.uuid4().hex[:8]}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "GATEWAY_OPERATOR_USERNAME": "ops", "GATEWAY_OPERATOR_PASSWORD": OPERATOR_PASSWORD},
    )  # fmt: skip
    log: deque[str] = deque(maxlen=200)

    async def drain() -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            log.append(line.decode(errors="replace").rstrip())

    try:
        async with background(drain()):
            assert proc.stdout is not None
            url = None
            async with asyncio.timeout(20):
                while url is None:
                    line = (await proc.stdout.readline()).decode()
                    assert line, "the gateway exited:\n" + "\n".join(log)
                    if match := re.match(r"API: +(http://\S+/api/v1)", line):
                        url = match.group(1)
            yield GatewayProcess(proc, url, log)
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)
                async with asyncio.timeout(20):
                    assert await proc.wait() == 0, "\n".join(log)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _post(http: httpx.AsyncClient, path: str, body: dict[str, Any], token: str | None = None) -> Any:
    r = await http.post(path, json=body, headers=bearer(token) if token else {})
    assert r.status_code in (200, 201), f"{path}: {r.status_code} {r.text}"
    return r.json()


async def resident_of(http: httpx.AsyncClient, sim: UnitSim) -> str:
    """As in examples/resident-session.sh: property, contract, agreement, manager, unit ``u101`` with the
    simulated devices bound, and a resident who accepted the agreement; return the resident's token."""
    op = (await _post(http, "/auth/login", {"username": "ops", "password": OPERATOR_PASSWORD}))["token"]
    await _post(http, "/properties", {"id": "elm", "name": "Elm Court"}, op)
    contract = {
        "starts_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        "internet": {"provided_by": "lessor", "name": "Elm Fibre", "contact": "+1 555 0100"},
    }
    r = await http.put("/operator/properties/elm/contract", json=contract, headers=bearer(op))
    assert r.status_code == 200, r.text
    await _post(http, "/operator/agreements", {"version": "2026-11", "text": "Not a security system."}, op)
    manager = {"username": "maria", "role": "manager", "property_id": "elm"}
    code = (await _post(http, "/operator/accounts", manager, op))["activation_code"]
    await _post(http, "/auth/activate", {"username": "maria", "activation_code": code, "password": PASSPHRASE})
    pm = (await _post(http, "/auth/login", {"username": "maria", "password": PASSPHRASE}))["token"]
    await _post(http, "/properties/elm/units", {"label": "101", "id": "u101"}, pm)
    wanted = {f"fwsim-{sim.unit}-{name}" for name in DEVICES}

    async def discovered() -> bool:
        r = await http.get("/properties/elm/devices/unbound", headers=bearer(pm))
        return wanted <= {d["id"] for d in r.json()}

    await until(discovered, timeout=10, what="the simulated devices discovered")
    for device_id in sorted(wanted):
        await _post(http, "/properties/elm/units/u101/devices", {"device_id": device_id}, pm)
    code = (await _post(http, "/properties/elm/units/u101/residents", {"username": "dana"}, pm))["activation_code"]
    await _post(http, "/auth/activate", {"username": "dana", "activation_code": code, "password": PASSPHRASE})
    token: str = (await _post(http, "/auth/login", {"username": "dana", "password": PASSPHRASE}))["token"]
    await _post(http, "/me/agreement/accept", {"version": "2026-11", "age_confirmed": True}, token)
    return token


@dataclass
class CommandStream:
    """Dimmer commands one after another, each with a brightness of its own, until the gateway is gone."""

    confirmed: dict[str, int] = field(default_factory=dict)  # command id -> brightness
    cut: int | None = None  # the brightness in flight when the connection broke

    async def run(self, http: httpx.AsyncClient, token: str, entity: str) -> None:
        """Send until the API stops answering; every answer must be ``confirmed``."""
        for brightness in range(1, 255):  # 255 is kept for the command after the restart
            try:
                r = await http.post(
                    f"/me/entities/{entity}/commands",
                    json={"command": {"brightness": brightness}},
                    headers=bearer(token),
                )
            except httpx.TransportError:
                self.cut = brightness
                return
            assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text
            self.confirmed[r.json()["id"]] = brightness
        pytest.fail("the gateway was never killed")


@MOSQUITTO
async def test_kill_9_under_telemetry_loses_no_confirmed_command_and_repeats_none(
    broker: BrokerHandle, prefix: str, tmp_path: Path
) -> None:
    db = tmp_path / "gw.sqlite3"
    dimmer, lock = "light.u101-dimmer.light", "lock.u101-lock.lock"
    stop_telemetry = asyncio.Event()
    async with (
        sim_unit(broker, prefix, "u101") as sim,
        spying(broker, prefix) as wire,
        background(telemetry(sim, stop_telemetry)),
    ):
        await sim.wait_online()
        stream = CommandStream()
        async with gateway_process(broker, db, prefix) as first, httpx.AsyncClient(base_url=first.url) as http:
            token = await resident_of(http, sim)
            # One command the device never answers, recorded as pending when the gateway dies.
            sim.lock.ignore_commands = True
            r = await http.post(
                f"/me/entities/{lock}/commands",
                json={"command": {"action": "unlock"}, "wait": False, "timeout": 30},
                headers=bearer(token),
            )
            assert r.status_code == 202, r.text
            stuck = r.json()["id"]

            async def stuck_is_pending() -> bool:
                r = await http.get(f"/me/commands/{stuck}", headers=bearer(token))
                return r.status_code == 200 and r.json()["status"] == "pending"

            await until(stuck_is_pending, what="the unanswered command recorded as pending")
            unlock = wire_commands(sim, "lock", LockCommand(action="unlock"))
            await eventually(lambda: all(wire.count(*c) == 1 for c in unlock), what="the unlock on the wire")
            async with background(stream.run(http, token, dimmer)) as (streaming,):
                await eventually(lambda: len(stream.confirmed) >= 10, timeout=10, what="ten commands confirmed")
                first.proc.kill()
                await first.proc.wait()
                await streaming  # ends on the broken connection
            assert first.proc.returncode == -signal.SIGKILL

        async with gateway_process(broker, db, prefix) as second, httpx.AsyncClient(base_url=second.url) as http:
            # The start says which commands it found unfinished and ended.
            await eventually(lambda: any("left unfinished" in line for line in second.log), what="the start's log")
            ended = [json.loads(line) for line in second.log if "left unfinished" in line]
            assert len(ended) == 1 and stuck in ended[0]["commands"], "\n".join(second.log)
            # Every command the dead gateway answered "confirmed" is in the history, none pending: confirmed, or,
            # for the last ones answered (their outcomes wait in memory for the next flush, as device states do),
            # failed as interrupted, the outcome unknown. Answered in sequence, so those are a tail of the stream.
            found: list[tuple[str, str | None]] = []
            for command_id, brightness in stream.confirmed.items():
                r = await http.get(f"/me/commands/{command_id}", headers=bearer(token))
                assert r.status_code == 200, r.text
                assert r.json()["command"] == {"brightness": brightness}
                found.append((r.json()["status"], r.json()["reason"]))
            assert set(found) <= {("confirmed", None), ("failed", "interrupted")}, found
            kept = found.count(("confirmed", None))
            assert found == [("confirmed", None)] * kept + [("failed", "interrupted")] * (len(found) - kept), found
            # The command it died waiting for is not left pending for ever.
            r = await http.get(f"/me/commands/{stuck}", headers=bearer(token))
            assert r.status_code == 200, r.text
            assert (r.json()["status"], r.json()["reason"]) == ("failed", "interrupted"), r.json()
            # The device states converge to what the devices retain.
            stop_telemetry.set()

            async def converged() -> bool:
                return await api_states(http, token) == sim_states(sim)

            await until(converged, timeout=10, what="the restarted gateway's states equal the devices'")
            # A command after the restart: everything the new gateway published before it has reached the spy.
            last = 255
            r = await http.post(
                f"/me/entities/{dimmer}/commands", json={"command": {"brightness": last}}, headers=bearer(token)
            )
            assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text
            after = wire_commands(sim, "dimmer", LightCommand(brightness=last))
            await eventually(lambda: all(wire.count(*c) == 1 for c in after), what="the last command on the wire")
        # Nothing was executed twice: each command went out once, the unanswered one was not re-sent.
        repeated = {k: n for k, n in wire.counts().items() if n != 1}
        assert not repeated, repeated
        for brightness in stream.confirmed.values():
            assert all(wire.count(*c) == 1 for c in wire_commands(sim, "dimmer", LightCommand(brightness=brightness)))
        assert all(wire.count(*c) == 1 for c in unlock)
        # The dimmer got exactly the confirmed commands, the one cut short (if it had gone out) and the last one.
        cut = [] if stream.cut is None else wire_commands(sim, "dimmer", LightCommand(brightness=stream.cut))
        dimmer_topic = wire_commands(sim, "dimmer", LightCommand(brightness=1))[0][0]
        assert len(wire.on(dimmer_topic)) == len(stream.confirmed) + sum(wire.count(*c) for c in cut) + 1
    # The kill was noticed as an unclean stop; the second run stopped cleanly.
    with sqlite3.connect(db) as conn:
        runs = conn.execute("SELECT stopped_at FROM gateway_runs ORDER BY id").fetchall()
    assert [stopped is not None for (stopped,) in runs] == [False, True]


# --- 2. a broker restart under load ------------------------------------------------------------------------------


# Confirmed; or published just before the broker died (504); or sent while it was down or before its loss was noticed.
EXPECTED_UNDER_LOAD = {(200, "confirmed"), (503, "broker_unavailable"), (504, "command_timeout")}


@dataclass
class Load:
    """Dimmer commands over HTTP, one after another, with every answer kept by command id."""

    answers: dict[str, tuple[int, str]] = field(default_factory=dict)  # command id -> (HTTP status, outcome)

    def confirmed(self) -> list[str]:
        """Ids of the commands answered ``confirmed``."""
        return [i for i, (_, outcome) in self.answers.items() if outcome == "confirmed"]

    async def run(self, api: Api, token: str, entity: str) -> None:
        """Send until cancelled; a confirmed command, or one the broker outage cut short, are the only answers."""
        for i in range(10_000):
            r = await command(api, token, entity, {"brightness": i % 254 + 1})
            body = r.json()
            outcome = body["status"] if r.status_code == 200 else body["code"]
            assert (r.status_code, outcome) in EXPECTED_UNDER_LOAD, r.text
            command_id = body["id"] if r.status_code == 200 else body["command"]["id"]
            self.answers[command_id] = (r.status_code, outcome)
            await asyncio.sleep(0.02)  # pacing the load, not waiting for a condition


async def history_status(api: Api, token: str, command_id: str) -> tuple[str, str | None]:
    """A command's status and reason as the resident's history has it."""
    r = await api.http.get(f"/me/commands/{command_id}", headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()["status"], r.json()["reason"]


@MOSQUITTO
async def test_broker_restart_under_load_fails_fast_reconnects_and_loses_nothing(
    broker: BrokerHandle, api: Api
) -> None:
    async with building(api) as b:
        gw, sim = api.gateway, b.sims["a"]
        thermostat = gw.registry.get("climate/u101-thermostat/climate")
        assert thermostat is not None
        load, stop = Load(), asyncio.Event()
        async with background(telemetry(sim, stop), load.run(api, b.alice, b.entity("a", "dimmer", "light"))):
            await eventually(lambda: len(load.confirmed()) >= 5, timeout=10, what="commands confirmed under load")
            connections = gw.link.connections
            await broker.stop()
            await eventually(lambda: not gw.link.connected, what="the link down")
            # While the broker is down: every command fails at once with a clear code, recorded as failed.
            down: list[tuple[str, str]] = []
            for token, entity, cmd in (
                (b.alice, b.entity("a", "light", "light"), {"on": True}),
                (b.bob, b.entity("b", "lock", "lock"), {"action": "unlock"}),
                (b.alice, b.entity("a", "thermostat", "climate"), {"target_temperature": 23}),
            ):
                body = problem(await command(api, token, entity, cmd), 503, "broker_unavailable")
                assert (body["command"]["status"], body["command"]["reason"]) == ("failed", "broker_unavailable")
                down.append((token, body["command"]["id"]))
            assert gw.link.state in (LinkState.BACKOFF, LinkState.CONNECTING)  # retrying, with backoff
            await broker.start()
            await gw.wait_connected(15)
            assert gw.link.connections == connections + 1
            for unit in b.sims.values():
                await unit.wait_online(15)
            again = len(load.confirmed())
            await eventually(lambda: len(load.confirmed()) >= again + 5, timeout=15, what="commands confirm again")
            stop.set()
        # State reports flow again (the state topics were subscribed anew on the new connection).
        await sim.thermostat.set_current_temperature(29.75)
        await eventually(lambda: thermostat.state == sim.thermostat.state, timeout=5, what="a new report arrived")
        # Nothing confirmed was lost; what failed while the broker was down is recorded as failed.
        assert load.confirmed()
        for command_id in load.confirmed():
            assert await history_status(api, b.alice, command_id) == ("confirmed", None)
        for token, command_id in down:
            assert await history_status(api, token, command_id) == ("failed", "broker_unavailable")


# --- 3. a device flooding its topic, and 1 MiB payloads ----------------------------------------------------------

FLOOD_LIMIT = 5_000
MIB = 1 << 20


@dataclass
class Flood:
    """A raw client publishing valid state reports on one device's state topic as fast as it can, paced to about
    5,000 a second, with a 1 MiB payload every 1,000 messages; at most ``FLOOD_LIMIT`` messages."""

    client: aiomqtt.Client
    topic: str
    payloads: dict[bytes, float] = field(default_factory=dict)  # payload -> the room temperature it reports
    sent: int = 0
    big: int = 0

    async def run(self, sim: UnitSim, stop: asyncio.Event) -> None:
        """Flood until ``stop`` is set or the limit is reached."""
        config, base = sim.thermostat.config, sim.thermostat.state
        while self.sent < FLOOD_LIMIT and not stop.is_set():
            if self.sent % 1000 == 0:
                await self.client.publish(self.topic, b"x" * MIB)
                self.big += 1
            for _ in range(50):
                celsius = round(10 + self.sent / 1000, 3)
                (report,) = config.encode_state(base.model_copy(update={"current_temperature": celsius}))
                self.payloads[report.payload] = celsius
                await self.client.publish(self.topic, report.payload)
                self.sent += 1
            await asyncio.sleep(0.01)  # pacing the flood, not waiting for a condition


@pytest.mark.parametrize("broker", ["embedded", "mosquitto"], indirect=True)
async def test_a_flooding_device_is_throttled_and_counted_while_other_devices_still_confirm(
    broker: BrokerHandle,
    make_gateway: GatewayFactory,
    prefix: str,
    mqtt: aiomqtt.Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with sim_unit(broker, prefix, "u101") as sim, make_gateway() as gw:
        await sim.wait_online()
        await eventually(lambda: _unit_ready(gw, "u101"), what="the unit discovered, online, with states")
        thermostat = gw.registry.get("climate/u101-thermostat/climate")
        assert thermostat is not None
        flood, stop = Flood(mqtt, sim.thermostat.topic("state")), asyncio.Event()
        async with background(flood.run(sim, stop)):
            await eventually(lambda: gw.metrics.rejected["rate_limited"] > 0, what="the flood throttled")
            dropped = gw.metrics.rejected["rate_limited"]
            # Rounds of commands to three other devices of the same unit until half the flood is out.
            rounds = 0
            while flood.sent < FLOOD_LIMIT // 2:
                on = rounds % 2 == 0
                async with asyncio.TaskGroup() as group:
                    asked = [
                        group.create_task(gw.commands.execute(key, cmd, actor="neighbour"))
                        for key, cmd in (
                            ("light/u101-light/light", {"on": on}),
                            ("lock/u101-lock/lock", {"action": "unlock" if on else "lock"}),
                            ("light/u101-dimmer/light", {"brightness": rounds % 254 + 1}),
                        )
                    ]
                results = [task.result() for task in asked]
                assert [r.status for r in results] == [CommandStatus.CONFIRMED] * 3, results
                rounds += 1
            # The flood went on the whole time: it had not run out, and dropping continued meanwhile.
            assert flood.sent < FLOOD_LIMIT
            assert gw.metrics.rejected["rate_limited"] > dropped
            stop.set()
        await eventually(lambda: gw.metrics.rejected["payload_too_large"] == flood.big, what="big payloads refused")
        # Still running, nothing blew up in a handler, and the flooder's last accepted state is one it really sent.
        assert gw.link.connected and gw.link.handler_errors == 0
        assert thermostat.state_valid and isinstance(thermostat.state, ClimateState)
        assert thermostat.state.current_temperature in flood.payloads.values()
        assert gw.metrics.rejected["rate_limited"] < flood.sent
        flooding = [r for r in caplog.records if r.getMessage() == "device flooding its topics: messages dropped"]
        assert flooding and all(getattr(r, "device", None) == "fwsim-u101-thermostat" for r in flooding)
        # Throttled, not silenced: reporting as a device does (again and again), it is heard once its bucket refills.
        await sim.thermostat.set_current_temperature(29.75)

        async def heard() -> bool:
            await sim.thermostat.publish_state()
            return thermostat.state == sim.thermostat.state

        await until(heard, what="the device's own report accepted after the flood")


def _unit_ready(gw: Gateway, unit: str) -> bool:
    entities = [e for name in DEVICES for e in gw.registry.entities_of_device(f"fwsim-{unit}-{name}")]
    return len(entities) == 7 and all(e.available and e.state is not None for e in entities)


# --- 4. a full disk, a read-only database ------------------------------------------------------------------------


async def pragma(gw: Gateway, statement: str) -> Any:
    """Run a PRAGMA on the gateway's own writer connection; return the first value it answers, if any."""
    row = await gw.db.run(lambda db: db.execute(f"PRAGMA {statement}").fetchone())
    return None if row is None else row[0]


async def report(sim: UnitSim, thermostat: Entity, celsius: float) -> None:
    """The thermostat reports a room temperature; wait until the gateway holds it in memory."""
    await sim.thermostat.set_current_temperature(celsius)
    await eventually(lambda: thermostat.state == sim.thermostat.state, what=f"{celsius} °C in memory")


async def stored_temperatures(gw: Gateway, entity_id: str) -> list[float]:
    """Room temperatures in the entity's stored state events, oldest first."""
    rows = await gw.db.run(
        lambda db: db.execute(
            "SELECT data FROM all_events WHERE entity_key = ? AND type = 'state' ORDER BY id", [entity_id]
        ).fetchall()
    )
    return [json.loads(data)["current_temperature"] for (data,) in rows]


async def stored_state(gw: Gateway, entity_id: str) -> Any:
    """The entity's last state as stored."""
    sql = "SELECT state FROM current_entities WHERE key = ?"
    row = await gw.db.run(lambda db: db.execute(sql, [entity_id]).fetchone())
    return json.loads(row[0])


@EMBEDDED
async def test_a_full_disk_refuses_commands_keeps_states_in_memory_and_writes_them_when_space_returns(
    broker: BrokerHandle, prefix: str, caplog: pytest.LogCaptureFixture, api: Api
) -> None:
    async with (
        building(api) as b,
        spying(broker, prefix) as wire,
    ):
        gw, sim = api.gateway, b.sims["a"]
        thermostat = gw.registry.get("climate/u101-thermostat/climate")
        assert thermostat is not None
        light = b.entity("a", "light", "light")
        pages = await pragma(gw, "page_count")
        assert await pragma(gw, f"max_page_count = {pages}") == pages  # the disk has no room to grow the file
        # Reports keep coming; the first write that needs a new page fails, and the gateway says so.
        pushed: list[float] = []
        while gw.persister.last_error is None:
            pushed.append(round(10 + len(pushed) / 100, 2))
            await report(sim, thermostat, pushed[-1])
            assert len(pushed) < 500, "the database never filled up"
        assert gw.persister.last_error.code == "storage_full"
        assert any(r.getMessage().startswith("cannot persist device state") for r in caplog.records)
        # A command that cannot be recorded is refused, clearly, and nothing reaches the device. A command row may
        # still fit a page with room left: that command is recorded and runs as usual; so command until one cannot.
        sent: list[LightCommand] = []
        for _ in range(300):
            wanted = not sim.light.state.on
            r = await command(api, b.alice, light, {"on": wanted})
            if r.status_code != 200:
                break
            assert r.json()["status"] == "confirmed", r.text
            sent.append(LightCommand(on=wanted))
        else:
            pytest.fail("every command was recorded: the database never refused one")
        body = problem(r, 503, "storage_full")
        assert body["detail"].startswith("disk full")
        assert sim.light.state.on is not wanted
        # Reports still update what the gateway shows, from memory.
        pushed.append(12.34)
        await report(sim, thermostat, pushed[-1])
        states = await api_states(api.http, b.alice)
        assert states["climate.u101-thermostat.climate"]["current_temperature"] == 12.34
        # Room again: everything held in memory is written, nothing lost.
        await pragma(gw, "max_page_count = 1073741823")
        await eventually(lambda: gw.persister.last_error is None, what="the backlog written")
        await gw.persister.flush()
        assert set(pushed) <= set(await stored_temperatures(gw, thermostat.id))
        assert (await stored_state(gw, thermostat.id))["current_temperature"] == 12.34
        r = await command(api, b.alice, light, {"on": wanted})
        assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text
        assert await history_status(api, b.alice, r.json()["id"]) == ("confirmed", None)
        # Each command went out once, and the refused one never did (the spy sees the gateway's publishes in
        # order, so once it has the last one it would have had the refused one).
        expected = [p for c in [*sent, LightCommand(on=wanted)] for p in wire_commands(sim, "light", c)]
        await eventually(lambda: len(wire.seen) >= len(expected), what="the commands on the wire")
        assert wire.seen == expected


@EMBEDDED
async def test_a_read_only_database_refuses_commands_and_keeps_an_outcome_until_it_can_be_written(
    broker: BrokerHandle, prefix: str, api: Api
) -> None:
    async with (
        building(api) as b,
        spying(broker, prefix) as wire,
    ):
        gw, sim = api.gateway, b.sims["a"]
        thermostat = gw.registry.get("climate/u101-thermostat/climate")
        assert thermostat is not None
        lock, dimmer = b.entity("a", "lock", "lock"), b.entity("a", "dimmer", "light")
        # A command in flight when the database turns read-only: the device obeys, the outcome cannot be written.
        sim.lock.ignore_commands = True
        async with asyncio.TaskGroup() as group:
            asking = group.create_task(command(api, b.alice, lock, {"action": "lock"}, timeout=30))
            await eventually(lambda: bool(wire.seen), what="the lock command on the wire")
            assert await pragma(gw, "query_only = ON") is None
            await sim.lock.publish_state()  # "locked": what the command asked for
        r = asking.result()
        assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text
        in_flight = r.json()["id"]
        assert await history_status(api, b.alice, in_flight) == ("confirmed", None)
        # New commands are refused before anything is published, waiting or not (the database is in storage
        # trouble: every request that would write is answered at once); reads go on.
        problem(await command(api, b.alice, dimmer, {"brightness": 42}), 503, "storage_readonly")
        body = problem(await command(api, b.alice, dimmer, {"brightness": 44}, wait=False), 503, "storage_readonly")
        assert body["retry_after"] > 0
        assert gw.db.trouble is not None and gw.db.trouble.code == "storage_readonly"
        assert (await api.http.get("/me/devices", headers=bearer(b.alice))).status_code == 200
        # Reports go on in memory, and the gateway says it cannot store them.
        await report(sim, thermostat, 17.25)
        await eventually(lambda: gw.persister.last_error is not None, what="the persister failing")
        assert gw.persister.last_error is not None and gw.persister.last_error.code == "storage_readonly"
        # Writable again: the outcome and the reports are written.
        assert await pragma(gw, "query_only = OFF") is None
        await eventually(lambda: gw.persister.last_error is None, what="the backlog written")
        await gw.persister.flush()
        assert 17.25 in await stored_temperatures(gw, thermostat.id)
        row = await gw.db.run(lambda db: db.execute("SELECT status FROM commands WHERE id = ?", [in_flight]).fetchone())
        assert row[0] == "confirmed"
        r = await command(api, b.alice, dimmer, {"brightness": 43})
        assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text
        await eventually(lambda: len(wire.seen) == 2, what="the dimmer command on the wire")
        assert wire.seen[1:] == wire_commands(sim, "dimmer", LightCommand(brightness=43))


async def last_heartbeat(gw: Gateway) -> str:
    """This run's last heartbeat as stored."""
    row = await gw.db.run(lambda db: db.execute("SELECT max(heartbeat_at) FROM gateway_runs").fetchone())
    return str(row[0])


@EMBEDDED
async def test_storage_trouble_never_stops_the_gateway_and_ends_by_itself_when_space_returns(
    start_api: ApiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.app.HEARTBEAT_SECONDS", 0.05)
    async with start_api() as api, building(api) as b:
        gw, sim = api.gateway, b.sims["a"]
        gw.db.probe_seconds = 0.1
        heartbeat = next(t for t in asyncio.all_tasks() if t.get_name() == "gateway-heartbeat")
        thermostat = gw.registry.get("climate/u101-thermostat/climate")
        assert thermostat is not None
        light = b.entity("a", "light", "light")
        # The disk fills up: reports keep coming until a write needs room it cannot have.
        assert await pragma(gw, f"max_page_count = {await pragma(gw, 'page_count')}")
        pushed: list[float] = []
        while gw.db.trouble is None:
            pushed.append(round(20 + len(pushed) / 100, 2))
            await report(sim, thermostat, pushed[-1])
            assert len(pushed) < 500, "the database never filled up"
        assert gw.db.trouble.code == "storage_full"
        # The filesystem goes read-only for a while too (as a kernel remounts it on disk errors): every heartbeat
        # fails, and the gateway runs on.
        await pragma(gw, "query_only = ON")
        await asyncio.sleep(0.5)  # ten heartbeats, all refused
        assert not heartbeat.done(), "the heartbeat died"
        assert gw.db.trouble.code == "storage_readonly"
        await pragma(gw, "query_only = OFF")
        await eventually(lambda: gw.db.trouble is not None and gw.db.trouble.code == "storage_full", what="full")
        # A request that would write is refused at once, before anything reaches the device; reads go on.
        on = sim.light.state.on
        r = await command(api, b.alice, light, {"on": not on})
        assert problem(r, 503, "storage_full")["retry_after"] > 0
        assert int(r.headers["Retry-After"]) > 0
        problem(await command(api, b.alice, light, {"on": not on}, wait=False), 503, "storage_full")
        # Reports are held in memory and shown from there.
        pushed.append(12.34)
        await report(sim, thermostat, pushed[-1])
        states = await api_states(api.http, b.alice)
        assert states["climate.u101-thermostat.climate"]["current_temperature"] == 12.34
        await asyncio.sleep(0.3)  # the probe finds no room: still in trouble
        assert gw.db.trouble is not None and not heartbeat.done()
        assert sim.light.state.on is on
        # Space returns: within a bounded time, with no request to nudge it, writes are taken again and what was
        # held reaches the database.
        await pragma(gw, "max_page_count = 1073741823")
        await eventually(lambda: gw.db.trouble is None, timeout=2.0, what="the storage trouble over")
        await eventually(lambda: gw.persister.last_error is None, what="the backlog written")
        await gw.persister.flush()
        assert set(pushed) <= set(await stored_temperatures(gw, thermostat.id))
        assert (await stored_state(gw, thermostat.id))["current_temperature"] == 12.34
        before = await last_heartbeat(gw)
        assert isinstance(gw.clock, ManualClock)
        gw.clock.advance(timedelta(seconds=1))

        async def beating() -> bool:
            return await last_heartbeat(gw) > before

        await until(beating, what="the heartbeat stored again")
        r = await command(api, b.alice, light, {"on": not on})
        assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text
        assert sim.light.state.on is not on
        assert not heartbeat.done()


# --- 5. properties: every parser and router of inbound text ------------------------------------------------------
# Already covered elsewhere (tests/devices/test_codec_properties.py): parse_config on arbitrary bytes and JSON objects,
# decode_state / decode_command on arbitrary payloads for every config family, parse_discovery_topic and
# parse_template on arbitrary text, availability decoding. Added here: fault payloads, broker URLs (gateway and
# simulator), uplink targets, the rate limiter, and the registry's routing of arbitrary messages.

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Text as it may come from a command line (lone surrogates from undecodable argv bytes included) or the wire.
ANY_TEXT = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=60).map(lambda b: b.decode("utf-8", "surrogateescape")),
)
_FAULT_WORDS = st.sampled_from([*(k.value for k in FaultKind), "jam-next", "OFFLINE", " reboot ", "explode", ""])
_FAULT_ARGS = st.one_of(
    # "\u00b2" and "\u0663": digits to str.isdigit(), not to float()
    st.sampled_from(["", "5", "0", "-1", "1e400", "nan", "inf", "100", "101", "on", "off", "x", "\u00b2", "\u0663"]),
    st.floats().map(str),
    st.text(max_size=8),
)
FAULT_TEXT = st.one_of(
    ANY_TEXT,
    st.tuples(_FAULT_WORDS, st.sampled_from(["", ":"]), _FAULT_ARGS).map("".join),
    st.fixed_dictionaries(
        {"fault": _FAULT_WORDS},
        optional={
            "seconds": st.one_of(st.floats(), st.integers(), st.text(max_size=4), st.booleans(), st.none()),
            "value": st.one_of(st.floats(), st.integers(), st.booleans(), st.text(max_size=4), st.none()),
            "extra": st.integers(),
        },
    ).map(json.dumps),
)


@PROPERTY
@given(FAULT_TEXT, st.booleans())
def test_parse_fault_refuses_anything_else_with_fault_invalid_only(text: str, as_bytes: bool) -> None:
    payload: str | bytes = text.encode("utf-8", "surrogatepass") if as_bytes else text
    try:
        fault = parse_fault(payload)
    except FaultInvalid as exc:
        assert str(exc)
        return
    # Whatever parses means the same as its own JSON form, and is one of the documented shapes.
    assert parse_fault(fault.model_dump_json(exclude_none=True)) == fault
    assert fault.seconds is None or fault.fault in (FaultKind.OFFLINE, FaultKind.REBOOT)
    if fault.fault is FaultKind.BATTERY:
        assert 0 <= fault.percent <= 100
    if fault.fault is FaultKind.LEAK:
        assert isinstance(fault.switch, bool)


_HOSTS = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,3}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)
_USERS = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12)
BROKER_URLS = st.one_of(
    ANY_TEXT,
    st.builds(
        lambda scheme, creds, host, port: f"{scheme}://{creds}{host}{port}",
        st.sampled_from(["mqtt", "mqtts", "tcp", "ssl", "http", "MQTT", ""]),
        st.one_of(
            st.just(""),
            st.tuples(_USERS, _USERS).map(lambda up: f"{quote(up[0], safe='')}:{quote(up[1], safe='')}@"),
        ),
        st.one_of(_HOSTS, st.sampled_from(["", "[", "[::1", "]", "[zz]", "h st"])),
        st.one_of(st.just(""), st.integers(-5, 70_000).map(lambda p: f":{p}"), st.sampled_from([":", ":x", ":\u0661"])),
    ),
)


@PROPERTY
@given(BROKER_URLS)
def test_broker_url_parsing_refuses_with_config_error_only(url: str) -> None:
    try:
        settings_ = BrokerSettings.from_url(url)
    except ConfigError as exc:
        assert exc.field == "broker"
        return
    assert 1 <= settings_.port <= 65535
    assert settings_.tls == (urlsplit(url).scheme in ("mqtts", "ssl"))
    # What it logs is a URL that parses back to the same place.
    again = BrokerSettings.from_url(settings_.url)
    assert (again.host, again.port, again.tls) == (settings_.host, settings_.port, settings_.tls)
    assert "@" not in settings_.url  # never the credentials


@PROPERTY
@given(BROKER_URLS)
def test_simulator_broker_address_refuses_with_value_error_only(url: str) -> None:
    try:
        address = BrokerAddress.parse(url)
    except ValueError as exc:
        assert str(exc)
        return
    assert address.port <= 65535  # port 0 is accepted: see the test below
    if address.username is None:  # ``url`` is for logs: it does not quote a user name, so need not parse back
        again = BrokerAddress.parse(address.url)
        assert (again.host, again.port, again.tls) == (address.host, address.port, address.tls)


def test_simulator_broker_address_refuses_port_zero() -> None:
    with pytest.raises(ValueError, match="port"):
        BrokerAddress.parse("mqtt://127.0.0.1:0")


@PROPERTY
@given(
    st.one_of(
        ANY_TEXT,
        st.builds(
            lambda host, port: f"{host}{port}",
            st.one_of(_HOSTS, st.sampled_from(["", "[", "[::1]", ":"])),
            st.one_of(st.integers(-5, 70_000).map(lambda p: f":{p}"), st.sampled_from([":", ":\u00b2", ":x", ""])),
        ),
        st.builds(
            lambda scheme, host, rest: f"{scheme}://{host}{rest}",
            st.sampled_from(["http", "https", "ftp", "mqtt"]),
            st.one_of(_HOSTS, st.sampled_from(["", "[", "[::1"])),
            st.sampled_from(["", "/", ":8080/x", ":99999", ":x", "/?q#f"]),
        ),
    )
)
def test_uplink_target_parsing_refuses_with_config_error_only(value: str) -> None:
    try:
        target = UplinkTarget.parse(value)
    except ConfigError as exc:
        assert exc.field == "uplink"
        return
    assert 1 <= target.port <= 65535
    assert UplinkTarget.parse(str(target)) == target


class FakeTime:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@PROPERTY
@given(
    rate=st.floats(0.5, 1000),
    burst=st.integers(1, 50),
    calls=st.lists(st.tuples(st.floats(0, 0.5), st.sampled_from(["a", "b", "c"])), max_size=300),
)
def test_rate_limiter_never_lets_more_through_than_burst_plus_rate(
    rate: float, burst: int, calls: list[tuple[float, str]]
) -> None:
    time = FakeTime()
    limiter, alone = RateLimiter(rate, burst, now=time), RateLimiter(rate, burst, now=time)
    allowed: Counter[str] = Counter()
    first: dict[str, float] = {}
    for step, key in calls:
        time.now += step
        first.setdefault(key, time.now)
        ok = limiter.allow(key)
        allowed[key] += ok
        assert allowed[key] <= burst + rate * (time.now - first[key]) + 1e-6
        if key == "a":  # one device's verdicts do not depend on the others' traffic
            assert alone.allow("a") == ok
    assert sum(allowed.values()) + sum(limiter.report_due(k, 0) for k in first) == len(calls)


_SIM = UnitSim(BrokerAddress("127.0.0.1"), unit="u1", discovery_prefix="ha", base_topic="sim")
_OTHER = UnitSim(BrokerAddress("127.0.0.1"), unit="u2", discovery_prefix="ha", base_topic="sim")
_ANNOUNCE = [
    InboundMessage(p.topic, p.payload, True, 0)
    for unit in (_SIM, _OTHER)
    for device in unit.devices.values()
    for p in (*device.discovery_publishes(), *device.state_publishes(), device.availability_publish(True))
]
_KNOWN_TOPICS = sorted(
    {m.topic for m in _ANNOUNCE}
    | {t for d in _SIM.devices.values() for c in d.configs.values() for t in c.command_topics()}
    | {"ha/status", "ha/light/u1-light/light/config", "ha/light//x/config", "ha/+/#/config", "sim/u1/light/state/get"}
)
_KNOWN_PAYLOADS = sorted({m.payload for m in _ANNOUNCE} | {b"", b"online", b"offline", b"ON", b"OFF", b"{}"})
_CONFIG_KEYS = ["name", "state_topic", "command_topic", "availability_topic", "unique_id", "device", "~", "stat_t"]
_JUNK_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_CONFIG_KEYS), inner, max_size=4),
    max_leaves=10,
)
INBOUND = st.builds(
    InboundMessage,
    topic=st.one_of(st.sampled_from(_KNOWN_TOPICS), ANY_TEXT, st.sampled_from(_KNOWN_TOPICS).map(lambda t: t + "/x")),
    payload=st.one_of(
        st.sampled_from(_KNOWN_PAYLOADS),
        st.binary(max_size=120),
        _JUNK_JSON.map(lambda v: json.dumps(v).encode()),
        st.just(b"x" * (MAX_PAYLOAD_BYTES + 1)),
        st.builds(lambda n: b"[" * n, st.integers(1_000, 20_000)),
    ),
    retain=st.booleans(),
    qos=st.integers(0, 2),
)


@PROPERTY
@given(
    before=st.lists(INBOUND, max_size=10),
    messages=st.lists(st.tuples(st.floats(0, 0.05), INBOUND), max_size=40),
)
def test_registry_routes_any_message_without_raising_and_stays_consistent(
    before: list[InboundMessage], messages: list[tuple[float, InboundMessage]]
) -> None:
    time = FakeTime()
    registry = Registry("ha", ManualClock(), Metrics(), RateLimiter(50, 4, now=time))  # tight: some are dropped
    pending = PendingChanges()  # what the persister would write
    registry.add_change_listener(pending)
    changed: list[tuple[frozenset[str], frozenset[str]]] = []
    registry.on_topics_changed(lambda added, removed: changed.append((added, removed)))
    stream = [(0.0, m) for m in before] + [(0.0, m) for m in _ANNOUNCE] + messages
    for step, message in stream:
        time.now += step
        registry.handle(message)
    assert registry.metrics.received == len(stream)
    live = registry.entities()
    for entity in live:
        assert entity.state is None or isinstance(entity.state, entity.config.state_model)
        assert entity.state_valid == (entity.state_error is None)
        assert entity in registry.entities_of_device(entity.device_id)
    # Routes are exactly the live entities' topics; subscribing what the callbacks said gives the same set.
    listened = {t for e in live for t in e.config.state_topics() | {a.topic for a in e.config.availability_entries()}}
    assert registry.topics() == listened
    subscribed: set[str] = set()
    for added, removed in changed:
        subscribed = (subscribed | added) - removed
    assert subscribed == listened
    # No state or command topic is owned by two devices, and no discovery topic is used by any.
    owners: dict[str, str] = {}
    for entity in live:
        assert not any(t.startswith("ha/") for t in entity.config.topics())
        for topic in entity.config.owned_topics():
            assert owners.setdefault(topic, entity.device_id) == entity.device_id
    # What the persister would write is plain JSON.
    batch = pending.take()
    assert {e.id for e in live} <= {r.key for r in batch.rows}  # nothing flushed yet: every live one is pending
    assert {r.id for r in batch.devices} >= {e.device_id for e in live}
    for row in batch.rows:
        assert row.state is None or json.loads(row.state) is not None
    for event in batch.events:
        data = event_row(event).data
        assert isinstance(json.loads(data if isinstance(data, str) else json.dumps(data)), dict)


@pytest.mark.parametrize("broker", ["embedded"], indirect=True)
async def test_a_stop_while_the_link_just_dropped_is_still_a_clean_stop(make_gateway: GatewayFactory) -> None:
    """The link can drop between the stop's 'connected?' and its 'offline' publish (a session taken over): the stop
    goes on (the broker publishes the will) and the run is recorded as ended cleanly."""
    async with make_gateway() as gw:
        database = gw.settings.database

        async def dropped(*_args: object, **_kwargs: object) -> None:
            raise BrokerUnavailable("publish failed: [code:4] The client is not currently connected.")

        gw.link.publish = dropped  # type: ignore[method-assign]
    with contextlib.closing(sqlite3.connect(database)) as conn:
        (stopped_at,) = conn.execute("SELECT stopped_at FROM gateway_runs ORDER BY id DESC LIMIT 1").fetchone()
    assert stopped_at is not None
