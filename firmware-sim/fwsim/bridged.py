"""Devices as real bridges and firmware present them, to check the gateway against their conventions: behind
Zigbee2MQTT a mains thermostat and a battery contact sensor that sleeps, and a Tasmota temperature sensor."""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar, Unpack

from devices import (
    BinarySensorConfig,
    BinarySensorState,
    ClimateConfig,
    DeviceInfo,
    EntityState,
    OriginInfo,
    Publish,
    SensorConfig,
    SensorState,
)

from .address import BrokerAddress
from .battery import BATTERY, BatteryPowered
from .device import DeviceOptions, SimulatedDevice
from .thermostat import ThermostatSim

__all__ = ["ZIGBEE2MQTT_ORIGIN", "TasmotaSensorSim", "Zigbee2MqttContactSim", "Zigbee2MqttDevice", "Zigbee2MqttTrvSim"]

log = logging.getLogger(__name__)

ZIGBEE2MQTT_ORIGIN = OriginInfo(name="Zigbee2MQTT", sw_version="1.40.2", support_url="https://www.zigbee2mqtt.io")
"""The ``origin`` block Zigbee2MQTT puts in every discovery config."""


class Zigbee2MqttDevice(SimulatedDevice):
    """One Zigbee device behind a Zigbee2MQTT bridge of its own (``base_topic`` is the bridge's base topic).

    As Zigbee2MQTT does: the friendly name is ``<unit>/<name>``; the whole state is one JSON object on
    ``<base>/<unit>/<name>``; availability is the bridge's ``<base>/bridge/state``; commands go to ``…/set/<attr>``;
    ``…/get`` with a JSON object naming attributes publishes the state again, unless it names none the device has
    (Zigbee2MQTT only logs "No converter available") or the device sleeps.
    """

    manufacturer: ClassVar[str] = "Zigbee vendor"
    sleepy: ClassVar[bool] = False

    @property
    def state_topic(self) -> str:
        """``<base>/<unit>/<name>``, where the device's whole state is published."""
        return self.topic()

    @property
    def availability_topic(self) -> str:
        """The bridge's state topic (device availability is off by default in Zigbee2MQTT)."""
        return f"{self.base_topic}/bridge/state"

    @property
    def device_info(self) -> DeviceInfo:
        """The Zigbee device as the bridge describes it."""
        return DeviceInfo(
            identifiers=(self.client_id,), name=f"{self.unit}/{self.name}", manufacturer=self.manufacturer,
            model=self.model, sw_version="0x01",
        )  # fmt: skip

    def entity_fields(self, object_id: str, title: str) -> dict[str, Any]:
        """The common fields, with Zigbee2MQTT's ``origin``."""
        return {**super().entity_fields(object_id, title), "origin": ZIGBEE2MQTT_ORIGIN}

    def battery_config(self, object_id: str = BATTERY) -> SensorConfig:
        """The battery level, a key of the shared state object."""
        return SensorConfig(
            state_topic=self.state_topic, value_template=f"{{{{ value_json.{object_id} }}}}", device_class="battery",
            unit_of_measurement="%", **self.entity_fields(object_id, "Battery"),
        )  # fmt: skip

    def listen_for_reads(self) -> None:
        """Listen on ``…/get`` for every entity, whatever the gateway would ask (call once all are added)."""
        for object_id in self.configs:
            self.listen_for_request(f"{self.state_topic}/get", object_id)

    def state_publishes(self, object_ids: Any = None) -> list[Publish]:
        """The device's whole state as one retained JSON object, whatever changed (as Zigbee2MQTT publishes)."""
        doc: dict[str, Any] = {}
        for object_id, config in self.configs.items():
            for publish in config.encode_state(self.entity_state(object_id)):
                doc.update({k: _json_bool(v) for k, v in json.loads(publish.payload).items()})
        return [Publish(self.state_topic, json.dumps(doc, separators=(",", ":")).encode(), retain=True)]

    def answers(self, topic: str, payload: bytes) -> list[str]:
        """Every entity if awake and the request names an attribute of the device; else none."""
        if self.sleepy:
            log.info("%s: asleep; the read on %s goes unanswered", self.client_id, topic)
            return []
        try:
            asked = json.loads(payload)
        except ValueError:
            return []
        known = json.loads(self.state_publishes()[0].payload)
        if not isinstance(asked, dict) or not asked.keys() & known.keys():
            log.warning("%s: no converter available for 'get' %s", self.client_id, sorted(asked)[:5])
            return []
        return list(self.configs)


class Zigbee2MqttTrvSim(Zigbee2MqttDevice, ThermostatSim):
    """A mains-powered Zigbee thermostat: ``system_mode``, ``occupied_heating_setpoint``, ``local_temperature``."""

    model = "fwsim Zigbee thermostat"
    manufacturer = "Sim Thermo"

    def __init__(self, address: BrokerAddress, *, unit: str, name: str = "trv", **options: Any) -> None:
        super().__init__(address, unit=unit, name=name, **options)
        self.listen_for_reads()

    def climate_config(self) -> ClimateConfig:
        """Zigbee2MQTT's climate discovery: one state topic, attribute templates, ``set/<attribute>`` commands."""
        topic = self.state_topic
        return ClimateConfig(
            modes=("off", "heat", "auto"),
            mode_state_topic=topic, mode_state_template="{{ value_json.system_mode }}",
            mode_command_topic=self.topic("set", "system_mode"),
            temperature_state_topic=topic, temperature_state_template="{{ value_json.occupied_heating_setpoint }}",
            temperature_command_topic=self.topic("set", "occupied_heating_setpoint"),
            current_temperature_topic=topic, current_temperature_template="{{ value_json.local_temperature }}",
            min_temp=5.0, max_temp=30.0, temp_step=0.5, temperature_unit="C",
            **self.entity_fields("climate", "Thermostat"),
        )  # fmt: skip


class Zigbee2MqttContactSim(Zigbee2MqttDevice, BatteryPowered):
    """A battery door contact that sleeps between reports: it never answers a read."""

    model = "fwsim Zigbee door contact"
    manufacturer = "Sim Sensors"
    sleepy = True

    def __init__(
        self, address: BrokerAddress, *, unit: str, name: str = "door", **options: Unpack[DeviceOptions]
    ) -> None:
        super().__init__(address, unit=unit, name=name, **options)
        # Zigbee2MQTT's contact: ``contact: true`` when closed, so "on" (open) is false. It announces JSON booleans,
        # compared as their text (as Home Assistant does): "False" and "True".
        self.config = BinarySensorConfig(
            state_topic=self.state_topic, value_template="{{ value_json.contact }}", payload_on="False",
            payload_off="True", device_class="door", **self.entity_fields("contact", "Door"),
        )  # fmt: skip
        self.add_entity("contact", self.config)
        self.add_battery()
        self.listen_for_reads()
        self._open = False

    def entity_state(self, object_id: str) -> EntityState:
        """Open or closed, or the battery level."""
        return self.battery_state() if object_id == BATTERY else BinarySensorState(on=self._open)

    async def set_open(self, is_open: bool) -> None:
        """Open or close the door and report it (the device wakes to report)."""
        self._open = is_open
        await self.publish_state()


class TasmotaSensorSim(SimulatedDevice):
    """A Tasmota device with a DS18B20 probe, announced by Tasmota's legacy discovery (``SetOption19 1``), with
    FullTopic ``<base>/%prefix%/%topic%/``: telemetry on ``tele/<topic>/SENSOR``, last will ``Online``/``Offline``
    on ``tele/<topic>/LWT``. ``cmnd/<topic>/TelePeriod`` with an empty payload publishes telemetry at once."""

    model = "Sonoff TH (fwsim)"

    def __init__(
        self, address: BrokerAddress, *, unit: str, name: str = "probe", **options: Unpack[DeviceOptions]
    ) -> None:
        super().__init__(address, unit=unit, name=name, **options)
        self.temperature = 19.5
        self.config = SensorConfig(
            state_topic=self.full_topic("tele", "SENSOR"), value_template="{{ value_json['DS18B20'].Temperature }}",
            device_class="temperature", unit_of_measurement="°C", **self.entity_fields("temperature", "Temperature"),
        )  # fmt: skip
        self.add_entity("temperature", self.config)

    def full_topic(self, prefix: str, command: str) -> str:
        """``<base>/<prefix>/<unit>_<name>/<command>``, e.g. ``…/cmnd/u101_probe/TelePeriod``."""
        return f"{self.base_topic}/{prefix}/{self.unit}_{self.name}/{command}"

    @property
    def availability_topic(self) -> str:
        """``tele/<topic>/LWT``."""
        return self.full_topic("tele", "LWT")

    @property
    def device_info(self) -> DeviceInfo:
        """Tasmota's device block."""
        return DeviceInfo(
            identifiers=(self.client_id,), name=f"{self.unit} {self.name}", manufacturer="Tasmota", model=self.model,
            sw_version="14.1.0(tasmota)",
        )  # fmt: skip

    def entity_fields(self, object_id: str, title: str) -> dict[str, Any]:
        """The common fields, with Tasmota's ``Online``/``Offline`` words."""
        return {**super().entity_fields(object_id, title), "payload_available": "Online",
                "payload_not_available": "Offline"}  # fmt: skip

    def entity_state(self, object_id: str) -> EntityState:
        """The probe's reading."""
        return SensorState(value=self.temperature, unit="°C")

    def answers(self, topic: str, payload: bytes) -> list[str]:
        """Telemetry for an empty ``TelePeriod`` (a query); a value would set the period, which a check never does."""
        if payload.strip():
            log.warning("%s: TelePeriod %r would change the setting; not simulated", self.client_id, payload[:16])
            return []
        return super().answers(topic, payload)


def _json_bool(value: Any) -> Any:
    # The codec renders a binary sensor's word ("True"); Zigbee2MQTT sends the JSON boolean itself.
    return {"True": True, "False": False}.get(value, value) if isinstance(value, str) else value
