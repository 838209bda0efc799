"""A bound device's wiring is pinned: a changed discovery config holds it (nothing sent, reports not trusted) until
staff approve, the device says its pinned wiring again, or staff unbind it; a removed config keeps its topics
reserved. Over real MQTT and HTTP."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt
import pytest

from gateway.core.entity import Entity
from tests.support.api import Api, ApiFactory, bearer, building, command, problem
from tests.support.brokers import BrokerHandle
from tests.support.polling import eventually

pytestmark = pytest.mark.parametrize("broker", ["embedded"], indirect=True)

LOCK_KEY_A = "lock/u101-lock/lock"
LOCK_A = "lock.u101-lock.lock"
DEVICE_A = "fwsim-u101-lock"
DEVICE_B = "fwsim-u102-lock"


# --- helpers ---------------------------------------------------------------------------------------------


def lock_entity(api: Api, key: str = LOCK_KEY_A) -> Entity:
    entity = api.gateway.registry.get(key)
    assert entity is not None, key
    return entity


def config_topic(api: Api, key: str) -> str:
    return f"{api.prefix}/{key}/config"


def swapped(raw: str) -> bytes:
    """The lock's config with its lock and unlock words swapped (same topics, same device)."""
    body = json.loads(raw)
    body["payload_lock"], body["payload_unlock"] = "UNLOCK", "LOCK"
    return json.dumps(body).encode()


async def publish(broker: BrokerHandle, topic: str, payload: bytes, *, retain: bool = True) -> None:
    """Publish as an anonymous client on the building network would."""
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"attacker-{uuid.uuid4().hex[:6]}") as client:
        await client.publish(topic, payload, qos=1, retain=retain)


class Spy:
    """Everything published on one topic (the gateway's view of a victim's command topic), read up to a fence."""

    def __init__(self, client: aiomqtt.Client, topic: str) -> None:
        self.client, self.topic = client, topic
        self.fence = f"fence-{uuid.uuid4().hex[:6]}".encode()

    async def next(self) -> bytes:
        """The next payload on the topic (within 5 s)."""
        async with asyncio.timeout(5):
            async for message in self.client.messages:
                return message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        raise AssertionError("the spy's connection ended")

    async def seen(self) -> list[bytes]:
        """Every payload on the topic until our own fence comes back (what arrived before it, in order)."""
        await self.client.publish(self.topic, self.fence, qos=1)
        got: list[bytes] = []
        async with asyncio.timeout(5):
            async for message in self.client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                if payload == self.fence:
                    return got
                got.append(payload)
        return got


@asynccontextmanager
async def spy(broker: BrokerHandle, topic: str) -> AsyncIterator[Spy]:
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"spy-{uuid.uuid4().hex[:6]}") as client:
        await client.subscribe(topic, qos=1)
        yield Spy(client, topic)


async def audit_actions(api: Api) -> list[tuple[str, str | None, str | None]]:
    return await api.gateway.db.run(
        lambda db: [
            (r[0], r[1], r[2])
            for r in db.execute(
                "SELECT action, actor_role, target FROM audit_log WHERE action LIKE 'device.wiring%' ORDER BY id"
            ).fetchall()
        ]
    )


async def journal(api: Api, key: str) -> list[str]:
    await api.gateway.persister.flush()
    return await api.gateway.db.run(
        lambda db: [r[0] for r in db.execute("SELECT type FROM all_events WHERE entity_key = ? ORDER BY id", [key])]
    )


async def wiring(api: Api, token: str, device_id: str, property_id: str = "p1") -> dict[str, Any]:
    r = await api.http.get(f"/properties/{property_id}/devices/{device_id}/wiring", headers=bearer(token))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def held(api: Api, key: str = LOCK_KEY_A) -> Callable[[], bool]:
    return lambda: (e := api.gateway.registry.get(key)) is not None and e.held


async def hold_lock_a(api: Api) -> str:
    """The attack: A's lock's retained config rewritten with its words swapped; return the original config."""
    original = lock_entity(api).raw_config
    await publish(api.broker, config_topic(api, LOCK_KEY_A), swapped(original))
    await eventually(held(api), what="A's lock held")
    return original


async def forged_report(api: Api, payload: bytes) -> None:
    """Publish ``payload`` on A's lock's state topic, then wait until the gateway has handled it (a fence: a bad
    availability word on the same connection, after it, counted as refused)."""
    entity = lock_entity(api)
    [state_topic] = entity.config.state_topics()
    [availability] = {e.topic for e in entity.config.availability_entries()}
    metrics = api.gateway.registry.metrics
    fences = metrics.rejected["availability_invalid"]
    async with aiomqtt.Client(api.broker.host, api.broker.port, identifier=f"forger-{uuid.uuid4().hex[:6]}") as c:
        await c.publish(state_topic, payload, qos=1)
        await c.publish(availability, b"not-a-word", qos=1)
    await eventually(lambda: metrics.rejected["availability_invalid"] > fences, what="forged report handled")


# --- the swapped-words attack ----------------------------------------------------------------------------


async def test_swapped_words_hold_the_lock_until_staff_approve(api: Api) -> None:
    async with building(api) as b:
        [topic] = lock_entity(api).config.command_topics()
        await hold_lock_a(api)
        async with spy(api.broker, topic) as watch:
            # the resident's "lock" is refused, and nothing reaches the lock
            body = problem(await command(api, b.alice, LOCK_A, {"action": "lock"}), 409, "device_held")
            assert body["command"]["status"] == "rejected"
            assert await watch.seen() == []

            # its reports are not trusted: shown as held, not applied
            r = await api.http.get("/me/devices/" + DEVICE_A, headers=bearer(b.alice))
            [lock] = [e for e in r.json()["entities"] if e["id"] == LOCK_A]
            assert (lock["stale"], lock["stale_reason"]) == (True, "held")
            before = lock_entity(api).state
            await forged_report(api, b"UNLOCKED")

            # staff see the hold and exactly what changed
            shown = await wiring(api, b.manager, DEVICE_A)
            assert shown["status"] == "held" and shown["held_since"] is not None
            [changed] = [e for e in shown["entities"] if e["entity_id"] == LOCK_A]
            assert changed["status"] == "changed"
            assert {(c["field"], c["pinned"], c["now"]) for c in changed["changes"]} == {
                ("payload_lock", "LOCK", "UNLOCK"),
                ("payload_unlock", "UNLOCK", "LOCK"),
            }
            r = await api.http.get("/properties/p1/units/a", headers=bearer(b.installer))
            [device] = [d for d in r.json()["devices"] if d["id"] == DEVICE_A]
            assert device["wiring"]["status"] == "held"
            r = await api.http.get("/properties/p1/health", headers=bearer(b.manager))
            assert r.json()["held"] == 1
            assert any(i["entity_id"] == LOCK_A and "held" in i["problems"] for i in r.json()["issues"])
            assert lock_entity(api).state == before  # the forged report was not applied
            assert "wiring_changed" in await journal(api, LOCK_KEY_A)

            # the resident sees no wiring; another property's staff and residents get 404
            r = await api.http.get("/me/devices/" + DEVICE_A, headers=bearer(b.alice))
            assert r.json()["wiring"] is None
            problem(
                await api.http.post(f"/properties/p1/devices/{DEVICE_A}/wiring/approve", headers=bearer(b.alice)),
                403,
                "role_forbidden",
            )

            # approved: pinned anew, commands go out in the new words
            r = await api.http.post(f"/properties/p1/devices/{DEVICE_A}/wiring/approve", headers=bearer(b.installer))
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "pinned"
            assert not lock_entity(api).held
            problem(
                await api.http.post(f"/properties/p1/devices/{DEVICE_A}/wiring/approve", headers=bearer(b.installer)),
                409,
                "device_not_held",
            )
            r = await command(api, b.alice, LOCK_A, {"action": "lock"}, wait=False)
            assert r.status_code == 202, r.text
            assert await watch.next() == b"UNLOCK"  # the approved lock word
        actions = await audit_actions(api)
        assert ("device.wiring_changed", "system", DEVICE_A) in actions
        assert ("device.wiring_approve", "installer", DEVICE_A) in actions
        assert "wiring_approved" in await journal(api, LOCK_KEY_A)


async def test_republishing_the_pinned_config_releases_the_hold(api: Api) -> None:
    async with building(api) as b:
        original = await hold_lock_a(api)
        r = await api.http.post(f"/properties/p1/devices/{DEVICE_A}/wiring/reject", headers=bearer(b.manager))
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "held" and r.json()["rejected_at"] is not None
        problem(await command(api, b.alice, LOCK_A, {"action": "unlock"}), 409, "device_held")

        await publish(api.broker, config_topic(api, LOCK_KEY_A), original.encode())
        await eventually(lambda: not lock_entity(api).held, what="hold released")
        assert (await wiring(api, b.manager, DEVICE_A))["status"] == "pinned"
        r = await command(api, b.alice, LOCK_A, {"action": "unlock"})
        assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text
        assert ("device.wiring_reject", "manager", DEVICE_A) in await audit_actions(api)
        assert "wiring_restored" in await journal(api, LOCK_KEY_A)


async def test_another_property_or_unknown_device_answers_404(api: Api) -> None:
    async with building(api) as b:
        await hold_lock_a(api)
        r = await api.http.post("/properties", json={"id": "p2", "name": "Other"}, headers=bearer(api.operator))
        assert r.status_code == 201, r.text
        other = await api.staff("otto.manager", "manager", "p2")
        for token, pid, device in ((other, "p2", DEVICE_A), (b.manager, "p1", "no-such-device")):
            for path in ("wiring/approve", "wiring/reject"):
                r = await api.http.post(f"/properties/{pid}/devices/{device}/{path}", headers=bearer(token))
                problem(r, 404, "device_not_found")
        problem(
            await api.http.post(f"/properties/p1/devices/{DEVICE_A}/wiring/approve", headers=bearer(other)),
            404,
            "property_not_found",
        )
        # the operator may approve on any property
        r = await api.http.post(f"/properties/p1/devices/{DEVICE_A}/wiring/approve", headers=bearer(api.operator))
        assert r.status_code == 200, r.text
        assert ("device.wiring_approve", "operator", DEVICE_A) in await audit_actions(api)


# --- a removed config keeps its topics reserved ------------------------------------------------------------


async def test_removed_config_keeps_topics_reserved_against_another_bound_device(api: Api) -> None:
    async with building(api) as b:
        victim = lock_entity(api).config
        [command_topic] = victim.command_topics()
        [state_topic] = victim.state_topics()
        await publish(api.broker, config_topic(api, LOCK_KEY_A), b"")
        await eventually(lambda: api.gateway.registry.get(LOCK_KEY_A) is None, what="A's lock removed")

        # removed but bound: staff still see it, not silently gone
        shown = await wiring(api, b.manager, DEVICE_A)
        assert shown["status"] == "removed"
        assert {"entity_id": LOCK_A, "status": "removed", "changes": []} in shown["entities"]
        r = await api.http.get("/properties/p1/units/a", headers=bearer(b.manager))
        assert [d["wiring"]["status"] for d in r.json()["devices"] if d["id"] == DEVICE_A] == ["removed"]

        # a new lock under B's bound device naming A's topics is refused
        evil = {
            "name": "Evil",
            "command_topic": command_topic,
            "state_topic": state_topic,
            "device": {"identifiers": [DEVICE_B], "name": "u102 lock"},
        }
        refused = api.gateway.registry.metrics.rejected["topic_reserved"]
        await publish(api.broker, config_topic(api, "lock/u102-lock/evil"), json.dumps(evil).encode())
        await eventually(
            lambda: api.gateway.registry.metrics.rejected["topic_reserved"] > refused, what="evil config refused"
        )
        assert api.gateway.registry.get("lock/u102-lock/evil") is None
        async with spy(api.broker, command_topic) as watch:
            problem(await command(api, b.bob, "lock.u102-lock.evil", {"action": "unlock"}), 404, "entity_not_found")
            assert await watch.seen() == []

        # under B's device on topics of its own it is accepted but held: added to a bound device
        fresh = {**evil, "command_topic": "elsewhere/set", "state_topic": "elsewhere/state"}
        await publish(api.broker, config_topic(api, "lock/u102-lock/extra"), json.dumps(fresh).encode())
        await eventually(held(api, "lock/u102-lock/extra"), what="added lock held")
        async with spy(api.broker, "elsewhere/set") as watch:
            problem(await command(api, b.bob, "lock.u102-lock.extra", {"action": "unlock"}), 409, "device_held")
            assert await watch.seen() == []
        added = await wiring(api, b.manager, DEVICE_B)
        assert [e["status"] for e in added["entities"] if e["entity_id"] == "lock.u102-lock.extra"] == ["added"]

        # unbinding A frees its topics
        r = await api.http.delete(f"/properties/p1/units/a/devices/{DEVICE_A}", headers=bearer(b.installer))
        assert r.status_code == 204, r.text
        assert command_topic not in api.services.wiring.reserved_topics()


# --- a restart keeps the pin and the hold ------------------------------------------------------------------


async def test_a_restart_keeps_the_pin_and_the_hold(start_api: ApiFactory) -> None:
    async with start_api() as api, building(api) as b:
        await hold_lock_a(api)
        alice = b.alice  # sessions outlive a restart (a second sign-in would be one app device too many)
    async with start_api() as api:
        await eventually(held(api), what="A's lock held after the restart")
        problem(await command(api, alice, LOCK_A, {"action": "lock"}), 409, "device_held")
        manager = await api.login("maria.manager")
        shown = await wiring(api, manager, DEVICE_A)
        assert shown["status"] == "held"
        r = await api.http.post(f"/properties/p1/devices/{DEVICE_A}/wiring/approve", headers=bearer(manager))
        assert r.status_code == 200, r.text
    async with start_api() as api:
        await eventually(lambda: api.gateway.registry.get(LOCK_KEY_A) is not None, what="lock loaded")
        assert not lock_entity(api).held  # the approved wiring is the pinned one now
