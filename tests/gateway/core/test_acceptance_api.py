"""The device plane's acceptance seen from outside: through the HTTP API (who sees and reaches which devices), under
a flood of fake configs, and on a gated broker with real credentials.

Whether nothing reached a victim's command topic is told by a fence: a message published after the attack on the
same topic, which the observer receives only after anything published there before it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.config import BrokerSettings
from gateway.mqtt.acl import CredentialKind, Namespace
from gateway.mqtt.broker import EmbeddedBroker
from gateway.mqtt.credentials import BrokerCredentials
from gateway.storage import Database
from tests.gateway.core.plane import add_properties, lock_config, publish, refused
from tests.support.api import AGREEMENT, FAST_PASSWORDS, Api, accept, bearer, command, running_api, set_contract
from tests.support.api import publish as publish_agreement
from tests.support.brokers import BrokerHandle
from tests.support.gateway import GatewayFactory
from tests.support.polling import eventually

pytestmark = pytest.mark.parametrize("broker", ["embedded"], indirect=True)


@pytest.fixture
async def enforced_api(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> AsyncIterator[Api]:
    """The API over a gateway with the device plane enforced (pending unbound devices capped at 20)."""
    factory = make_gateway.using(device_plane="enforced", unbound_devices_per_property=20)
    async with running_api(factory, broker, prefix, clock) as api:
        yield api


async def _property(api: Api, property_id: str, manager: str) -> str:
    r = await api.http.post("/properties", json={"id": property_id, "name": property_id}, headers=bearer(api.operator))
    assert r.status_code == 201, r.text
    return await api.staff(manager, "manager", property_id)


async def _device_credential(api: Api, username: str, property_id: str, node: str, root: str) -> None:
    namespace = Namespace(discovery_prefix=api.prefix, node_ids=(node,), state_roots=(root,), command_roots=(root,))
    await api.services.broker_credentials.create(
        username, CredentialKind.DEVICE, property_id=property_id, namespace=namespace
    )


async def _unbound(api: Api, manager: str, property_id: str) -> set[str]:
    r = await api.http.get(f"/properties/{property_id}/devices/unbound", headers=bearer(manager))
    assert r.status_code == 200, r.text
    return {d["id"] for d in r.json()}


async def _until_fence(observer: aiomqtt.Client, topic: str, fence: bytes) -> list[bytes]:
    got: list[bytes] = []
    async with asyncio.timeout(10):
        async for message in observer.messages:
            if str(message.topic) == topic and bytes(message.payload) == fence:
                return got
            got.append(bytes(message.payload))
    return got


async def test_unit_bs_device_cannot_claim_unit_as_lock_and_bs_resident_cannot_reach_it(
    enforced_api: Api, mqtt: aiomqtt.Client
) -> None:
    """The attack from issue 13: A's lock config emptied, then a lock under B's bound device pointing at A's topics
    (or claiming A's device id): both refused, and nothing B's resident does reaches A's command topic."""
    api, prefix = enforced_api, enforced_api.prefix
    manager = await _property(api, "p1", "maria.manager")
    await set_contract(api)
    await publish_agreement(api, AGREEMENT)
    for unit in ("a", "b"):
        r = await api.http.post("/properties/p1/units", json={"label": unit, "id": unit}, headers=bearer(manager))
        assert r.status_code == 201, r.text
    await _device_credential(api, "lock-a", "p1", "lock-a", "bldg/a")
    await _device_credential(api, "dev-b", "p1", "dev-b", "bldg/b")
    await publish(mqtt, f"{prefix}/lock/lock-a/lock/config", lock_config("bldg/a", "lock-a"))
    await publish(mqtt, f"{prefix}/lock/dev-b/lock/config", lock_config("bldg/b", "dev-b"))
    await eventually(lambda: api.gateway.registry.device_ids() == ["dev-b", "lock-a"], what="both devices")
    for unit, device in (("a", "lock-a"), ("b", "dev-b")):
        r = await api.http.post(
            f"/properties/p1/units/{unit}/devices", json={"device_id": device}, headers=bearer(manager)
        )
        assert r.status_code == 201, r.text
    _, bob = await api.move_in(manager, "p1", "b", "bob")
    assert (await accept(api, bob)).status_code == 200

    async with aiomqtt.Client(api.broker.host, api.broker.port, identifier=f"obs-{uuid.uuid4().hex[:6]}") as observer:
        await observer.subscribe("bldg/a/lock/set", qos=1)
        await publish(mqtt, f"{prefix}/lock/lock-a/lock/config", b"")  # A's lock config emptied
        evil = lock_config("bldg/a", "dev-b", name="Front door")  # under B's node id and bound device, A's topics
        await refused(api.gateway, mqtt, f"{prefix}/lock/dev-b/evil/config", evil, "topic_outside_namespace")
        claim = lock_config("bldg/b/claim", "lock-a")  # B's own topics, A's device id
        await refused(api.gateway, mqtt, f"{prefix}/lock/dev-b/claim/config", claim, "device_id_taken")
        r = await api.http.get("/me/devices", headers=bearer(bob))
        assert r.status_code == 200, r.text
        entities = [e["id"] for d in r.json() for e in d["entities"]]
        assert entities == ["lock.dev-b.lock"], entities
        for entity in ("lock.dev-b.evil", "lock.dev-b.claim", "lock.lock-a.lock"):
            r = await command(api, bob, entity, {"action": "unlock"})
            assert r.status_code == 404, r.text
        await publish(mqtt, "bldg/a/lock/set", b"fence", retain=False)
        assert await _until_fence(observer, "bldg/a/lock/set", b"fence") == [], "nothing reached A's lock"


async def test_five_thousand_fake_configs_cost_only_the_flooder(
    enforced_api: Api, mqtt: aiomqtt.Client, caplog: pytest.LogCaptureFixture
) -> None:
    api, prefix = enforced_api, enforced_api.prefix
    maria = await _property(api, "p1", "maria.manager")
    mario = await _property(api, "p2", "mario.manager")
    await _device_credential(api, "flood", "p1", "flood", "flood")
    await _device_credential(api, "sensor-p2", "p2", "sensor-p2", "p2/sensor")
    with caplog.at_level(logging.INFO, logger="gateway.core"):
        async with aiomqtt.Client(api.broker.host, api.broker.port, identifier="flooder") as flooder:
            for start in range(0, 5_000, 500):
                await asyncio.gather(
                    *(
                        flooder.publish(
                            f"{prefix}/lock/flood/f{n}/config",
                            json.dumps(lock_config(f"flood/{n}", f"fake-{n}")).encode(),
                            qos=1,
                            retain=True,
                        )
                        for n in range(start, start + 500)
                    )
                )
        await eventually(
            lambda: api.gateway.metrics.rejected["unbound_devices_limit"] == 5_000 - 20,
            timeout=60,
            what="every config beyond the cap refused",
        )
    assert len(api.gateway.registry.device_ids()) == 20
    logged = [r for r in caplog.records if r.getMessage().startswith("refused message")]
    assert 1 <= len(logged) <= 2, [r.getMessage() for r in logged]
    # Another property's device is accepted and listed to its own manager only; the flood to p1's alone.
    await publish(mqtt, f"{prefix}/lock/sensor-p2/lock/config", lock_config("p2/sensor", "p2-lock"))
    await eventually(lambda: api.gateway.registry.get("lock/sensor-p2/lock") is not None, what="p2's device")
    assert await _unbound(api, mario, "p2") == {"p2-lock"}
    flooded = await _unbound(api, maria, "p1")
    assert len(flooded) == 20 and all(d.startswith("fake-") for d in flooded)
    # Nor can p1's manager bind p2's device (answered as unknown).
    r = await api.http.post("/properties/p1/units", json={"label": "u1", "id": "u1"}, headers=bearer(maria))
    r = await api.http.post("/properties/p1/units/u1/devices", json={"device_id": "p2-lock"}, headers=bearer(maria))
    assert r.status_code == 404 and r.json()["code"] == "device_not_found", r.text
    # Revoking the flooder frees its property's pending slots (its devices stay listed until removed).
    flood = next(c for c in await api.services.broker_credentials.find("p1") if c.credential.username == "flood")
    await api.services.broker_credentials.revoke(flood.credential.id)
    await _device_credential(api, "door-p1", "p1", "door-p1", "p1/door")
    await publish(mqtt, f"{prefix}/lock/door-p1/lock/config", lock_config("p1/door", "p1-door"))
    await eventually(lambda: api.gateway.registry.get("lock/door-p1/lock") is not None, what="p1's next device")


async def test_on_a_gated_broker_a_device_reaches_neither_anothers_node_id_nor_its_topics(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    """The broker's ACL and the gateway's acceptance together: B's credential cannot publish under A's node id
    (the broker drops it), and its config under its own node id naming A's topics is refused by the gateway."""
    settings = make_gateway.settings(device_plane="enforced")
    prefix = settings.discovery_prefix
    async with Database(settings.database) as db:
        await add_properties(db, "p1")
        store = BrokerCredentials(db, make_gateway.clock, FAST_PASSWORDS)
        gw_login = await store.create("gateway", CredentialKind.GATEWAY, property_id=None)
        passwords: dict[str, str] = {}
        for name, root in (("lock-a", "bldg/a"), ("dev-b", "bldg/b")):
            namespace = Namespace(discovery_prefix=prefix, node_ids=(name,), state_roots=(root,), command_roots=(root,))
            issued = await store.create(name, CredentialKind.DEVICE, property_id="p1", namespace=namespace)
            passwords[name] = issued.password.get_secret_value()
        async with EmbeddedBroker(credentials=store.verify) as gated:
            login = BrokerSettings(
                host=gated.host, port=gated.port, username="gateway", password=gw_login.password.get_secret_value()
            )
            async with Gateway(settings.model_copy(update={"broker": login}), make_gateway.clock) as gw:
                await gw.wait_connected(10)
                a = aiomqtt.Client(
                    gated.host, gated.port, username="lock-a", password=passwords["lock-a"], identifier="lock-a"
                )
                b = aiomqtt.Client(
                    gated.host, gated.port, username="dev-b", password=passwords["dev-b"], identifier="dev-b"
                )
                observer = aiomqtt.Client(
                    gated.host, gated.port, username="gateway", password=login.password, identifier="observer"
                )
                async with a, b, observer:
                    await observer.subscribe(f"{prefix}/#", qos=1)
                    await observer.subscribe("bldg/#", qos=1)
                    await publish(a, f"{prefix}/lock/lock-a/lock/config", lock_config("bldg/a", "lock-a"))
                    await eventually(lambda: gw.registry.device_ids() == ["lock-a"], what="A's lock")
                    await publish(b, f"{prefix}/lock/lock-a/evil/config", lock_config("bldg/b", "lock-a"))
                    await publish(b, "bldg/a/lock/set", b"UNLOCK", retain=False)
                    await refused(
                        gw,
                        b,
                        f"{prefix}/lock/dev-b/evil/config",
                        lock_config("bldg/a", "dev-b"),
                        "topic_outside_namespace",
                    )
                    await publish(b, "bldg/b/fence", b"fence", retain=False)
                    got = await _until_topic(observer, "bldg/b/fence")
                # B's config under A's node id and its UNLOCK on A's command topic never got through the broker.
                assert got == [f"{prefix}/lock/lock-a/lock/config", f"{prefix}/lock/dev-b/evil/config"], got
                assert gw.registry.device_ids() == ["lock-a"]
                assert [e.id for e in gw.registry.entities_of_device("lock-a")] == ["lock/lock-a/lock"]


async def _until_topic(observer: aiomqtt.Client, fence: str) -> list[str]:
    got: list[str] = []
    async with asyncio.timeout(10):
        async for message in observer.messages:
            if str(message.topic) == fence:
                return got
            got.append(str(message.topic))
    return got
