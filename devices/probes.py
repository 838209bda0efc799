"""How to ask a device for a fresh state report without actuating it, by the firmware or bridge that speaks for it.

A request is only sent where the firmware documents one that reads state and changes nothing:

- Zigbee2MQTT: ``<state topic>/get`` naming the attributes to read, e.g. ``{"local_temperature":""}`` for a
  thermostat ("zigbee2mqtt/FRIENDLY_NAME/get" in its MQTT topics guide). Only for the lights, locks and thermostats
  of mains-powered devices: a battery device sleeps and answers a read late or never, and whether a sensor's
  attribute can be read at all is in Zigbee2MQTT's ``access`` bits, which discovery configs do not carry.
- Tasmota: ``cmnd/<topic>/TelePeriod`` with an empty payload, which changes no setting and publishes telemetry
  (``tele/<topic>/STATE`` and ``SENSOR``) at once (CmndTeleperiod: "show teleperiod data also on empty command").
  Only entities reporting on those two topics are asked; ``State`` would answer on ``stat/<topic>/RESULT`` instead.
- fwsim (our simulators): ``<state topic>/get`` as with Zigbee2MQTT, for every entity (they never sleep).

ESPHome's MQTT component has no state request; Shelly's status requests use its own RPC topics, not the discovery
config's; Z-Wave JS UI's API needs node and value ids and its battery nodes answer only when awake. Those devices,
and any firmware not recognised, are judged by their last report (``fresh_report``) and never failed for not
being asked. No request ever goes to a command topic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

from .base import Component, EntityConfig, Publish

__all__ = ["Firmware", "QueryMethod", "StateQuery", "firmware_of", "state_queries"]


class Firmware(StrEnum):
    """What speaks for a device over MQTT, as far as its discovery config tells."""

    FWSIM = "fwsim"
    ZIGBEE2MQTT = "zigbee2mqtt"
    TASMOTA = "tasmota"
    ESPHOME = "esphome"
    ZWAVE_JS_UI = "zwave_js_ui"
    SHELLY = "shelly"
    UNKNOWN = "unknown"


class QueryMethod(StrEnum):
    """How the self-test checks an entity."""

    ASKED = "asked"  # a state request is sent; a state report answers it
    FRESH_REPORT = "fresh_report"  # no safe request exists: its latest valid report must be recent enough


@dataclass(frozen=True, slots=True)
class StateQuery:
    """How to check one entity: the requests to send (``asked``), or, as a stable code, why it is not asked."""

    firmware: Firmware
    method: QueryMethod
    requests: tuple[Publish, ...] = ()
    reason: str | None = None


# Origin names (HA's ``origin`` block), lower-cased with punctuation and spaces dropped.
_ORIGINS = {
    "zigbee2mqtt": Firmware.ZIGBEE2MQTT,
    "tasmota": Firmware.TASMOTA,
    "esphome": Firmware.ESPHOME,
    "zwavejsui": Firmware.ZWAVE_JS_UI,
    "zwavejs2mqtt": Firmware.ZWAVE_JS_UI,
    "shelly": Firmware.SHELLY,
    "fwsim": Firmware.FWSIM,
}
# "Allterco" is what Shelly's own discovery scripts (ALLTERCO/shelly-script-examples) put in ``mf``.
_MANUFACTURERS = {
    "fwsim": Firmware.FWSIM,
    "tasmota": Firmware.TASMOTA,
    "shelly": Firmware.SHELLY,
    "allterco": Firmware.SHELLY,
}
# ESPHome's default unique id: "ESP" + component type + object id (esphome/components/mqtt/mqtt_component.cpp).
_ESPHOME_UNIQUE_ID = re.compile(r"^ESP(light|switch|lock|climate|sensor|binary_sensor|update)[a-z0-9_]+$")
_ZIGBEE_ASKABLE = frozenset({Component.LIGHT, Component.SWITCH, Component.LOCK, Component.CLIMATE})
_TELEMETRY = frozenset({"STATE", "SENSOR"})
_WHOLE_PAYLOAD = b'{"state":""}'  # fwsim's request for an entity that reads the raw payload


def firmware_of(config: EntityConfig) -> Firmware:
    """The firmware or bridge behind an entity: its ``origin``, else its maker, else its topic layout."""
    if config.origin is not None and (found := _ORIGINS.get(_squash(config.origin.name))) is not None:
        return found
    device = config.device
    if device is not None and device.manufacturer and (found := _MANUFACTURERS.get(_squash(device.manufacturer))):
        return found
    if device is not None and device.sw_version and "esphome" in device.sw_version.lower():
        return Firmware.ESPHOME
    if config.unique_id is not None and _ESPHOME_UNIQUE_ID.fullmatch(config.unique_id):
        return Firmware.ESPHOME  # ESPHome 2025's ``sw`` names only the config hash
    entries = config.availability_entries()
    # Z-Wave JS UI: its device identifiers (api/hass/DiscoveryGenerator.ts deviceInfo) and its client status topic.
    if (device is not None and any(i.startswith("zwavejs2mqtt_") for i in device.identifiers)) or any(
        "/_CLIENTS/ZWAVE_GATEWAY-" in e.topic for e in entries
    ):
        return Firmware.ZWAVE_JS_UI
    # Zigbee2MQTT before ``origin`` (1.3x): every entity is available through the bridge's own state topic.
    if any(e.topic.endswith("/bridge/state") for e in entries):
        return Firmware.ZIGBEE2MQTT
    # Tasmota's layout: its last will on tele/<topic>/LWT, its telemetry on tele/<topic>/STATE or SENSOR.
    if any(e.topic.rsplit("/", 1)[-1] == "LWT" for e in entries) and any(
        _telemetry_request(t) for t in config.state_topics()
    ):
        return Firmware.TASMOTA
    return Firmware.UNKNOWN


def state_queries(configs: Sequence[EntityConfig], forbidden: Collection[str] = ()) -> list[StateQuery]:
    """How to check each entity of one device. No request goes to a topic of the device's, nor to ``forbidden``
    (every command topic the caller knows of)."""
    taken = set(forbidden).union(*(c.command_topics() | c.state_topics() for c in configs))
    # Zigbee2MQTT announces a battery sensor for every battery-powered device: one that may sleep.
    battery = any(c.device_class == "battery" for c in configs)
    return [_query(c, battery, taken) for c in configs]


def _query(config: EntityConfig, battery: bool, taken: set[str]) -> StateQuery:
    firmware = firmware_of(config)
    if not config.state_topics():
        return StateQuery(firmware, QueryMethod.FRESH_REPORT, reason="reports_no_state")
    if firmware is Firmware.FWSIM:
        requests = _get_requests(config, whole_payload=True)
    elif firmware is Firmware.ZIGBEE2MQTT:
        if battery:
            return StateQuery(firmware, QueryMethod.FRESH_REPORT, reason="battery_powered")
        if config.component not in _ZIGBEE_ASKABLE:
            return StateQuery(firmware, QueryMethod.FRESH_REPORT, reason="not_readable")
        requests = _get_requests(config, whole_payload=False)
    elif firmware is Firmware.TASMOTA:
        topics = sorted({r for t in config.state_topics() if (r := _telemetry_request(t)) is not None})
        requests = [Publish(t, b"", qos=1) for t in topics]
    else:
        return StateQuery(firmware, QueryMethod.FRESH_REPORT, reason="no_known_request")
    safe = tuple(p for p in requests if p.topic not in taken)
    if safe:
        return StateQuery(firmware, QueryMethod.ASKED, safe)
    # A request landing on a command topic could actuate the device: judged by its reports instead.
    reason = "request_on_command_topic" if requests else "no_request_for_topic"
    return StateQuery(firmware, QueryMethod.FRESH_REPORT, reason=reason)


def _get_requests(config: EntityConfig, *, whole_payload: bool) -> list[Publish]:
    out = []
    for topic, keys in sorted(config.state_keys().items()):
        if keys is None and not whole_payload:
            continue  # Zigbee2MQTT reads named attributes; a raw payload names none
        body = (
            _WHOLE_PAYLOAD
            if keys is None
            else json.dumps(dict.fromkeys(sorted(keys), ""), separators=(",", ":")).encode()
        )
        out.append(Publish(f"{topic}/get", body, qos=1))
    return out


def _telemetry_request(state_topic: str) -> str | None:
    """``cmnd/<topic>/TelePeriod`` for ``tele/<topic>/STATE`` or ``SENSOR``, wherever FullTopic puts the prefix."""
    levels = state_topic.split("/")
    if levels[-1] not in _TELEMETRY or "tele" not in levels[:-1]:
        return None
    levels[levels.index("tele")] = "cmnd"
    levels[-1] = "TelePeriod"
    return "/".join(levels)


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())
