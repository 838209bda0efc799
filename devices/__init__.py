"""Device kinds: typed state and command models and their Home Assistant MQTT discovery wire format.

Nothing outside this package builds or parses device payloads.
"""

from .base import (
    AvailabilityEntry,
    Command,
    Component,
    DeviceInfo,
    DeviceKind,
    EntityConfig,
    EntityState,
    OriginInfo,
    Outcome,
    OutcomeStatus,
    Publish,
    StateKeys,
)
from .climate import ClimateCommand, ClimateConfig, ClimateState
from .discovery import CONFIG_MODELS, DiscoveryKey, discovery_topic, parse_config, parse_discovery_topic
from .errors import CommandInvalid, ConfigInvalid, DeviceCodecError, PayloadInvalid
from .light import LightCommand, LightConfig, LightState
from .light_default import DefaultLightConfig
from .limits import MAX_PAYLOAD_BYTES
from .lock import LockCommand, LockConfig, LockState, LockStatus
from .probes import Firmware, QueryMethod, StateQuery, firmware_of, state_queries
from .sensors import BinarySensorConfig, BinarySensorState, SensorConfig, SensorState
from .switch import SwitchCommand, SwitchConfig, SwitchState
from .templates import ValuePath, parse_template
from .update import UpdateCommand, UpdateConfig, UpdateState

__all__ = [
    "CONFIG_MODELS",
    "MAX_PAYLOAD_BYTES",
    "AvailabilityEntry",
    "BinarySensorConfig",
    "BinarySensorState",
    "ClimateCommand",
    "ClimateConfig",
    "ClimateState",
    "Command",
    "CommandInvalid",
    "Component",
    "ConfigInvalid",
    "DefaultLightConfig",
    "DeviceCodecError",
    "DeviceInfo",
    "DeviceKind",
    "DiscoveryKey",
    "EntityConfig",
    "EntityState",
    "Firmware",
    "LightCommand",
    "LightConfig",
    "LightState",
    "LockCommand",
    "LockConfig",
    "LockState",
    "LockStatus",
    "OriginInfo",
    "Outcome",
    "OutcomeStatus",
    "PayloadInvalid",
    "Publish",
    "QueryMethod",
    "SensorConfig",
    "SensorState",
    "StateKeys",
    "StateQuery",
    "SwitchCommand",
    "SwitchConfig",
    "SwitchState",
    "UpdateCommand",
    "UpdateConfig",
    "UpdateState",
    "ValuePath",
    "discovery_topic",
    "firmware_of",
    "parse_config",
    "parse_discovery_topic",
    "parse_template",
    "state_queries",
]
