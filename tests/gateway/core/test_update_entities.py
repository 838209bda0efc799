"""Update entities in the registry: on the device that announces them, their shared install topic not owned, and
never an install topic that is another device's command topic."""

from __future__ import annotations

import json
from typing import Any

from gateway.clock import ManualClock
from gateway.core.registry import Registry
from gateway.mqtt.transport import InboundMessage
from tests.devices.test_update import Z2M_CONFIG


def config_of(ieee: str, name: str, **changes: Any) -> bytes:
    body = {**Z2M_CONFIG, "state_topic": f"zigbee2mqtt/{name}", "payload_install": f'{{"id": "{ieee}"}}',
            "unique_id": f"{ieee}_update_zigbee2mqtt", "device": {"identifiers": [f"zigbee2mqtt_{ieee}"]}}  # fmt: skip
    return json.dumps({**body, **changes}).encode()


def send(registry: Registry, topic: str, payload: bytes) -> None:
    registry.handle(InboundMessage(topic, payload, True, 0))


def test_bridged_devices_share_the_install_topic_and_each_update_joins_its_device() -> None:
    registry = Registry("ha", ManualClock())
    lock = {"command_topic": "zigbee2mqtt/u101/lock/set/state", "state_topic": "zigbee2mqtt/u101/lock",
            "value_template": "{{ value_json.state }}", "device": {"identifiers": ["zigbee2mqtt_0x01"]}}  # fmt: skip
    send(registry, "ha/lock/0x01/lock/config", json.dumps(lock).encode())
    send(registry, "ha/update/0x01/update/config", config_of("0x01", "u101/lock"))
    send(registry, "ha/update/0x02/update/config", config_of("0x02", "u101/light"))
    assert registry.metrics.rejected == {}
    assert [e.id for e in registry.entities_of_device("zigbee2mqtt_0x01")] == [
        "lock/0x01/lock",
        "update/0x01/update",
    ]
    assert registry.get("update/0x02/update") is not None  # the same install topic, another device: accepted


def test_an_install_topic_on_another_devices_command_topic_is_refused() -> None:
    registry = Registry("ha", ManualClock())
    lock = {"command_topic": "home/door/set", "state_topic": "home/door/state", "device": {"identifiers": ["door"]}}
    send(registry, "ha/lock/door/lock/config", json.dumps(lock).encode())
    rogue = config_of("0x09", "rogue", command_topic="home/door/set", payload_install="UNLOCK")
    send(registry, "ha/update/0x09/update/config", rogue)
    assert registry.get("update/0x09/update") is None
    assert registry.metrics.rejected["topic_conflict"] == 1


def test_an_install_topic_taken_later_by_another_device_is_seen() -> None:
    registry = Registry("ha", ManualClock())
    rogue = config_of("0x09", "rogue", command_topic="home/door/set", payload_install="UNLOCK")
    send(registry, "ha/update/0x09/update/config", rogue)
    update = registry.get("update/0x09/update")
    assert update is not None and registry.foreign_command_topic(update) is None
    lock = {"command_topic": "home/door/set", "state_topic": "home/door/state", "device": {"identifiers": ["door"]}}
    send(registry, "ha/lock/door/lock/config", json.dumps(lock).encode())
    assert registry.foreign_command_topic(update) == "home/door/set"  # the rollout never installs through it
