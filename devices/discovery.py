"""Home Assistant MQTT discovery: topics, abbreviations and parsing configs into typed models."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from .base import Component, EntityConfig, first_error, load_json_object
from .climate import ClimateConfig
from .errors import ConfigInvalid, DeviceCodecError
from .light import LightConfig
from .light_default import DefaultLightConfig
from .lock import LockConfig
from .sensors import BinarySensorConfig, SensorConfig
from .switch import SwitchConfig
from .update import UpdateConfig

__all__ = ["CONFIG_MODELS", "DiscoveryKey", "discovery_topic", "parse_config", "parse_discovery_topic"]

# A light's model depends on its ``schema`` (light_schemas); this maps every component to its default model.
CONFIG_MODELS: Mapping[Component, type[EntityConfig]] = {
    Component.LIGHT: LightConfig,
    Component.SWITCH: SwitchConfig,
    Component.LOCK: LockConfig,
    Component.CLIMATE: ClimateConfig,
    Component.BINARY_SENSOR: BinarySensorConfig,
    Component.SENSOR: SensorConfig,
    Component.UPDATE: UpdateConfig,
}

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Home Assistant's abbreviations (homeassistant/components/mqtt/abbreviations.py), the subset that
# names keys our models read. Tasmota and ESPHome send these short forms.
ABBREVIATIONS: Mapping[str, str] = {
    "avty": "availability",
    "avty_mode": "availability_mode",
    "avty_t": "availability_topic",
    "bri": "brightness",
    "bri_cmd_t": "brightness_command_topic",
    "bri_cmd_tpl": "brightness_command_template",
    "bri_scl": "brightness_scale",
    "bri_stat_t": "brightness_state_topic",
    "bri_val_tpl": "brightness_value_template",
    "clr_temp_cmd_t": "color_temp_command_topic",
    "clr_temp_cmd_tpl": "color_temp_command_template",
    "clr_temp_stat_t": "color_temp_state_topic",
    "clr_temp_val_tpl": "color_temp_value_template",
    "cmd_tpl": "command_template",
    "cmd_t": "command_topic",
    "curr_temp_t": "current_temperature_topic",
    "curr_temp_tpl": "current_temperature_template",
    "dev": "device",
    "dev_cla": "device_class",
    "ent_pic": "entity_picture",
    "exp_aft": "expire_after",
    "fan_mode_cmd_t": "fan_mode_command_topic",
    "fan_mode_cmd_tpl": "fan_mode_command_template",
    "fan_mode_stat_t": "fan_mode_state_topic",
    "fan_mode_stat_tpl": "fan_mode_state_template",
    "l_ver_t": "latest_version_topic",
    "l_ver_tpl": "latest_version_template",
    "max_kvn": "max_kelvin",
    "o": "origin",
    "on_cmd_type": "on_command_type",
    "max_mirs": "max_mireds",
    "min_kvn": "min_kelvin",
    "min_mirs": "min_mireds",
    "mode_cmd_t": "mode_command_topic",
    "mode_cmd_tpl": "mode_command_template",
    "mode_stat_t": "mode_state_topic",
    "mode_stat_tpl": "mode_state_template",
    "pl_avail": "payload_available",
    "pl_inst": "payload_install",
    "pl_lock": "payload_lock",
    "pl_not_avail": "payload_not_available",
    "pl_off": "payload_off",
    "pl_on": "payload_on",
    "pl_open": "payload_open",
    "pl_unlk": "payload_unlock",
    "rel_s": "release_summary",
    "rel_u": "release_url",
    "ret": "retain",
    "stat_jam": "state_jammed",
    "stat_locked": "state_locked",
    "stat_locking": "state_locking",
    "stat_off": "state_off",
    "stat_on": "state_on",
    "stat_t": "state_topic",
    "stat_val_tpl": "state_value_template",
    "stat_unlocked": "state_unlocked",
    "stat_unlocking": "state_unlocking",
    "sup_clrm": "supported_color_modes",
    "temp_cmd_t": "temperature_command_topic",
    "temp_cmd_tpl": "temperature_command_template",
    "temp_stat_t": "temperature_state_topic",
    "temp_stat_tpl": "temperature_state_template",
    "temp_unit": "temperature_unit",
    "uniq_id": "unique_id",
    "unit_of_meas": "unit_of_measurement",
    "val_tpl": "value_template",
}
DEVICE_ABBREVIATIONS: Mapping[str, str] = {
    "ids": "identifiers",
    "mf": "manufacturer",
    "mdl": "model",
    "sw": "sw_version",
    "hw": "hw_version",
}
ORIGIN_ABBREVIATIONS: Mapping[str, str] = {"sw": "sw_version", "url": "support_url"}
AVAILABILITY_ABBREVIATIONS: Mapping[str, str] = {
    "t": "topic",
    "pl_avail": "payload_available",
    "pl_inst": "payload_install",
    "pl_not_avail": "payload_not_available",
    "val_tpl": "value_template",
}


@dataclass(frozen=True, slots=True)
class DiscoveryKey:
    """Identity of one discovered entity: its place in the discovery topic tree."""

    component: Component
    node_id: str | None
    object_id: str
    # Derived once: it is the entity's id, looked up on every message and command.
    key: str = field(init=False, repr=False, compare=False)
    """Stable textual id, e.g. ``light/u101-light/light``."""

    def __post_init__(self) -> None:
        parts = (
            (self.component.value, self.node_id, self.object_id)
            if self.node_id
            else (self.component.value, self.object_id)
        )
        object.__setattr__(self, "key", "/".join(parts))


def discovery_topic(prefix: str, key: DiscoveryKey) -> str:
    """The config topic for ``key`` under ``prefix``."""
    return f"{prefix}/{key.key}/config"


def parse_discovery_topic(prefix: str, topic: str) -> DiscoveryKey:
    """Parse ``<prefix>/<component>/[<node_id>/]<object_id>/config``; raise ConfigInvalid otherwise."""
    if not topic.startswith(prefix + "/"):
        raise ConfigInvalid("not a discovery topic", code="topic_invalid")
    parts = topic[len(prefix) + 1 :].split("/")
    if len(parts) not in (3, 4) or parts[-1] != "config":
        raise ConfigInvalid(f"malformed discovery topic {topic[:120]!r}", code="topic_invalid")
    try:
        component = Component(parts[0])
    except ValueError as exc:
        raise ConfigInvalid(f"unknown component {parts[0][:32]!r}", code="unknown_component") from exc
    ids = parts[1:-1]
    if not all(_ID.fullmatch(i) for i in ids):
        raise ConfigInvalid("node_id/object_id must be [A-Za-z0-9_-]{1,64}", code="topic_invalid")
    node_id, object_id = (ids[0], ids[1]) if len(ids) == 2 else (None, ids[0])
    return DiscoveryKey(component, node_id, object_id)


def parse_config(component: Component, payload: bytes) -> EntityConfig:
    """Validate a discovery config payload into the component's typed model."""
    body = dict(load_json_object(payload))
    body = _expand(body, ABBREVIATIONS)
    base = body.pop("~", None)
    if base is not None and not isinstance(base, str):
        raise ConfigInvalid("'~' must be a string", code="config_invalid", field="~")
    if isinstance(body.get("device"), dict):
        body["device"] = _expand(body["device"], DEVICE_ABBREVIATIONS)
    if isinstance(body.get("origin"), dict):
        body["origin"] = _expand(body["origin"], ORIGIN_ABBREVIATIONS)
    if isinstance(body.get("availability"), list):
        body["availability"] = [
            _substitute(_expand(a, AVAILABILITY_ABBREVIATIONS), base) if isinstance(a, dict) else a
            for a in body["availability"]
        ]
    body = _substitute(body, base)
    try:
        return _model(component, body).model_validate(body)
    except ValidationError as exc:
        field, message = first_error(exc)
        raise ConfigInvalid(message, code="config_invalid", field=field) from exc
    except DeviceCodecError:
        raise
    except ValueError as exc:  # pragma: no cover - pydantic wraps validator errors
        raise ConfigInvalid(str(exc), code="config_invalid") from exc


_LIGHT_SCHEMAS: Mapping[object, type[EntityConfig]] = {
    None: DefaultLightConfig,
    "default": DefaultLightConfig,
    "basic": DefaultLightConfig,
    "json": LightConfig,
}


def _model(component: Component, body: Mapping[str, Any]) -> type[EntityConfig]:
    """The model for a config: a light's depends on its ``schema`` (absent means Home Assistant's default)."""
    if component is not Component.LIGHT:
        return CONFIG_MODELS[component]
    schema = body.get("schema")
    model = _LIGHT_SCHEMAS.get(schema) if isinstance(schema, str) or "schema" not in body else None
    if model is None:
        raise ConfigInvalid(
            f"light schema {str(schema)[:32]!r} is not supported (default, basic and json are)",
            code="unsupported_schema",
            field="schema",
        )
    return model


def _expand(body: Mapping[str, Any], table: Mapping[str, str]) -> dict[str, Any]:
    return {table.get(key, key): value for key, value in body.items()}


def _substitute(body: dict[str, Any], base: str | None) -> dict[str, Any]:
    """Replace a leading or trailing ``~`` in topic values with the base topic, as HA does."""
    if not base:
        return body
    out = dict(body)
    for key, value in body.items():
        if (key == "topic" or key.endswith("_topic")) and isinstance(value, str):
            if value.startswith("~"):
                out[key] = base + value[1:]
            elif value.endswith("~"):
                out[key] = value[:-1] + base
    return out
