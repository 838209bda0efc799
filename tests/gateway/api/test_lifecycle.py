"""A resident's whole tenancy through the HTTP API: move-in, control, history, live stream, move-out; device health
and unbinding as staff see them."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import aiomqtt
import httpx
import pytest
from fwsim import LockSim

from devices import LockStatus
from gateway.clock import ManualClock
from tests.support.api import (
    AGREEMENT,
    PASSWORD,
    Api,
    ApiFactory,
    Building,
    Sse,
    accept,
    bearer,
    building,
    command,
    problem,
    running_api,
)
from tests.support.brokers import BrokerHandle
from tests.support.gateway import GatewayFactory

EMBEDDED = pytest.mark.parametrize("broker", ["embedded"], indirect=True)
T = TypeVar("T")


# --- helpers ---------------------------------------------------------------------------------------------


async def until(fetch: Callable[[], Awaitable[T]], ok: Callable[[T], bool], what: str, timeout: float = 5.0) -> T:
    """Call ``fetch`` until ``ok`` holds for its result; fail the test with ``what`` after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                value = await fetch()
                if ok(value):
                    return value
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout} s waiting for {what}")


async def sql(api: Api, query: str, *args: object) -> list[tuple[Any, ...]]:
    """Rows straight from the gateway's SQLite database."""
    return await api.gateway.db.run(lambda db: [tuple(r) for r in db.execute(query, list(args)).fetchall()])


async def events(api: Api, token: str, **params: Any) -> dict[str, Any]:
    """One page of GET /me/events."""
    r = await api.http.get("/me/events", params=params, headers=bearer(token))
    assert r.status_code == 200, r.text
    page: dict[str, Any] = r.json()
    return page


def lock_status(sim: LockSim) -> LockStatus:
    """The simulated lock's status now (a call, so checks before and after an action are not narrowed away)."""
    return sim.state.status


def unit_of_entity(entity_id: str) -> str:
    """``light.u101-light.light`` -> ``u101``."""
    return entity_id.split(".")[1].split("-", maxsplit=1)[0]


# --- (1) a whole tenancy ---------------------------------------------------------------------------------


async def test_move_in_control_move_out(clock: ManualClock, api: Api) -> None:
    async with building(api) as b:
        lock = b.entity("a", "lock", "lock")
        sim_lock = b.sims["a"].lock
        # move-in: the manager creates the account and hands over the one-time code
        r = await api.http.post(
            "/properties/p1/units/a/residents",
            json={"username": "carol", "display_name": "Carol"},
            headers=bearer(b.manager),
        )
        assert r.status_code == 201, r.text
        moved_in = r.json()
        carol_id = moved_in["account"]["id"]
        assert moved_in["account"]["status"] == "pending"
        assert moved_in["account"]["unit_id"] == "a"
        r = await api.http.post(
            "/auth/activate",
            json={"username": "carol", "activation_code": moved_in["activation_code"], "password": PASSWORD},
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "active"
        r = await api.http.post("/auth/login", json={"username": "carol", "password": PASSWORD, "client": "phone"})
        assert r.status_code == 200, r.text
        carol = r.json()["token"]
        r = await api.http.get("/me/unit", headers=bearer(carol))
        assert r.status_code == 200 and r.json()["id"] == "a", r.text
        # nothing is controlled before the agreement is accepted (with the age statement)
        r = await command(api, carol, lock, {"action": "unlock"})
        assert problem(r, 403, "agreement_not_accepted")["version"] == AGREEMENT
        assert lock_status(sim_lock) is LockStatus.LOCKED
        r = await accept(api, carol)
        assert r.status_code == 200 and r.json()["accepted_current"] is True, r.text

        # control: name the lock, unlock and lock the door
        r = await api.http.put(
            "/me/devices/fwsim-u101-lock/name", json={"name": "Carol's front door"}, headers=bearer(carol)
        )
        assert r.status_code == 200, r.text
        assert r.json()["resident_name"] == "Carol's front door"
        r = await command(api, carol, lock, {"action": "unlock"})
        assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text
        assert lock_status(sim_lock) is LockStatus.UNLOCKED
        r = await command(api, carol, lock, {"action": "lock"})
        assert r.status_code == 200, r.text
        locked = r.json()
        assert locked["status"] == "confirmed" and locked["entity_id"] == lock
        assert lock_status(sim_lock) is LockStatus.LOCKED

        def has_lock_command(page: dict[str, Any]) -> bool:
            return any(e["type"] == "command" and e["data"].get("command_id") == locked["id"] for e in page["events"])

        page = await until(lambda: events(api, carol), has_lock_command, "the lock command in /me/events")
        mine = next(e for e in page["events"] if e["type"] == "command" and e["data"]["command_id"] == locked["id"])
        assert mine["entity_id"] == lock
        assert mine["data"]["actor"] == "you"
        assert mine["data"]["status"] == "confirmed"
        assert mine["data"]["command"] == {"action": "lock"}
        commands_before = (await sql(api, "SELECT count(*) FROM commands"))[0][0]

        # move-out
        r = await api.http.post(
            f"/properties/p1/units/a/residents/{carol_id}/move-out",
            json={"reason": "lease ended"},
            headers=bearer(b.manager),
        )
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["account"]["status"] == "terminated"
        assert out["account"]["display_name"] is None
        assert out["sessions_revoked"] == 1
        # her name for the lock, two command rows and their two history events
        assert out["records_anonymised"] == 5
        problem(await api.http.get("/me", headers=bearer(carol)), 401, "account_terminated")
        problem(await command(api, carol, lock, {"action": "unlock"}), 401, "account_terminated")
        r = await api.http.post("/auth/login", json={"username": "carol", "password": PASSWORD})
        problem(r, 401, "login_failed")

        # the history keeps what happened but no longer says who
        rows = await sql(api, "SELECT id, actor FROM commands WHERE entity_key = ?", "lock/u101-lock/lock")
        assert {actor for _, actor in rows} == {"former-resident"}
        assert locked["id"] in {cid for cid, _ in rows}
        actors = await sql(
            api,
            "SELECT json_extract(data, '$.actor') FROM all_events WHERE type = 'command' AND entity_key = ?",
            "lock/u101-lock/lock",
        )
        assert [a for (a,) in actors] == ["former-resident", "former-resident"]
        for table, column in (("commands", "actor"), ("all_events", "data"), ("device_names", "set_by")):
            left = await sql(api, f"SELECT count(*) FROM {table} WHERE {column} LIKE ?", f"%{carol_id}%")
            assert left == [(0,)], f"{table} still names the former resident"

        # nothing was actuated by the move-out
        assert lock_status(sim_lock) is LockStatus.LOCKED
        assert (await sql(api, "SELECT count(*) FROM commands"))[0][0] == commands_before
        r = await api.http.get("/me/devices/fwsim-u101-lock", headers=bearer(b.alice))
        assert r.json()["entities"][0]["state"]["status"] == "locked", r.text

        # the next resident: no name of hers, none of her history
        clock.advance(timedelta(minutes=5))
        dave_id, dave = await api.move_in(b.manager, "p1", "a", "dave")
        assert (await accept(api, dave)).status_code == 200
        r = await api.http.get("/me/devices", headers=bearer(dave))
        assert r.status_code == 200, r.text
        assert {d["id"]: d["resident_name"] for d in r.json()}["fwsim-u101-lock"] is None
        assert all(d["resident_name"] is None for d in r.json())
        problem(await api.http.get(f"/me/commands/{locked['id']}", headers=bearer(dave)), 404, "command_not_found")
        r = await command(api, dave, b.entity("a", "light", "light"), {"on": True})
        assert r.status_code == 200, r.text
        own = r.json()["id"]
        page = await until(
            lambda: events(api, dave),
            lambda p: any(e["data"].get("command_id") == own for e in p["events"]),
            "dave's own command in his history",
        )
        r = await api.http.get("/me", headers=bearer(dave))
        moved_in_at = datetime.fromisoformat(r.json()["activated_at"])
        assert page["events"], "dave sees his own events"
        assert all(datetime.fromisoformat(e["at"]) >= moved_in_at for e in page["events"])
        assert [e["data"]["actor"] for e in page["events"] if e["type"] == "command"] == ["you"]
        assert dave_id != carol_id


@EMBEDDED
async def test_move_out_anonymises_history_not_yet_written(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    # A slow flush keeps the command's history event in memory when the move-out happens.
    slow = make_gateway.using(state_flush_interval=10)
    async with running_api(slow, broker, prefix, clock) as api, building(api) as b:
        r = await command(api, b.alice, b.entity("a", "light", "light"), {"on": True})
        assert r.status_code == 200, r.text
        r = await api.http.post(
            f"/properties/p1/units/a/residents/{b.alice_id}/move-out", json={}, headers=bearer(b.manager)
        )
        assert r.status_code == 200, r.text
        await api.gateway.persister.flush()
        actors = await sql(api, "SELECT json_extract(data, '$.actor') FROM all_events WHERE type = 'command'")
        assert actors == [("former-resident",)]
        assert await sql(api, "SELECT actor FROM commands") == [("former-resident",)]


async def test_an_outcome_is_shown_at_once_and_written_with_a_flush_or_at_a_clean_stop(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    # Flushes far apart: the last outcome is in memory only when asked for (the one before it was written with the
    # last command's record), and the stop writes it.
    slow = make_gateway.using(state_flush_interval=10)
    async with running_api(slow, broker, prefix, clock) as api, building(api) as b:
        light = b.entity("a", "light", "light")
        await api.gateway.persister.flush()  # every entity stored: no command below flushes to write its own
        r = await command(api, b.alice, light, {"on": True})
        assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text
        confirmed = r.json()["id"]
        b.sims["a"].light.ignore_commands = True
        body = problem(await command(api, b.alice, light, {"on": False}, timeout=0.2), 504, "command_timeout")
        timed_out = body["command"]["id"]
        # Answered, and shown so at once to whoever asks (the command's own URL, the service's history).
        for command_id, status in ((confirmed, "confirmed"), (timed_out, "timed_out")):
            r = await api.http.get(f"/me/commands/{command_id}", headers=bearer(b.alice))
            assert r.status_code == 200, r.text
            assert (r.json()["status"], r.json()["finished_at"] is not None) == (status, True), r.text
        history = await api.gateway.commands.history()
        assert [(c.id, c.status) for c in history] == [(timed_out, "timed_out"), (confirmed, "confirmed")]
        database = api.gateway.settings.database
    # A clean stop writes every answered outcome.
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT id, status, reason, finished_at IS NOT NULL FROM commands ORDER BY rowid")
        assert rows.fetchall() == [(confirmed, "confirmed", None, 1), (timed_out, "timed_out", "command_timeout", 1)]


@EMBEDDED
async def test_move_out_waits_for_the_residents_command_in_flight(api: Api) -> None:
    async with building(api) as b:
        b.sims["a"].light.ignore_commands = True
        r = await command(api, b.alice, b.entity("a", "light", "light"), {"on": True}, wait=False, timeout=0.5)
        assert r.status_code == 202, r.text
        r = await api.http.post(
            f"/properties/p1/units/a/residents/{b.alice_id}/move-out", json={}, headers=bearer(b.manager)
        )
        assert r.status_code == 200, r.text
        await api.gateway.persister.flush()
        rows = await sql(api, "SELECT actor, status FROM commands")
        assert rows == [("former-resident", "timed_out")]
        actors = await sql(api, "SELECT json_extract(data, '$.actor') FROM all_events WHERE type = 'command'")
        assert actors == [("former-resident",)]


# --- (2) command outcomes --------------------------------------------------------------------------------


@EMBEDDED
async def test_command_outcomes(api: Api) -> None:
    async with building(api) as b:
        sims = b.sims["a"]
        light, dimmer, lock = (
            b.entity("a", "light", "light"),
            b.entity("a", "dimmer", "light"),
            b.entity("a", "lock", "lock"),
        )

        async def recorded(command_id: str) -> dict[str, Any]:
            r = await api.http.get(f"/me/commands/{command_id}", headers=bearer(b.alice))
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            return body

        # wait=false: 202 at once, then poll the Location until confirmed
        r = await command(api, b.alice, light, {"on": True}, wait=False)
        assert r.status_code == 202, r.text
        accepted = r.json()
        assert accepted["status"] == "pending"
        location = r.headers["location"]
        assert location == f"/api/v1/me/commands/{accepted['id']}"

        async def poll() -> httpx.Response:
            return await api.http.get(api.service.url + location, headers=bearer(b.alice))

        r = await until(
            poll, lambda r: r.status_code == 200 and r.json()["status"] != "pending", "the polled command to finish"
        )
        assert r.json()["status"] == "confirmed"
        assert r.json()["command"] == {"on": True}
        assert sims.light.state.on is True
        # bob cannot poll alice's command
        problem(await api.http.get(location.removeprefix("/api/v1"), headers=bearer(b.bob)), 404, "command_not_found")

        # the device never answers: 504 after the requested timeout, with the command
        sims.light.ignore_commands = True
        started = asyncio.get_running_loop().time()
        body = problem(await command(api, b.alice, light, {"on": False}, timeout=0.5), 504, "command_timeout")
        assert 0.45 <= asyncio.get_running_loop().time() - started < 3
        assert body["command"]["status"] == "timed_out"
        assert body["command"]["command"] == {"on": False}
        assert (await recorded(body["command"]["id"]))["status"] == "timed_out"
        assert sims.light.state.on is True
        sims.light.ignore_commands = False

        # the lock jams
        sims.lock.jam_next_command()
        body = problem(await command(api, b.alice, lock, {"action": "unlock"}), 409, "device_jammed")
        assert body["command"]["status"] == "refused"
        assert (await recorded(body["command"]["id"]))["reason"] == "device_jammed"
        assert lock_status(sims.lock) is LockStatus.JAMMED

        # out of range: refused before anything is published, naming the field
        body = problem(await command(api, b.alice, dimmer, {"brightness": 300}), 422, "command_invalid")
        assert body["field"] == "brightness"
        assert body["command"]["status"] == "rejected"
        assert sims.dimmer.state.brightness != 300

        # not a command entity at all
        for sensor in (b.entity("a", "lock", "sensor", "battery"), b.entity("a", "leak", "binary_sensor", "leak")):
            body = problem(await command(api, b.alice, sensor, {"on": True}), 409, "not_commandable")
            assert body["command"]["status"] == "rejected"

        # offline
        await sims.dimmer.drop_offline()

        async def dimmer_view() -> dict[str, Any]:
            r = await api.http.get("/me/devices/fwsim-u101-dimmer", headers=bearer(b.alice))
            assert r.status_code == 200, r.text
            view: dict[str, Any] = r.json()
            return view

        await until(dimmer_view, lambda d: d["entities"][0]["available"] is False, "the dimmer to show offline")
        body = problem(await command(api, b.alice, dimmer, {"on": True}), 409, "device_offline")
        assert body["command"]["status"] == "rejected"
        await sims.dimmer.come_back()
        await sims.dimmer.wait_online(5)
        await until(dimmer_view, lambda d: d["entities"][0]["available"] is True, "the dimmer to come back")
        r = await command(api, b.alice, dimmer, {"on": True, "brightness": 128})
        assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text


# --- (3) the live stream ---------------------------------------------------------------------------------


@EMBEDDED
async def test_live_stream(start_api: ApiFactory) -> None:
    two_devices = {"app_devices_per_account": 2}
    async with start_api() as api, building(api, two_devices) as b:
        light = b.entity("a", "light", "light")
        dimmer = b.entity("a", "dimmer", "light")
        thermostat = b.entity("a", "thermostat", "climate")
        watcher = await api.login("alice", client="tablet")
        async with (
            api.http.stream("GET", "/me/stream", headers=bearer(watcher)) as alice_response,
            api.http.stream("GET", "/me/stream", headers=bearer(b.bob)) as bob_response,
        ):
            alice, bob = Sse(alice_response), Sse(bob_response)
            assert await alice.next() == ("ready", {"unit_id": "a"})
            assert await bob.next() == ("ready", {"unit_id": "b"})

            # a command from alice's other session shows up on the stream
            r = await command(api, b.alice, light, {"on": True})
            assert r.status_code == 200, r.text
            seen = await alice.until("state", light, lambda e: e["state"]["on"] is True)
            # a change made at the device itself
            await b.sims["a"].thermostat.set_current_temperature(17.25)
            seen += await alice.until("state", thermostat, lambda e: e["state"]["current_temperature"] == 17.25)
            # availability both ways
            await b.sims["a"].dimmer.drop_offline()
            seen += await alice.until("availability", dimmer, lambda e: e["available"] is False)
            await b.sims["a"].dimmer.come_back()
            seen += await alice.until("availability", dimmer, lambda e: e["available"] is True)
            assert {unit_of_entity(e["id"]) for _, e in seen} == {"u101"}

            # bob's stream carried none of that: the first thing it sees is his own thermostat
            await b.sims["b"].thermostat.set_current_temperature(25.5)
            bob_seen = await bob.until("state", b.entity("b", "thermostat", "climate"))
            assert len(bob_seen) == 1, bob_seen

            # logging out the streaming session ends its stream at once; the other session carries on
            started = asyncio.get_running_loop().time()
            r = await api.http.post("/auth/logout", headers=bearer(watcher))
            assert r.status_code == 204, r.text
            await alice.ended(timeout=2.0)
            assert asyncio.get_running_loop().time() - started < 2.0
            assert (await api.http.get("/me", headers=bearer(b.alice))).status_code == 200
            problem(await api.http.get("/me/stream", headers=bearer(watcher)), 401, "session_revoked")

            # the operator revoking bob's sessions ends his stream too
            r = await api.http.post(f"/operator/accounts/{b.bob_id}/revoke-sessions", headers=bearer(api.operator))
            assert r.status_code == 204, r.text
            await bob.ended(timeout=2.0)
        await b.sims["a"].dimmer.wait_online(5)
        assert api.service.hub.open_streams() == 0


# --- (4) history paging ----------------------------------------------------------------------------------


@EMBEDDED
async def test_events_paging(api: Api) -> None:
    async with building(api) as b:
        light = b.entity("a", "light", "light")
        for on in (True, False, True, False):
            r = await command(api, b.alice, light, {"on": on})
            assert r.status_code == 200, r.text
        everything = await until(
            lambda: events(api, b.alice, limit=200),
            lambda p: sum(e["type"] == "command" for e in p["events"]) == 4,
            "four commands in the history",
        )
        assert everything["next_before"] is None
        ids = [e["id"] for e in everything["events"]]
        assert ids == sorted(ids, reverse=True) and len(ids) == len(set(ids))
        assert len(ids) >= 8  # four commands and four state changes at least

        paged: list[int] = []
        before: int | None = None
        pages = 0
        while True:
            page = await events(api, b.alice, limit=3, **({} if before is None else {"before": before}))
            pages += 1
            assert len(page["events"]) <= 3
            paged += [e["id"] for e in page["events"]]
            before = page["next_before"]
            if before is None:
                break
            assert before == page["events"][-1]["id"]
        assert paged == ids
        assert pages == len(ids) // 3 + 1
        # bob's history has nothing of unit a
        bob_page = await events(api, b.bob, limit=200)
        assert not {e["id"] for e in bob_page["events"]} & set(ids)
        for params in ({"limit": 0}, {"limit": 201}, {"before": 0}):
            problem(await api.http.get("/me/events", params=params, headers=bearer(b.alice)), 422, "validation_failed")


# --- (5) device health -----------------------------------------------------------------------------------


@EMBEDDED
async def test_property_health(prefix: str, mqtt: aiomqtt.Client, api: Api) -> None:
    async with building(api) as b:

        async def health(token: str | None = None) -> dict[str, Any]:
            r = await api.http.get("/properties/p1/health", headers=bearer(token or b.manager))
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            return body

        h = await health()
        assert (h["devices"], h["offline"], h["stale"], h["low_battery"], h["issues"]) == (10, 0, 0, 0, [])
        problem(await api.http.get("/properties/p1/health", headers=bearer(b.alice)), 403, "role_forbidden")

        # a device drops off the network
        await b.sims["b"].dimmer.drop_offline()
        h = await until(health, lambda h: h["offline"] == 1, "the dimmer offline in health")
        assert [(i["unit_id"], i["device_id"], i["entity_id"], i["problems"]) for i in h["issues"]] == [
            ("b", "fwsim-u102-dimmer", b.entity("b", "dimmer", "light"), ["offline"])
        ]

        # a lock battery runs low (a device with two entities counts once)
        await b.sims["a"].lock.set_battery(15)
        h = await until(health, lambda h: h["low_battery"] == 1, "low battery in health")
        battery = next(i for i in h["issues"] if "low_battery" in i["problems"])
        assert battery["entity_id"] == b.entity("a", "lock", "sensor", "battery")
        assert battery["device_id"] == "fwsim-u101-lock"
        assert battery["battery"] == 15.0
        await b.sims["a"].lock.set_battery(20)
        await until(health, lambda h: h["low_battery"] == 0, "battery at the threshold no longer low")

        # a device that announced itself but never reported anything
        await mqtt.publish(
            f"{prefix}/sensor/hall/temperature/config",
            json.dumps(
                {
                    "name": "Hall temperature",
                    "unique_id": "hall-temperature",
                    "state_topic": f"{prefix}-raw/hall/temperature",
                    "unit_of_measurement": "°C",
                    "device": {"identifiers": ["raw-hall"], "name": "Hall sensor"},
                }
            ),
            qos=1,
            retain=True,
        )
        await until(
            lambda: api.http.get("/properties/p1/devices/unbound", headers=bearer(b.installer)),
            lambda r: "raw-hall" in {d["id"] for d in r.json()},
            "the raw device discovered",
        )
        r = await api.http.post(
            "/properties/p1/units/a/devices", json={"device_id": "raw-hall"}, headers=bearer(b.installer)
        )
        assert r.status_code == 201, r.text
        h = await health(b.installer)
        assert (h["devices"], h["offline"], h["stale"], h["low_battery"]) == (11, 1, 1, 0)
        stale = next(i for i in h["issues"] if i["device_id"] == "raw-hall")
        assert stale["problems"] == ["stale:never_reported"]
        assert stale["unit_id"] == "a"

        # and back to healthy
        await b.sims["b"].dimmer.come_back()
        await b.sims["b"].dimmer.wait_online(5)
        await mqtt.publish(f"{prefix}-raw/hall/temperature", b"21.5", qos=1)
        h = await until(health, lambda h: h["offline"] == 0 and h["stale"] == 0, "everything healthy again")
        assert (h["devices"], h["low_battery"], h["issues"]) == (11, 0, [])


# --- (6) unbinding ---------------------------------------------------------------------------------------


@EMBEDDED
async def test_unbound_device_leaves_the_residents_list(api: Api) -> None:
    async with building(api) as b:
        light = b.entity("a", "light", "light")
        r = await api.http.put("/me/devices/fwsim-u101-light/name", json={"name": "Reading"}, headers=bearer(b.alice))
        assert r.status_code == 200, r.text
        r = await api.http.delete("/properties/p1/units/a/devices/fwsim-u101-light", headers=bearer(b.installer))
        assert r.status_code == 204, r.text
        await assert_unbound(api, b, light)

        # bound again: the old name does not come back
        r = await api.http.post(
            "/properties/p1/units/a/devices", json={"device_id": "fwsim-u101-light"}, headers=bearer(b.manager)
        )
        assert r.status_code == 201, r.text
        r = await api.http.get("/me/devices/fwsim-u101-light", headers=bearer(b.alice))
        assert r.status_code == 200, r.text
        assert r.json()["resident_name"] is None
        r = await command(api, b.alice, light, {"on": True})
        assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text
        # unbinding from the wrong unit is refused and changes nothing
        r = await api.http.delete("/properties/p1/units/b/devices/fwsim-u101-light", headers=bearer(b.installer))
        problem(r, 404, "device_not_found")
        assert (await api.http.get("/me/devices/fwsim-u101-light", headers=bearer(b.alice))).status_code == 200


async def assert_unbound(api: Api, b: Building, light: str) -> None:
    """The light is gone from alice's view and commands to it are 404."""
    r = await api.http.get("/me/devices", headers=bearer(b.alice))
    assert r.status_code == 200, r.text
    assert "fwsim-u101-light" not in {d["id"] for d in r.json()}
    assert len(r.json()) == 4
    problem(await api.http.get("/me/devices/fwsim-u101-light", headers=bearer(b.alice)), 404, "device_not_found")
    problem(await command(api, b.alice, light, {"on": True}), 404, "entity_not_found")
    assert b.sims["a"].light.state.on is not True
    r = await api.http.get("/properties/p1/devices/unbound", headers=bearer(b.installer))
    assert "fwsim-u101-light" in {d["id"] for d in r.json()}
