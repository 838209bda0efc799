"""The gateway trusts topics, not payloads: with the device plane enforced, a discovery config is accepted only from
the namespace of the live credential owning its node id, and a device id belongs to its first publisher.

The broker here is open (anyone may publish anything): what is tested is the gateway's own decision, which on a
gated broker (see test_acceptance_api) stands behind the broker's ACL.
"""

from __future__ import annotations

import logging
import sqlite3
from functools import partial

import aiomqtt
import pytest

from devices import LockState, LockStatus
from gateway.app import Gateway
from tests.gateway.core.plane import Plane, lock_config, publish
from tests.support.gateway import GatewayFactory
from tests.support.polling import eventually

pytestmark = pytest.mark.parametrize("broker", ["embedded"], indirect=True)


async def test_a_config_under_a_node_id_no_live_credential_owns_is_refused(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client
) -> None:
    async with make_gateway(device_plane="enforced") as gw:
        plane = await Plane.over(gw, "p1")
        await plane.device("lock-a", "p1", ("lock-a",), ("bldg/a",))
        await plane.refused(
            mqtt, plane.config_topic("lock", "stranger", "lock"), lock_config("bldg/a", "x"), "node_id_unowned"
        )
        # No node id at all: nobody owns it either.
        await plane.refused(mqtt, f"{plane.prefix}/lock/lonely/config", lock_config("bldg/a", "y"), "node_id_unowned")
        await publish(mqtt, plane.config_topic("lock", "lock-a", "lock"), lock_config("bldg/a", "lock-a"))
        await eventually(lambda: gw.registry.get("lock/lock-a/lock") is not None, what="the owner's config accepted")
        assert gw.registry.device_ids() == ["lock-a"]
        assert gw.acceptance is not None
        owner = gw.acceptance.owner_of_device("lock-a")
        assert owner is not None and owner.property_id == "p1"


@pytest.mark.parametrize(
    "changes",
    [
        {"command_topic": "bldg/a/lock/set"},
        {"state_topic": "bldg/a/lock/state"},
        {"availability_topic": "bldg/a/availability"},
        {"availability": [{"topic": "bldg/b/availability"}, {"topic": "elsewhere/status"}]},
    ],
    ids=["command", "state", "availability", "availability-list"],
)
async def test_a_config_naming_a_topic_outside_its_owners_roots_is_refused(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client, changes: dict[str, object]
) -> None:
    async with make_gateway(device_plane="enforced") as gw:
        plane = await Plane.over(gw, "p1")
        await plane.device("lock-a", "p1", ("lock-a",), ("bldg/a",))
        await plane.device("dev-b", "p1", ("dev-b",), ("bldg/b",))
        await publish(mqtt, plane.config_topic("lock", "lock-a", "lock"), lock_config("bldg/a", "lock-a"))
        await eventually(lambda: gw.registry.get("lock/lock-a/lock") is not None, what="unit A's lock")
        evil = lock_config("bldg/b", "dev-b", **changes)
        await plane.refused(mqtt, plane.config_topic("lock", "dev-b", "evil"), evil, "topic_outside_namespace")
        assert gw.registry.get("lock/dev-b/evil") is None
        assert gw.registry.device_ids() == ["lock-a"]


async def test_devices_of_one_bridge_may_share_its_status_topic_inside_its_roots(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client
) -> None:
    async with make_gateway(device_plane="enforced") as gw:
        plane = await Plane.over(gw, "p1")
        await plane.device("z2m", "p1", ("z2m-lock1", "z2m-lock2"), ("zigbee",))
        for name in ("lock1", "lock2"):
            body = lock_config(f"zigbee/{name}", f"z2m-{name}", availability_topic="zigbee/bridge/state")
            await publish(mqtt, plane.config_topic("lock", f"z2m-{name}", "lock"), body)
        await eventually(lambda: gw.registry.device_ids() == ["z2m-lock1", "z2m-lock2"], what="both bridged locks")
        await publish(mqtt, "zigbee/bridge/state", b"online")
        await eventually(
            lambda: all(e.available for e in gw.registry.entities()), what="both online by the bridge's status"
        )


async def test_a_device_id_belongs_to_its_first_publisher(make_gateway: GatewayFactory, mqtt: aiomqtt.Client) -> None:
    """Unit B's device claims unit A's lock's device id (its own topics, its own node id): refused, never merged;
    nor may B's config move one of its entities onto A's device."""
    async with make_gateway(device_plane="enforced") as gw:
        plane = await Plane.over(gw, "p1", "p2")
        await plane.device("lock-a", "p1", ("lock-a",), ("bldg/a",))
        await plane.device("dev-b", "p2", ("dev-b",), ("bldg/b",))
        await publish(mqtt, plane.config_topic("lock", "lock-a", "lock"), lock_config("bldg/a", "lock-a"))
        await publish(mqtt, plane.config_topic("lock", "dev-b", "lock"), lock_config("bldg/b", "dev-b"))
        await eventually(lambda: gw.registry.device_ids() == ["dev-b", "lock-a"], what="both devices")
        claim = lock_config("bldg/b/x", "lock-a")
        await plane.refused(mqtt, plane.config_topic("lock", "dev-b", "claim"), claim, "device_id_taken")
        await plane.refused(mqtt, plane.config_topic("lock", "dev-b", "lock"), claim, "device_id_taken")
        assert [e.id for e in gw.registry.entities_of_device("lock-a")] == ["lock/lock-a/lock"]
        b_lock = gw.registry.get("lock/dev-b/lock")
        assert b_lock is not None and b_lock.device_id == "dev-b", "the refused change left B's entity as it was"
        assert gw.registry.published_for("lock-a", "p1") and not gw.registry.published_for("lock-a", "p2")


async def test_a_revoked_owners_configs_are_refused_its_device_stays_listed_and_its_owner_is_kept(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client
) -> None:
    async with make_gateway(device_plane="enforced") as gw:
        plane = await Plane.over(gw, "p1")
        record = await plane.device("lock-a", "p1", ("lock-a",), ("bldg/a",))
        topic = plane.config_topic("lock", "lock-a", "lock")
        await publish(mqtt, topic, lock_config("bldg/a", "lock-a"))
        await eventually(lambda: gw.registry.get("lock/lock-a/lock") is not None, what="the lock")
        await plane.credentials.revoke(record.credential.id)
        await plane.refused(mqtt, topic, lock_config("bldg/a", "lock-a", payload_lock="OPEN-SESAME"), "node_id_unowned")
        await plane.refused(mqtt, topic, b"", "node_id_unowned")  # nor may it be removed in the revoked name
        lock = gw.registry.get("lock/lock-a/lock")
        assert lock is not None and lock.config.payload_lock == "LOCK"  # type: ignore[attr-defined]
        # A new credential given the same node id does not inherit the device: it belongs to the revoked one.
        await plane.device("lock-a2", "p1", ("lock-a",), ("bldg/a",))
        await plane.refused(mqtt, topic, lock_config("bldg/a", "lock-a", payload_lock="OPEN"), "device_id_taken")
        await publish(mqtt, "bldg/a/lock/state", b"LOCKED")  # its state is still heard
        await eventually(lambda: lock.state == LockState(status=LockStatus.LOCKED), what="the lock's state")
        await gw.persister.flush()
        db_path = gw.settings.database
    with sqlite3.connect(db_path) as conn:
        row = conn.execute("SELECT credential_id, property_id FROM device_owners WHERE device_id = 'lock-a'").fetchone()
    assert row == (record.credential.id, "p1")
    async with make_gateway(device_plane="enforced") as gw:
        assert gw.acceptance is not None
        owner = gw.acceptance.owner_of_device("lock-a")
        assert owner is not None and owner.credential_id == record.credential.id, "loaded at start"
        assert gw.registry.get("lock/lock-a/lock") is not None, "still listed until removed by staff"
        plane = await Plane.over(gw)
        await plane.refused(mqtt, topic, lock_config("bldg/a", "lock-a", payload_lock="OPEN"), "device_id_taken")


async def test_a_device_takes_a_bounded_number_of_entities(make_gateway: GatewayFactory, mqtt: aiomqtt.Client) -> None:
    async with make_gateway(device_plane="enforced", entities_per_device=3) as gw:
        plane = await Plane.over(gw, "p1")
        await plane.device("multi", "p1", ("multi",), ("multi",))
        for n in range(3):
            await publish(mqtt, plane.config_topic("lock", "multi", f"l{n}"), lock_config(f"multi/{n}", "multi"))
        await eventually(lambda: len(gw.registry.entities_of_device("multi")) == 3, what="three entities")
        body = lock_config("multi/3", "multi")
        await plane.refused(mqtt, plane.config_topic("lock", "multi", "l3"), body, "device_entities_limit")
        # An entity it has may still change.
        await publish(mqtt, plane.config_topic("lock", "multi", "l0"), lock_config("multi/0", "multi", name="Front"))
        await eventually(
            lambda: (e := gw.registry.get("lock/multi/l0")) is not None and e.name == "Front", what="rename"
        )


async def test_a_flood_on_one_devices_state_topic_drops_none_of_another_devices_reports(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client
) -> None:
    """Rate-limit buckets are per device: a state topic belongs to one device, and a shared availability topic (a
    bridge's status) has a bucket of its own, so flooding either costs no other device its reports."""
    async with make_gateway(device_rate_per_second=0.001, device_burst=5) as gw:
        plane = Plane(gw, None, gw.settings.discovery_prefix)  # type: ignore[arg-type]  # open plane, no credentials
        bridge = "zigbee/bridge/state"
        await publish(
            mqtt, plane.config_topic("lock", "a", "lock"), lock_config("bldg/a", "a", availability_topic=bridge)
        )
        await publish(
            mqtt, plane.config_topic("lock", "b", "lock"), lock_config("bldg/b", "b", availability_topic=bridge)
        )
        await eventually(lambda: gw.registry.device_ids() == ["a", "b"], what="two locks")
        for _ in range(20):
            await publish(mqtt, "bldg/a/lock/state", b"LOCKED", retain=False)
            await publish(mqtt, bridge, b"online", retain=False)
        await eventually(lambda: gw.metrics.rejected["rate_limited"] >= 2 * 15, what="both floods throttled")
        for word in ("UNLOCKED", "LOCKED", "UNLOCKED"):
            await publish(mqtt, "bldg/b/lock/state", word.encode(), retain=False)
            await eventually(partial(_reported, gw, "lock/b/lock", word), what=f"B's {word} report accepted")
        lock_b = gw.registry.get("lock/b/lock")
        assert lock_b is not None and lock_b.state == LockState(status=LockStatus.UNLOCKED)
        assert gw.metrics.rejected["rate_limited"] == 2 * 15, "none of B's reports was dropped"


async def test_the_open_plane_takes_configs_as_they_come_and_warns_at_start(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway.app"):
        async with make_gateway() as gw:
            assert gw.acceptance is None
            await publish(mqtt, f"{gw.settings.discovery_prefix}/lock/anyone/lock/config", lock_config("x/y", "shared"))
            await publish(mqtt, f"{gw.settings.discovery_prefix}/lock/other/lock/config", lock_config("z", "shared"))
            await eventually(lambda: len(gw.registry.entities_of_device("shared")) == 2, what="both merged, as ever")
            assert gw.registry.published_for("shared", "any-property")
    warnings = [r for r in caplog.records if "device plane OPEN" in r.getMessage()]
    assert len(warnings) == 1


def _reported(gw: Gateway, entity_id: str, word: str) -> bool:
    entity = gw.registry.get(entity_id)
    return entity is not None and entity.state == LockState(status=LockStatus(word.lower()))
