"""Each simulated device logs in with a login of its own, scoped to its own topics, on a broker that checks it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt
import pytest
from fwsim import BrokerAddress, UnitSim

from devices import parse_discovery_topic
from gateway.mqtt.acl import CredentialKind, Namespace
from tests.support.secure_brokers import PROPERTY, embedded_secured


def test_a_units_identities_are_known_before_it_starts_and_are_its_devices() -> None:
    sim = UnitSim(BrokerAddress("127.0.0.1"), unit="u102", base_topic="sims")
    identities = UnitSim.identities("u102", "sims")
    assert list(identities) == list(sim.devices)
    for name, device in sim.devices.items():
        who = identities[name]
        assert (who.client_id, who.node_id) == (device.client_id, device.node_id)
        # Every topic the device uses lies under its root, and each discovery topic carries its node id.
        topics = [device.availability_topic, device.fault_topic]
        topics += [t for cfg in device.configs.values() for t in (*cfg.command_topics(), *cfg.state_topics())]
        assert all(t.startswith(who.topic_root + "/") for t in topics), (name, topics)
        assert all(parse_discovery_topic("homeassistant", t).node_id == who.node_id for t in device.discovery_topics())


def test_logins_for_devices_a_unit_does_not_have_are_refused() -> None:
    with pytest.raises(ValueError, match="oven"):
        UnitSim(BrokerAddress("127.0.0.1"), logins={"oven": ("oven", "secret")})


async def test_each_device_logs_in_with_its_own_login_and_a_wrong_one_stays_out(tmp_path: Path) -> None:
    async with embedded_secured(tmp_path) as broker:
        logins = {}
        for name, who in UnitSim.identities("u101").items():
            root = (who.topic_root,)
            namespace = Namespace(node_ids=(who.node_id,), state_roots=root, command_roots=root)
            credential = await broker.credentials.create(
                who.client_id, CredentialKind.DEVICE, property_id=PROPERTY, namespace=namespace
            )
            logins[name] = (who.client_id, credential.password.get_secret_value())
        logins["leak"] = (logins["leak"][0], "not its password")
        username, password = broker.gateway
        async with (
            aiomqtt.Client(broker.host, broker.port, username=username, password=password, identifier="gw") as gw,
            UnitSim(BrokerAddress(broker.host, broker.port), command_delay=0.01, logins=logins) as sim,
        ):
            await gw.subscribe("fwsim/u101/lock/state", qos=1)
            async with asyncio.timeout(10):
                for name in ("light", "dimmer", "lock", "thermostat"):
                    await sim.devices[name].wait_online()
            assert not sim.leak.is_online and sim.leak.connections == 0
            await gw.publish(sim.lock.config.command_topic, b"UNLOCK", qos=1)  # the gateway commands the lock
            async with asyncio.timeout(5):
                async for message in gw.messages:
                    if message.payload == b"UNLOCKED":
                        break
