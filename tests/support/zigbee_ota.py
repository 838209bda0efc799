"""A small Zigbee2MQTT emulator whose devices can be updated over the air, answering as Zigbee2MQTT 2.x does.

Per device it publishes the main entity's discovery config and the ``update`` entity's exactly as
``lib/extension/homeassistant.ts`` builds it (the JSON-object ``value_template``, the bridge's shared
``bridge/request/device/ota_update/update`` install topic, ``{"id": "<ieee>"}`` as the install payload), the whole
state as one retained JSON object on ``<base>/<friendly name>`` with its ``update`` object, and the bridge's
``bridge/state``. An install request is answered as ``lib/extension/otaUpdate.ts`` does: the state goes
``updating`` with ``progress`` (and ``remaining``), then ``idle`` with the new ``installed_version``; on failure it
goes back to ``available`` with the old one. ``<name>/get`` publishes the state again; ``<name>/set`` is obeyed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import aiomqtt

__all__ = ["OtaDevice", "Zigbee2MqttOta"]

Behaviour = Literal["ok", "fail", "hang"]


@dataclass
class OtaDevice:
    """One Zigbee device behind the emulated bridge."""

    name: str  # friendly name, e.g. "u101/lock"
    ieee: str
    component: Literal["lock", "light"]
    installed: int = 16777216
    latest: int | None = 16777472
    behaviour: Behaviour = "ok"
    answers_commands: bool = True
    on: bool = False
    locked: bool = True
    updating: bool = False
    progress: float | None = None

    @property
    def device_id(self) -> str:
        """The gateway's id of this device (its first identifier)."""
        return f"zigbee2mqtt_{self.ieee}"


@dataclass
class Zigbee2MqttOta:
    """``async with Zigbee2MqttOta(host, port, prefix, base, devices)``: the bridge and its devices online."""

    host: str
    port: int
    prefix: str
    base: str
    devices: list[OtaDevice]
    installs: list[str] = field(default_factory=list)  # friendly names, in the order installs were asked
    overlaps: list[set[str]] = field(default_factory=list)  # at each install, every device then updating
    _client: aiomqtt.Client | None = None
    _tasks: asyncio.TaskGroup | None = None
    _owned: list[asyncio.Task[None]] = field(default_factory=list)

    def state(self, device: OtaDevice) -> dict[str, Any]:
        """The device's whole state, as Zigbee2MQTT publishes it."""
        update: dict[str, Any] = {
            "state": "updating" if device.updating else ("available" if self._available(device) else "idle"),
            "installed_version": device.installed,
            "latest_version": device.latest,
        }
        if device.updating:
            update |= {"progress": device.progress, "remaining": 120}
        doc: dict[str, Any] = {"linkquality": 120, "update": update}
        if device.component == "lock":
            doc["state"] = "LOCK" if device.locked else "UNLOCK"
        else:
            doc["state"] = "ON" if device.on else "OFF"
        return doc

    @staticmethod
    def _available(device: OtaDevice) -> bool:
        return device.latest is not None and device.latest != device.installed

    def configs(self, device: OtaDevice) -> dict[str, dict[str, Any]]:
        """Discovery topic -> config, for the main entity and the update entity."""
        node = device.ieee
        common = {
            "availability": [{"topic": f"{self.base}/bridge/state", "value_template": "{{ value_json.state }}"}],
            "device": {"identifiers": [device.device_id], "name": device.name, "manufacturer": "IKEA",
                       "model": "E1743", "sw_version": str(device.installed)},
            "origin": {"name": "Zigbee2MQTT", "sw": "2.1.0", "url": "https://www.zigbee2mqtt.io"},
        }  # fmt: skip
        topic = f"{self.base}/{device.name}"
        if device.component == "lock":
            main: dict[str, Any] = {
                "name": None, "state_topic": topic, "value_template": "{{ value_json.state }}",
                "command_topic": f"{topic}/set/state", "state_locked": "LOCK", "state_unlocked": "UNLOCK",
                "unique_id": f"{node}_lock_zigbee2mqtt",
            }  # fmt: skip
        else:
            main = {
                "name": None, "schema": "json", "state_topic": topic, "command_topic": f"{topic}/set",
                "brightness": False, "unique_id": f"{node}_light_zigbee2mqtt",
            }  # fmt: skip
        update = {
            "name": None,
            "entity_picture": "https://github.com/Koenkk/zigbee2mqtt/raw/master/images/logo.png",
            "state_topic": topic,
            "device_class": "firmware",
            "entity_category": "config",
            "command_topic": f"{self.base}/bridge/request/device/ota_update/update",
            "payload_install": f'{{"id": "{device.ieee}"}}',
            "value_template": (
                '{"latest_version":"{{ value_json[\'update\'][\'latest_version\'] }}","installed_version":"{{ '
                "value_json['update']['installed_version'] }}\",\"update_percentage\":{{ value_json['update']"
                ".get('progress', 'null') }},\"in_progress\":{{ (value_json['update']['state'] == 'updating')|lower }}}"
            ),
            "unique_id": f"{node}_update_zigbee2mqtt",
        }
        return {
            f"{self.prefix}/{device.component}/{node}/{device.component}/config": {**main, **common},
            f"{self.prefix}/update/{node}/update/config": {**update, **common},
        }

    async def publish_state(self, device: OtaDevice) -> None:
        """Publish the device's whole state (retained)."""
        assert self._client is not None
        await self._client.publish(f"{self.base}/{device.name}", json.dumps(self.state(device)), qos=1, retain=True)

    async def clear(self) -> None:
        """Remove every retained message this bridge left (configs, states, bridge state)."""
        assert self._client is not None
        for device in self.devices:
            for topic in self.configs(device):
                await self._client.publish(topic, b"", qos=1, retain=True)
            await self._client.publish(f"{self.base}/{device.name}", b"", qos=1, retain=True)
        await self._client.publish(f"{self.base}/bridge/state", b"", qos=1, retain=True)

    async def __aenter__(self) -> Zigbee2MqttOta:
        self._stack = contextlib.AsyncExitStack()
        client = aiomqtt.Client(
            self.host, self.port, identifier=f"z2m-{uuid.uuid4().hex[:8]}",
            will=aiomqtt.Will(f"{self.base}/bridge/state", b'{"state":"offline"}', qos=1, retain=True),
        )  # fmt: skip
        self._client = await self._stack.enter_async_context(client)
        await client.subscribe(f"{self.base}/#", qos=1)
        self._tasks = await self._stack.enter_async_context(asyncio.TaskGroup())
        self._owned.append(self._tasks.create_task(self._serve(), name="z2m-ota-serve"))
        await client.publish(f"{self.base}/bridge/state", b'{"state":"online"}', qos=1, retain=True)
        for device in self.devices:
            for topic, config in self.configs(device).items():
                await client.publish(topic, json.dumps(config), qos=1, retain=True)
            await self.publish_state(device)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._tasks is not None
        with contextlib.suppress(aiomqtt.MqttError):
            await self.clear()
        for task in self._owned:
            task.cancel()
        await self._stack.aclose()

    async def _serve(self) -> None:
        assert self._client is not None and self._tasks is not None
        async for message in self._client.messages:
            topic, payload = str(message.topic), bytes(message.payload)
            if topic == f"{self.base}/bridge/request/device/ota_update/update":
                self._install(payload)
                continue
            for device in self.devices:
                own = f"{self.base}/{device.name}"
                if topic == f"{own}/get":
                    await self.publish_state(device)
                elif topic.startswith(f"{own}/set") and device.answers_commands:
                    self._obey(device, topic, payload)
                    await self.publish_state(device)

    def _obey(self, device: OtaDevice, topic: str, payload: bytes) -> None:
        if device.component == "lock":
            device.locked = payload == b"LOCK"
        else:
            with contextlib.suppress(ValueError):
                device.on = json.loads(payload).get("state") == "ON"

    def _install(self, payload: bytes) -> None:
        assert self._tasks is not None
        ieee = json.loads(payload).get("id")
        device = next((d for d in self.devices if d.ieee == ieee), None)
        if device is None or device.updating:
            return
        self.installs.append(device.name)
        device.updating, device.progress = True, 0.0
        self.overlaps.append({d.name for d in self.devices if d.updating})
        self._owned.append(self._tasks.create_task(self._update(device), name=f"z2m-ota-{device.name}"))

    async def _update(self, device: OtaDevice) -> None:
        for progress in (0.0, 37.5, 81.25):
            device.progress = progress
            await self.publish_state(device)
            await asyncio.sleep(0.02)
        if device.behaviour == "hang":
            return  # stuck at 81.25 %, as a device that dropped off the mesh mid-transfer
        device.updating, device.progress = False, None
        if device.behaviour == "ok" and device.latest is not None:
            device.installed = device.latest
        await self.publish_state(device)
