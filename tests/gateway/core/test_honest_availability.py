"""Availability as devices say it, never remembered past what the gateway may have missed: after the broker link
drops nothing is available or fresh until the device (or its bridge) speaks again, and a retained availability
topic shared by many devices applies to each, whenever it is discovered."""

from __future__ import annotations

import json
from datetime import timedelta

import aiomqtt

from tests.support.gateway import GatewayFactory
from tests.support.polling import eventually

SILENCE = timedelta(hours=1)


def _plug(base: str, availability: list[dict[str, str]], mode: str = "latest") -> bytes:
    """A Zigbee2MQTT plug's switch config (lib/extension/homeassistant.ts), its availability as given."""
    return json.dumps(
        {
            "availability": availability,
            "availability_mode": mode,
            "command_topic": f"{base}/set",
            "state_topic": base,
            "payload_on": "ON",
            "payload_off": "OFF",
            "value_template": "{{ value_json.state }}",
            "device": {"identifiers": [f"zigbee2mqtt_{base.rsplit('/', 1)[-1]}"]},
            "origin": {"name": "Zigbee2MQTT", "sw": "2.1.1"},
        }
    ).encode()


BRIDGE = [{"topic": "z2m/bridge/state", "value_template": "{{ value_json.state }}"}]


async def test_a_lost_broker_link_makes_every_device_unknown_until_it_speaks_again(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client, prefix: str
) -> None:
    async with make_gateway() as gw:
        # A device whose availability is not retained (its "online" was said once, while the gateway listened).
        await mqtt.publish(f"{prefix}/switch/0x01/switch/config", _plug("z2m/0x01", BRIDGE), qos=1, retain=True)
        await eventually(lambda: gw.registry.get("switch/0x01/switch") is not None, what="discovery")
        await mqtt.publish("z2m/bridge/state", b'{"state":"online"}', qos=1)
        await mqtt.publish("z2m/0x01", b'{"state":"ON"}', qos=1)
        entity = gw.registry.get("switch/0x01/switch")
        assert entity is not None
        await eventually(lambda: entity.available is True and entity.state is not None, what="online with a state")
        assert entity.stale_reason(gw.clock.now(), SILENCE) is None

        connections = gw.link.connections
        assert gw.link.reconnect("test: the broker link drops")
        await eventually(lambda: gw.link.connections > connections and gw.link.connected, what="reconnected")

        # Nothing was heard since: unknown, and its remembered state is not fresh.
        assert entity.available is None
        assert entity.stale_reason(gw.clock.now(), SILENCE) == "not_heard_since_start"
        assert gw.registry.get("switch/0x01/switch") is entity and entity.state is not None

        await mqtt.publish("z2m/bridge/state", b'{"state":"online"}', qos=1)
        await eventually(lambda: entity.available is True, what="the bridge says online again")
        await mqtt.publish("z2m/0x01", b'{"state":"ON"}', qos=1)
        await eventually(lambda: entity.stale_reason(gw.clock.now(), SILENCE) is None, what="heard again")


async def test_a_retained_shared_availability_applies_to_devices_discovered_after_it(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client, prefix: str
) -> None:
    async with make_gateway() as gw:
        await mqtt.publish("z2m/bridge/state", b'{"state":"online"}', qos=1, retain=True)
        await mqtt.publish(f"{prefix}/switch/0x01/switch/config", _plug("z2m/0x01", BRIDGE), qos=1, retain=True)
        await eventually(
            lambda: (e := gw.registry.get("switch/0x01/switch")) is not None and e.available is True,
            what="the first device, online by the bridge's retained state",
        )
        # Discovered later: the broker does not send the retained bridge state again on the same subscription.
        own = [*BRIDGE, {"topic": "z2m/0x02/availability", "value_template": "{{ value_json.state }}"}]
        await mqtt.publish("z2m/0x02/availability", b'{"state":"online"}', qos=1, retain=True)
        await mqtt.publish(f"{prefix}/switch/0x02/switch/config", _plug("z2m/0x02", own, "all"), qos=1, retain=True)
        await mqtt.publish(f"{prefix}/switch/0x03/switch/config", _plug("z2m/0x03", BRIDGE), qos=1, retain=True)
        await eventually(
            lambda: all(
                (e := gw.registry.get(f"switch/0x0{n}/switch")) is not None and e.available is True for n in (2, 3)
            ),
            what="devices discovered after the bridge's retained state, online",
        )
        # The bridge going offline takes every one of them offline, and its return brings each back.
        await mqtt.publish("z2m/bridge/state", b'{"state":"offline"}', qos=1, retain=True)
        await eventually(
            lambda: all(
                (e := gw.registry.get(f"switch/0x0{n}/switch")) is not None and e.available is False for n in (1, 2, 3)
            ),
            what="all offline with the bridge",
        )
        await mqtt.publish(f"{prefix}/switch/0x04/switch/config", _plug("z2m/0x04", BRIDGE), qos=1, retain=True)
        await eventually(
            lambda: (e := gw.registry.get("switch/0x04/switch")) is not None and e.available is False,
            what="a device discovered while its bridge is offline is offline",
        )
