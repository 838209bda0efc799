"""Device simulators: each one MQTT client speaking HA MQTT discovery, every payload built by ``devices``."""

from .address import BrokerAddress
from .backoff import Backoff
from .battery import BATTERY, BatteryPowered
from .bridged import ZIGBEE2MQTT_ORIGIN, TasmotaSensorSim, Zigbee2MqttContactSim, Zigbee2MqttDevice, Zigbee2MqttTrvSim
from .device import MANUFACTURER, OFFLINE, ONLINE, DeviceIdentity, DeviceOptions, SimulatedDevice
from .faults import Fault, FaultInvalid, FaultKind, parse_fault
from .fleet import Fleet, unit_id
from .leak import LeakSensorSim
from .lights import DimmerSim, LightSim
from .link import DeviceLink, DeviceOffline
from .lock import LockSim
from .thermostat import ThermostatSim
from .unit import UNIT_DEVICES, Login, UnitSim

__all__ = [
    "BATTERY",
    "MANUFACTURER",
    "OFFLINE",
    "ONLINE",
    "UNIT_DEVICES",
    "ZIGBEE2MQTT_ORIGIN",
    "Backoff",
    "BatteryPowered",
    "BrokerAddress",
    "DeviceIdentity",
    "DeviceLink",
    "DeviceOffline",
    "DeviceOptions",
    "DimmerSim",
    "Fault",
    "FaultInvalid",
    "FaultKind",
    "Fleet",
    "LeakSensorSim",
    "LightSim",
    "LockSim",
    "Login",
    "SimulatedDevice",
    "TasmotaSensorSim",
    "ThermostatSim",
    "UnitSim",
    "Zigbee2MqttContactSim",
    "Zigbee2MqttDevice",
    "Zigbee2MqttTrvSim",
    "parse_fault",
    "unit_id",
]
