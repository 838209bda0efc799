"""Example-based tests for the device codecs: discovery configs, state, commands and outcomes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from devices import (
    MAX_PAYLOAD_BYTES,
    BinarySensorConfig,
    BinarySensorState,
    ClimateCommand,
    ClimateConfig,
    ClimateState,
    CommandInvalid,
    Component,
    ConfigInvalid,
    DefaultLightConfig,
    DeviceCodecError,
    DeviceKind,
    DiscoveryKey,
    EntityConfig,
    LightCommand,
    LightConfig,
    LightState,
    LockCommand,
    LockConfig,
    LockState,
    LockStatus,
    OutcomeStatus,
    PayloadInvalid,
    Publish,
    SensorConfig,
    SensorState,
    ValuePath,
    discovery_topic,
    parse_config,
    parse_discovery_topic,
    parse_template,
)

PREFIX = "homeassistant"


def _cfg(component: Component, body: dict[str, Any]) -> EntityConfig:
    return parse_config(component, json.dumps(body).encode())


def _light(**extra: Any) -> LightConfig:
    body: dict[str, Any] = {"schema": "json", "command_topic": "home/l1/set", "state_topic": "home/l1", **extra}
    cfg = _cfg(Component.LIGHT, body)
    assert isinstance(cfg, LightConfig)
    return cfg


def _lock(**extra: Any) -> LockConfig:
    body: dict[str, Any] = {"command_topic": "home/door/set", "state_topic": "home/door", **extra}
    cfg = _cfg(Component.LOCK, body)
    assert isinstance(cfg, LockConfig)
    return cfg


def _climate(**extra: Any) -> ClimateConfig:
    body: dict[str, Any] = {
        "mode_command_topic": "home/t/mode/set",
        "mode_state_topic": "home/t/mode",
        "temperature_command_topic": "home/t/target/set",
        "temperature_state_topic": "home/t/target",
        "current_temperature_topic": "home/t/current",
        "fan_mode_command_topic": "home/t/fan/set",
        "fan_mode_state_topic": "home/t/fan",
        **extra,
    }
    cfg = _cfg(Component.CLIMATE, body)
    assert isinstance(cfg, ClimateConfig)
    return cfg


def _sensor(**extra: Any) -> SensorConfig:
    cfg = _cfg(Component.SENSOR, {"state_topic": "home/s", **extra})
    assert isinstance(cfg, SensorConfig)
    return cfg


def _binary(**extra: Any) -> BinarySensorConfig:
    cfg = _cfg(Component.BINARY_SENSOR, {"state_topic": "home/b", **extra})
    assert isinstance(cfg, BinarySensorConfig)
    return cfg


def _codec_error(exc_type: type[DeviceCodecError], code: str, fn: Any, *args: Any, **kwargs: Any) -> DeviceCodecError:
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    assert info.value.code == code, str(info.value)
    return info.value


# --- discovery topics ----------------------------------------------------------------------------


def test_discovery_topic_with_node_id() -> None:
    key = parse_discovery_topic(PREFIX, "homeassistant/light/0x00158d0001a2b3c4/light/config")
    assert key == DiscoveryKey(Component.LIGHT, "0x00158d0001a2b3c4", "light")
    assert key.key == "light/0x00158d0001a2b3c4/light"
    assert discovery_topic(PREFIX, key) == "homeassistant/light/0x00158d0001a2b3c4/light/config"


def test_discovery_topic_without_node_id() -> None:
    key = parse_discovery_topic(PREFIX, "homeassistant/binary_sensor/u101-leak/config")
    assert key == DiscoveryKey(Component.BINARY_SENSOR, None, "u101-leak")
    assert key.key == "binary_sensor/u101-leak"
    assert parse_discovery_topic(PREFIX, discovery_topic(PREFIX, key)) == key


def test_discovery_topic_custom_prefix() -> None:
    key = parse_discovery_topic("bldg/7/ha", "bldg/7/ha/lock/u101/door/config")
    assert key == DiscoveryKey(Component.LOCK, "u101", "door")


def test_unknown_component_in_topic() -> None:
    err = _codec_error(
        ConfigInvalid, "unknown_component", parse_discovery_topic, PREFIX, "homeassistant/fan/u1/f/config"
    )
    assert "fan" in str(err)
    # `update` is part of HA discovery but not a component the gateway drives
    _codec_error(ConfigInvalid, "unknown_component", parse_discovery_topic, PREFIX, "homeassistant/camera/u1/fw/config")


@pytest.mark.parametrize(
    "topic",
    [
        "homeassistant/light/u1/l/state",  # not .../config
        "homeassistant/light/config",  # no object id
        "homeassistant/light/a/b/c/config",  # too deep
        "homeassistant/light/u1//config",  # empty id
        "homeassistant/light/u+1/l/config",  # wildcard in id
        "homeassistant/light/u1/#/config",
        "homeassistant/light/u 1/l/config",  # space
        "homeassistant/light/u1/l\n/config",  # trailing newline must not sneak past the id check
        "homeassistant/light/u1/" + "x" * 65 + "/config",  # id too long
        "homeassistant/light/u1/l/config/",
        "other/light/u1/l/config",  # wrong prefix
        "homeassistantx/light/u1/l/config",
        "homeassistant",
        "",
    ],
)
def test_malformed_discovery_topics(topic: str) -> None:
    _codec_error(ConfigInvalid, "topic_invalid", parse_discovery_topic, PREFIX, topic)


# --- config parsing ------------------------------------------------------------------------------


def test_zigbee2mqtt_light_config() -> None:
    payload = {
        "availability": [{"topic": "zigbee2mqtt/bridge/state", "value_template": "{{ value_json.state }}"}],
        "brightness": True,
        "brightness_scale": 254,
        "command_topic": "zigbee2mqtt/hall bulb/set",
        "device": {
            "identifiers": ["zigbee2mqtt_0x00158d0001a2b3c4"],
            "manufacturer": "IKEA",
            "model": "TRADFRI bulb E27 WS opal 980lm (LED1545G12)",
            "name": "hall bulb",
            "sw_version": "2.3.093",
            "via_device": "zigbee2mqtt_bridge_0x00124b0022813501",
        },
        "max_mireds": 454,
        "min_mireds": 250,
        "name": None,
        "object_id": "hall_bulb",
        "origin": {"name": "Zigbee2MQTT", "sw": "1.39.0", "url": "https://www.zigbee2mqtt.io"},
        "schema": "json",
        "state_topic": "zigbee2mqtt/hall bulb",
        "supported_color_modes": ["color_temp"],
        "unique_id": "0x00158d0001a2b3c4_light_zigbee2mqtt",
    }
    cfg = _cfg(Component.LIGHT, payload)
    assert isinstance(cfg, LightConfig)
    assert cfg.kind is DeviceKind.LIGHT
    assert cfg.brightness_scale == 254
    assert cfg.dimmable
    assert cfg.has_color_temp
    assert cfg.kelvin_range == (2203, 4000)
    assert cfg.device is not None
    assert cfg.device.identifiers == ("zigbee2mqtt_0x00158d0001a2b3c4",)
    assert cfg.device.manufacturer == "IKEA"
    assert cfg.state_topics() == {"zigbee2mqtt/hall bulb"}
    assert cfg.command_topics() == {"zigbee2mqtt/hall bulb/set"}
    assert cfg.owned_topics() == {"zigbee2mqtt/hall bulb", "zigbee2mqtt/hall bulb/set"}
    assert cfg.topics() == {"zigbee2mqtt/hall bulb", "zigbee2mqtt/hall bulb/set", "zigbee2mqtt/bridge/state"}
    (entry,) = cfg.availability_entries()
    assert entry.topic == "zigbee2mqtt/bridge/state"
    assert entry.decode(b'{"state":"online"}') is True
    assert entry.decode(b'{"state":"offline"}') is False
    assert entry.decode(b"online") is None  # not JSON: neither
    assert entry.decode(b'{"other":"online"}') is None


def test_light_with_kelvin_config_and_plain_on_off() -> None:
    cfg = _light(supported_color_modes=["color_temp"], color_temp_kelvin=True, min_kelvin=2700, max_kelvin=6500)
    assert cfg.kelvin_range == (2700, 6500)
    onoff = _light(supported_color_modes=["onoff"])
    assert not onoff.dimmable
    assert not onoff.has_color_temp
    plain = _light()
    assert not plain.dimmable
    assert _light(supported_color_modes=["brightness"]).dimmable
    assert _light(brightness=True).dimmable


def test_light_default_mireds_range() -> None:
    # only one of min/max mireds: HA's defaults (153..500 mireds) fill in the other
    assert _light(supported_color_modes=["color_temp"], max_mireds=370).kelvin_range == (2703, 6535)
    assert _light(supported_color_modes=["color_temp"], min_mireds=200).kelvin_range == (2000, 5000)
    assert _light(supported_color_modes=["color_temp"]).kelvin_range == (2000, 6535)


@pytest.mark.parametrize("schema", ["template", "JSON", None, 1])
def test_light_schema_not_supported_refused(schema: object) -> None:
    # the template schema renders Jinja for every payload: the gateway renders none
    body: dict[str, Any] = {"command_topic": "l/set", "schema": schema}
    err = _codec_error(ConfigInvalid, "unsupported_schema", _cfg, Component.LIGHT, body)
    assert err.field == "schema"


@pytest.mark.parametrize("schema", ["default", "basic"])
def test_light_default_schema_by_name(schema: str) -> None:
    cfg = _cfg(Component.LIGHT, {"command_topic": "l/set", "state_topic": "l/state", "schema": schema})
    assert isinstance(cfg, DefaultLightConfig)
    assert cfg.encode_command(LightCommand(on=True)) == [Publish("l/set", b"ON", qos=1)]


def test_light_schema_missing_is_home_assistants_default() -> None:
    cfg = _cfg(Component.LIGHT, {"command_topic": "l/set"})
    assert isinstance(cfg, DefaultLightConfig) and cfg.schema_ == "default"


def test_tasmota_abbreviations_and_base_topic() -> None:
    payload = {
        "~": "tasmota_8E0C3A/",
        "name": "Front door contact",
        "stat_t": "~stat/SWITCH1",
        "avty_t": "tele/~LWT",  # HA only substitutes ~ at either end; this stays literal
        "pl_avail": "Online",
        "pl_not_avail": "Offline",
        "pl_on": "OPEN",
        "pl_off": "CLOSED",
        "uniq_id": "8E0C3A_switch_1",
        "dev_cla": "door",
        "dev": {"ids": ["8E0C3A"], "mf": "Tasmota", "mdl": "Sonoff Basic", "sw": "13.2.0"},
        "val_tpl": "{{value_json['SWITCH1'].Action}}",
        "frc_upd": True,
    }
    cfg = _cfg(Component.BINARY_SENSOR, payload)
    assert isinstance(cfg, BinarySensorConfig)
    assert cfg.state_topic == "tasmota_8E0C3A/stat/SWITCH1"
    assert cfg.availability_topic == "tele/~LWT"
    assert cfg.payload_available == "Online"
    assert cfg.unique_id == "8E0C3A_switch_1"
    assert cfg.kind is DeviceKind.CONTACT_SENSOR
    assert cfg.device is not None
    assert (cfg.device.identifiers, cfg.device.manufacturer, cfg.device.model, cfg.device.sw_version) == (
        ("8E0C3A",),
        "Tasmota",
        "Sonoff Basic",
        "13.2.0",
    )
    assert cfg.value_path == ValuePath(("SWITCH1", "Action"), json_=True)
    assert cfg.decode_state(cfg.state_topic, b'{"SWITCH1":{"Action":"OPEN"}}', None) == BinarySensorState(on=True)
    assert cfg.decode_state(cfg.state_topic, b'{"SWITCH1":{"Action":"CLOSED"}}', None) == BinarySensorState(on=False)
    (entry,) = cfg.availability_entries()
    assert entry.decode(b"Online") is True
    assert entry.decode(b"Offline") is False
    assert entry.decode(b"online") is None


def test_base_topic_at_end_and_in_availability_list() -> None:
    payload = {
        "~": "home/u101/lock",
        "cmd_t": "~/set",
        "stat_t": "state/~",
        "avty": [{"t": "~/avail", "pl_avail": "up", "pl_not_avail": "down"}, {"topic": "gw/status"}],
        "avty_mode": "all",
        "pl_lock": "L",
        "pl_unlk": "U",
        "stat_locked": "is_locked",
        "stat_unlocked": "is_unlocked",
        "stat_jam": "stuck",
    }
    cfg = _cfg(Component.LOCK, payload)
    assert isinstance(cfg, LockConfig)
    assert cfg.command_topic == "home/u101/lock/set"
    assert cfg.state_topic == "state/home/u101/lock"
    assert cfg.availability_mode == "all"
    first, second = cfg.availability_entries()
    assert (first.topic, first.payload_available, first.payload_not_available) == ("home/u101/lock/avail", "up", "down")
    assert (second.topic, second.payload_available) == ("gw/status", "online")
    assert cfg.encode_command(LockCommand(action="unlock")) == [Publish("home/u101/lock/set", b"U", qos=1)]
    assert cfg.decode_state("state/home/u101/lock", b"stuck", None) == LockState(status=LockStatus.JAMMED)


def test_availability_topic_and_list_are_combined() -> None:
    cfg = _lock(
        availability_topic="home/door/lwt",
        payload_available="Online",
        payload_not_available="Offline",
        availability=[{"topic": "bridge/state", "value_template": "{{ value_json['state'] }}"}],
    )
    entries = cfg.availability_entries()
    assert [e.topic for e in entries] == ["home/door/lwt", "bridge/state"]
    assert entries[0].decode(b"Online") is True
    assert entries[0].decode(b"online") is None
    assert entries[1].decode(b'{"state":"offline"}') is False
    assert {"home/door/lwt", "bridge/state"} <= cfg.topics()
    assert not {"home/door/lwt", "bridge/state"} & cfg.owned_topics()  # a bridge's status may be shared


def test_no_availability_at_all() -> None:
    assert _lock().availability_entries() == ()


def test_zigbee2mqtt_climate_shared_json_state_topic() -> None:
    payload = {
        "availability": [{"topic": "zigbee2mqtt/bridge/state", "value_template": "{{ value_json.state }}"}],
        "current_temperature_template": "{{ value_json.local_temperature }}",
        "current_temperature_topic": "zigbee2mqtt/u101 thermostat",
        "device": {"identifiers": ["zigbee2mqtt_0x0c4314fffe1f2a3b"], "manufacturer": "Danfoss", "model": "014G2461"},
        "max_temp": "35",  # Zigbee2MQTT sends the limits as strings
        "min_temp": "5",
        "mode_command_topic": "zigbee2mqtt/u101 thermostat/set/system_mode",
        "mode_state_template": "{{ value_json.system_mode }}",
        "mode_state_topic": "zigbee2mqtt/u101 thermostat",
        "modes": ["off", "heat"],
        "temp_step": 0.5,
        "temperature_command_topic": "zigbee2mqtt/u101 thermostat/set/occupied_heating_setpoint",
        "temperature_state_template": "{{ value_json.occupied_heating_setpoint }}",
        "temperature_state_topic": "zigbee2mqtt/u101 thermostat",
        "temperature_unit": "C",
        "unique_id": "0x0c4314fffe1f2a3b_climate_zigbee2mqtt",
    }
    cfg = _cfg(Component.CLIMATE, payload)
    assert isinstance(cfg, ClimateConfig)
    assert cfg.kind is DeviceKind.THERMOSTAT
    assert (cfg.min_temperature, cfg.max_temperature, cfg.temp_step) == (5.0, 35.0, 0.5)
    assert cfg.modes == ("off", "heat")
    assert cfg.state_topics() == {"zigbee2mqtt/u101 thermostat"}
    topic = "zigbee2mqtt/u101 thermostat"

    full = b'{"local_temperature":20.5,"occupied_heating_setpoint":21,"system_mode":"heat","battery":87}'
    state = cfg.decode_state(topic, full, None)
    assert state == ClimateState(mode="heat", target_temperature=21.0, current_temperature=20.5, unit="C")

    # a partial report on the shared topic updates only what it carries
    state = cfg.decode_state(topic, b'{"local_temperature":19.75}', state)
    assert state == ClimateState(mode="heat", target_temperature=21.0, current_temperature=19.75, unit="C")
    state = cfg.decode_state(topic, b'{"system_mode":"off","linkquality":120}', state)
    assert state == ClimateState(mode="off", target_temperature=21.0, current_temperature=19.75, unit="C")

    # a report carrying none of the fields is refused, and so is one that is not JSON
    _codec_error(PayloadInvalid, "payload_missing_field", cfg.decode_state, topic, b'{"battery":80}', state)
    _codec_error(PayloadInvalid, "payload_not_json", cfg.decode_state, topic, b"heat", state)
    _codec_error(PayloadInvalid, "payload_missing_field", cfg.decode_state, "other/topic", full, state)

    # commands go out as plain values, one per attribute topic
    published = cfg.encode_command(ClimateCommand(mode="heat", target_temperature=22.5))
    assert published == [
        Publish("zigbee2mqtt/u101 thermostat/set/system_mode", b"heat", qos=1),
        Publish("zigbee2mqtt/u101 thermostat/set/occupied_heating_setpoint", b"22.5", qos=1),
    ]


def test_climate_plain_topics_and_fahrenheit_defaults() -> None:
    cfg = _climate(temperature_unit="F")
    assert (cfg.min_temperature, cfg.max_temperature) == (44.0, 95.0)
    state = cfg.decode_state("home/t/current", b"68.4", None)
    assert state == ClimateState(current_temperature=68.4, unit="F")
    state = cfg.decode_state("home/t/fan", b"low", state)
    assert state.fan_mode == "low"
    assert state.current_temperature == 68.4
    celsius = _climate()
    assert (celsius.min_temperature, celsius.max_temperature) == (7.0, 35.0)


def test_climate_min_not_below_max_refused() -> None:
    _codec_error(ConfigInvalid, "config_invalid", _climate, min_temp=25, max_temp=20)
    _codec_error(ConfigInvalid, "config_invalid", _climate, min_temp=40)  # above the default max


def test_climate_command_templates_refused() -> None:
    _codec_error(ConfigInvalid, "unsupported_template", _climate, temperature_command_template="{{ value | round(1) }}")


def test_sensor_configs_and_kinds() -> None:
    battery = _sensor(device_class="battery", unit_of_measurement="%", value_template="{{ value_json.battery }}")
    assert battery.kind is DeviceKind.BATTERY_SENSOR
    assert battery.command_topics() == frozenset()
    assert _sensor(dev_cla="temperature").kind is DeviceKind.TEMPERATURE_SENSOR
    assert _sensor(dev_cla="humidity").kind is DeviceKind.SENSOR
    assert _sensor().kind is DeviceKind.SENSOR
    assert _binary(device_class="moisture").kind is DeviceKind.LEAK_SENSOR
    assert _binary(device_class="window").kind is DeviceKind.CONTACT_SENSOR
    assert _binary(device_class="smoke").kind is DeviceKind.BINARY_SENSOR


def test_unknown_keys_ignored() -> None:
    cfg = _lock(json_attributes_topic="home/door/attrs", optimistic=False, icon="mdi:lock", enabled_by_default=True)
    assert cfg.command_topic == "home/door/set"


# --- config refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"", b"{", b"not json", b"{'a': 1}", b"[" * 60_000])
def test_config_not_json(payload: bytes) -> None:
    _codec_error(PayloadInvalid, "payload_not_json", parse_config, Component.LIGHT, payload)


@pytest.mark.parametrize("payload", [b"\xff\xfe\x00", '{"schema": "json"}'.encode("utf-16")])
def test_config_not_utf8(payload: bytes) -> None:
    _codec_error(PayloadInvalid, "payload_not_utf8", parse_config, Component.LIGHT, payload)


@pytest.mark.parametrize("payload", [b"[]", b'[{"command_topic":"a"}]', b'"x"', b"1", b"null", b"true"])
def test_config_not_object(payload: bytes) -> None:
    _codec_error(PayloadInvalid, "payload_not_object", parse_config, Component.LOCK, payload)


def test_config_too_large() -> None:
    padding = "x" * MAX_PAYLOAD_BYTES
    payload = json.dumps({"command_topic": "a/set", "name": "n", "pad": padding}).encode()
    assert len(payload) > MAX_PAYLOAD_BYTES
    _codec_error(PayloadInvalid, "payload_too_large", parse_config, Component.LOCK, payload)


def test_config_just_under_the_limit_is_read() -> None:
    body = {"command_topic": "a/set", "pad": ""}
    overhead = len(json.dumps(body, separators=(",", ":")))
    body["pad"] = "x" * (MAX_PAYLOAD_BYTES - overhead)
    payload = json.dumps(body, separators=(",", ":")).encode()
    assert len(payload) == MAX_PAYLOAD_BYTES
    assert isinstance(parse_config(Component.LOCK, payload), LockConfig)


@pytest.mark.parametrize(
    ("component", "body", "field"),
    [
        (Component.LOCK, {"command_topic": 5}, "command_topic"),
        (Component.LOCK, {}, "command_topic"),
        (Component.LOCK, {"command_topic": "a", "qos": 3}, "qos"),
        (Component.LOCK, {"command_topic": "a", "retain": "sometimes"}, "retain"),
        (Component.LOCK, {"command_topic": "a", "payload_lock": ""}, "payload_lock"),
        (Component.LOCK, {"command_topic": "a", "availability": "a/b"}, "availability"),
        (Component.LOCK, {"command_topic": "a", "availability": [{"pl_avail": "x"}]}, "availability.0.topic"),
        (Component.LOCK, {"command_topic": "a", "availability_mode": "most"}, "availability_mode"),
        (Component.LOCK, {"command_topic": "a", "expire_after": -1}, "expire_after"),
        (Component.LIGHT, {"schema": "json", "command_topic": "a", "brightness_scale": 0}, "brightness_scale"),
        (Component.LIGHT, {"schema": "json", "command_topic": "a", "brightness_scale": "high"}, "brightness_scale"),
        (Component.LIGHT, {"schema": "json", "command_topic": "a", "brightness": "yes please"}, "brightness"),
        (Component.LIGHT, {"schema": "json", "command_topic": "a", "supported_color_modes": "color_temp"}, None),
        (Component.LIGHT, {"schema": "json", "command_topic": "a", "min_kelvin": 100}, "min_kelvin"),
        (Component.CLIMATE, {"min_temp": "cold"}, "min_temp"),
        (Component.CLIMATE, {"max_temp": "NaN"}, "max_temp"),
        (Component.CLIMATE, {"temp_step": 0}, "temp_step"),
        (Component.CLIMATE, {"modes": "heat"}, "modes"),
        (Component.CLIMATE, {"temperature_unit": "K"}, "temperature_unit"),
        (Component.SENSOR, {"state_topic": ["a"]}, "state_topic"),
        (Component.SENSOR, {}, "state_topic"),
        (Component.SENSOR, {"state_topic": "a", "device": "thermo"}, "device"),
        (Component.SENSOR, {"state_topic": "a", "dev": {"ids": 7}}, "device.identifiers"),
        (Component.BINARY_SENSOR, {"state_topic": "a", "~": 3}, "~"),
    ],
)
def test_config_wrong_types_name_the_field(component: Component, body: dict[str, Any], field: str | None) -> None:
    err = _codec_error(ConfigInvalid, "config_invalid", _cfg, component, body)
    if field is not None:
        assert err.field == field
        assert field in str(err)
    else:
        assert err.field


@pytest.mark.parametrize("topic", ["home/+/state", "home/#", "home/u1\x00", "", "x" * 257])
@pytest.mark.parametrize("key", ["state_topic", "command_topic", "availability_topic"])
def test_bad_topic_in_config(topic: str, key: str) -> None:
    body = {"command_topic": "home/door/set", "state_topic": "home/door", key: topic}
    err = _codec_error(ConfigInvalid, "config_invalid", _cfg, Component.LOCK, body)
    assert err.field == key


def test_wildcard_in_availability_list_and_climate_topics() -> None:
    err = _codec_error(
        ConfigInvalid, "config_invalid", _cfg, Component.LOCK, {"cmd_t": "a", "avty": [{"t": "bridge/+"}]}
    )
    assert err.field == "availability.0.topic"
    err = _codec_error(ConfigInvalid, "config_invalid", _climate, mode_state_topic="zigbee2mqtt/#")
    assert err.field == "mode_state_topic"


def test_wildcard_from_base_topic_substitution() -> None:
    err = _codec_error(ConfigInvalid, "config_invalid", _cfg, Component.LOCK, {"~": "home/+", "cmd_t": "~/set"})
    assert err.field == "command_topic"


@pytest.mark.parametrize(
    ("component", "body"),
    [
        (Component.SENSOR, {"state_topic": "s", "value_template": "{{ value_json.t | float }}"}),
        (Component.SENSOR, {"state_topic": "s", "val_tpl": "{{ value_json.t * 10 }}"}),
        (Component.SENSOR, {"state_topic": "s", "value_template": "{% if value %}1{% endif %}"}),
        (Component.BINARY_SENSOR, {"state_topic": "s", "val_tpl": "{{ 'ON' if value_json.w > 3 else 'OFF' }}"}),
        (Component.SENSOR, {"state_topic": "s", "val_tpl": "{{ {0: 'a'}[value_json.v] | default(value_json.v) }}"}),
        (Component.LOCK, {"command_topic": "c", "value_template": "{{ value_json.state.__class__ }}x"}),
        (Component.LOCK, {"command_topic": "c", "value_template": "{{ states('lock.front') }}"}),
        (Component.CLIMATE, {"mode_state_topic": "m", "mode_state_template": "{{ value_json.mode | lower }}"}),
        (Component.CLIMATE, {"current_temperature_topic": "t", "current_temperature_template": "{{ value_json[0] }}"}),
        (Component.LOCK, {"cmd_t": "c", "avty": [{"t": "a", "val_tpl": "{{ value_json.a or 'online' }}"}]}),
    ],
)
def test_unsupported_jinja_template_refused(component: Component, body: dict[str, Any]) -> None:
    _codec_error(ConfigInvalid, "unsupported_template", _cfg, component, body)


# --- templates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "path", "is_json"),
    [
        (None, (), False),
        ("{{ value }}", (), False),
        ("{{value}}", (), False),
        ("  {{ value }}\n", (), False),
        ("{{ value_json }}", (), True),
        ("{{ value_json.temperature }}", ("temperature",), True),
        ("{{value_json.a.b_c}}", ("a", "b_c"), True),
        ("{{ value_json['DS18B20'].Temperature }}", ("DS18B20", "Temperature"), True),
        ('{{ value_json["with space"] }}', ("with space",), True),
        ("{{ value_json[ 'x' ][\"y\"].z }}", ("x", "y", "z"), True),
    ],
)
def test_parse_template_supported(template: str | None, path: tuple[str, ...], is_json: bool) -> None:
    parsed = parse_template(template)
    assert parsed == ValuePath(path, json_=is_json)
    assert parsed.path == path
    assert parsed.json is is_json


@pytest.mark.parametrize(
    "template",
    [
        "value_json.a",
        "{{ value_json.a }} C",
        "{{ value_json.1a }}",
        "{{ value_json[0] }}",
        "{{ value_json.a | int }}",
        "{{ value_json.a }}{{ value_json.b }}",
        "{{ valuejson.a }}",
        "{{ value_json['a'] }",
        "{{ value_json[''] }}",
        "{{ now() }}",
    ],
)
def test_parse_template_unsupported(template: str) -> None:
    _codec_error(ConfigInvalid, "unsupported_template", parse_template, template)


def test_value_path_extract_and_render() -> None:
    path = parse_template("{{ value_json.a.b }}")
    assert path.extract(b'{"a":{"b":[1,2]}}') == [1, 2]
    assert path.extract(path.render(21.5)) == 21.5
    _codec_error(PayloadInvalid, "payload_missing_field", path.extract, b'{"a":1}')
    _codec_error(PayloadInvalid, "payload_missing_field", path.extract, b'{"a":{"c":1}}')
    _codec_error(PayloadInvalid, "payload_not_json", path.extract, b"21.5}")
    _codec_error(PayloadInvalid, "payload_not_utf8", path.extract, b"\xff\xfe")
    raw = parse_template(None)
    assert raw.extract(b" 21.5 ") == " 21.5 "
    assert raw.render(21.5) == b"21.5"
    assert hash(path) == hash(ValuePath(("a", "b"), json_=True))
    assert path != raw
    assert "a" in repr(path)


# --- light state ---------------------------------------------------------------------------------


def test_light_state_decode_scales_brightness_and_mireds() -> None:
    cfg = _light(brightness=True, brightness_scale=100, supported_color_modes=["color_temp"])
    state = cfg.decode_state(
        "home/l1", b'{"state":"ON","brightness":50,"color_temp":370,"color_mode":"color_temp"}', None
    )
    assert state == LightState(on=True, brightness=128, color_temp_kelvin=2703)
    kelvin = _light(brightness=True, supported_color_modes=["color_temp"], color_temp_kelvin=True)
    state = kelvin.decode_state("home/l1", b'{"state":"OFF","brightness":255,"color_temp":2700}', None)
    assert state == LightState(on=False, brightness=255, color_temp_kelvin=2700)


def test_light_partial_state_keeps_previous_fields() -> None:
    cfg = _light(brightness=True, supported_color_modes=["color_temp"])
    state = cfg.decode_state("home/l1", b'{"state":"ON","brightness":200,"color_temp":250}', None)
    state = cfg.decode_state("home/l1", b'{"state":"OFF"}', state)
    assert state == LightState(on=False, brightness=200, color_temp_kelvin=4000)
    state = cfg.decode_state("home/l1", b'{"brightness":10}', state)
    assert state == LightState(on=False, brightness=10, color_temp_kelvin=4000)


def test_light_first_state_needs_on_off() -> None:
    _codec_error(PayloadInvalid, "payload_missing_field", _light(brightness=True).decode_state, "home/l1", b"{}", None)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"state":"on"}',
        b'{"state":1}',
        b'{"state":true}',
        b'{"state":"ON","brightness":"bright"}',
        b'{"state":"ON","brightness":[1]}',
        b'{"state":"ON","brightness":-1}',
        b'{"state":"ON","brightness":NaN}',
        b'{"state":"ON","color_temp":0}',
        b'{"state":"ON","color_temp":{"k":1}}',
        b'{"state":"ON","color_temp":NaN}',
    ],
)
def test_light_state_wrong_types(payload: bytes) -> None:
    cfg = _light(brightness=True, supported_color_modes=["color_temp"])
    _codec_error(PayloadInvalid, "payload_wrong_type", cfg.decode_state, "home/l1", payload, None)


@pytest.mark.parametrize(
    ("extra", "payload"),
    [
        ({"brightness_scale": 255}, b'{"state":"ON","brightness":256}'),
        ({"brightness_scale": 100}, b'{"state":"ON","brightness":101}'),
        ({"brightness_scale": 100}, b'{"state":"ON","brightness":Infinity}'),
        ({}, b'{"state":"ON","color_temp":2000}'),  # 2000 mireds = 500 K
        ({}, b'{"state":"ON","color_temp":5e-324}'),  # infinitely cold
        ({"color_temp_kelvin": True}, b'{"state":"ON","color_temp":153}'),
        ({"color_temp_kelvin": True}, b'{"state":"ON","color_temp":1e300}'),
        ({"color_temp_kelvin": True}, b'{"state":"ON","color_temp":Infinity}'),
    ],
)
def test_light_state_out_of_range(extra: dict[str, Any], payload: bytes) -> None:
    cfg = _light(brightness=True, supported_color_modes=["color_temp"], **extra)
    _codec_error(PayloadInvalid, "payload_out_of_range", cfg.decode_state, "home/l1", payload, None)


def test_light_state_not_json() -> None:
    cfg = _light()
    _codec_error(PayloadInvalid, "payload_not_json", cfg.decode_state, "home/l1", b"ON", None)
    _codec_error(PayloadInvalid, "payload_not_object", cfg.decode_state, "home/l1", b'["ON"]', None)
    big = b'{"state":"ON","x":"' + b"a" * MAX_PAYLOAD_BYTES + b'"}'
    _codec_error(PayloadInvalid, "payload_too_large", cfg.decode_state, "home/l1", big, None)


def test_light_encode_state() -> None:
    cfg = _light(brightness=True, brightness_scale=100, supported_color_modes=["color_temp"])
    (pub,) = cfg.encode_state(LightState(on=True, brightness=128, color_temp_kelvin=2700))
    assert pub.topic == "home/l1"
    assert pub.retain
    assert json.loads(pub.payload) == {"state": "ON", "brightness": 50, "color_mode": "color_temp", "color_temp": 370}
    assert cfg.encode_state(BinarySensorState(on=True)) == []
    assert _cfg(Component.LIGHT, {"schema": "json", "command_topic": "c"}).encode_state(LightState(on=True)) == []


# --- light commands ------------------------------------------------------------------------------


def test_light_command_encoding() -> None:
    cfg = _light(brightness=True, brightness_scale=100, supported_color_modes=["color_temp"])
    (pub,) = cfg.encode_command(LightCommand(on=True, brightness=255, color_temp_kelvin=2700))
    assert pub == Publish("home/l1/set", pub.payload, qos=1)
    assert json.loads(pub.payload) == {"state": "ON", "brightness": 100, "color_temp": 370}
    (pub,) = cfg.encode_command(LightCommand(brightness=1))
    assert json.loads(pub.payload) == {"state": "ON", "brightness": 1}  # never rounds a dim request to zero
    (pub,) = cfg.encode_command(LightCommand(on=False))
    assert json.loads(pub.payload) == {"state": "OFF"}


def test_brightness_on_non_dimmable_light_refused() -> None:
    for cfg in (_light(), _light(supported_color_modes=["onoff"])):
        err = _codec_error(CommandInvalid, "unsupported_feature", cfg.encode_command, LightCommand(brightness=100))
        assert err.field == "brightness"
        assert cfg.encode_command(LightCommand(on=True))  # on/off still works


def test_color_temp_on_light_without_it_refused() -> None:
    cfg = _light(brightness=True)
    err = _codec_error(CommandInvalid, "unsupported_feature", cfg.encode_command, LightCommand(color_temp_kelvin=3000))
    assert err.field == "color_temp_kelvin"


@pytest.mark.parametrize(
    ("extra", "inside", "outside"),
    [
        ({"min_mireds": 250, "max_mireds": 454}, [2203, 3000, 4000], [2202, 4001, 6500, 1000]),
        ({"color_temp_kelvin": True, "min_kelvin": 2700, "max_kelvin": 6500}, [2700, 6500], [2699, 6501, 40000]),
        ({}, [2000, 6535], [1999, 6536]),
    ],
)
def test_color_temp_outside_advertised_range_refused(
    extra: dict[str, Any], inside: list[int], outside: list[int]
) -> None:
    cfg = _light(supported_color_modes=["color_temp"], **extra)
    for kelvin in inside:
        assert cfg.encode_command(LightCommand(color_temp_kelvin=kelvin))
    for kelvin in outside:
        err = _codec_error(CommandInvalid, "out_of_range", cfg.encode_command, LightCommand(color_temp_kelvin=kelvin))
        assert err.field == "color_temp_kelvin"


def test_light_command_consistency() -> None:
    with pytest.raises(ValidationError):
        LightCommand(on=False, brightness=10)
    with pytest.raises(ValidationError):
        LightCommand(on=False, color_temp_kelvin=3000)
    with pytest.raises(ValidationError):
        LightCommand()
    with pytest.raises(ValidationError):
        LightCommand(brightness=0)
    with pytest.raises(ValidationError):
        LightCommand(brightness=256)
    with pytest.raises(ValidationError):
        LightCommand(on=True, unknown=1)  # type: ignore[call-arg]
    assert LightCommand(on=True, brightness=10).brightness == 10


def test_light_refuses_other_kinds_of_command() -> None:
    cfg = _light(brightness=True)
    _codec_error(CommandInvalid, "wrong_kind", cfg.encode_command, LockCommand(action="lock"))
    _codec_error(CommandInvalid, "wrong_kind", cfg.outcome, LockCommand(action="lock"), LightState(on=True))


def test_light_decode_command() -> None:
    cfg = _light(brightness=True, brightness_scale=100, supported_color_modes=["color_temp"])
    assert cfg.decode_command("home/l1/set", b'{"state":"ON","brightness":50,"color_temp":370}') == LightCommand(
        on=True, brightness=128, color_temp_kelvin=2703
    )
    assert cfg.decode_command("home/l1/set", b'{"state":"OFF"}') == LightCommand(on=False)
    _codec_error(
        PayloadInvalid, "payload_invalid", cfg.decode_command, "home/l1/set", b'{"state":"OFF","brightness":5}'
    )
    _codec_error(PayloadInvalid, "payload_invalid", cfg.decode_command, "home/l1/set", b"{}")
    _codec_error(PayloadInvalid, "payload_out_of_range", cfg.decode_command, "home/l1/set", b'{"brightness":1e308}')
    _codec_error(PayloadInvalid, "payload_out_of_range", cfg.decode_command, "home/l1/set", b'{"color_temp":1e-320}')


# --- light outcome -------------------------------------------------------------------------------


def test_light_outcome_brightness_scale_100() -> None:
    cfg = _light(brightness=True, brightness_scale=100)
    cmd = LightCommand(on=True, brightness=77)  # 77/255 -> 30/100 -> 76/255 on the way back
    (pub,) = cfg.encode_command(cmd)
    device_view = json.loads(pub.payload)
    assert device_view["brightness"] == 30
    state = cfg.decode_state("home/l1", json.dumps({"state": "ON", "brightness": 30}).encode(), None)
    assert state.brightness == 76
    assert cfg.outcome(cmd, state).status is OutcomeStatus.CONFIRMED
    # a clearly different brightness, or the light still off, is not a confirmation
    assert cfg.outcome(cmd, LightState(on=True, brightness=60)).status is OutcomeStatus.PENDING
    assert cfg.outcome(cmd, LightState(on=False, brightness=77)).status is OutcomeStatus.PENDING
    assert cfg.outcome(cmd, LightState(on=True)).status is OutcomeStatus.PENDING


def test_light_outcome_mireds_rounding() -> None:
    cfg = _light(supported_color_modes=["color_temp"], min_mireds=153, max_mireds=500)
    cmd = LightCommand(color_temp_kelvin=6500)  # -> 154 mireds -> 6494 K
    state = cfg.decode_state("home/l1", cfg.encode_command(cmd)[0].payload, None)
    assert state.color_temp_kelvin == 6494
    assert cfg.outcome(cmd, state).status is OutcomeStatus.CONFIRMED
    assert cfg.outcome(cmd, LightState(on=True, color_temp_kelvin=6400)).status is OutcomeStatus.PENDING
    kelvin = _light(supported_color_modes=["color_temp"], color_temp_kelvin=True)
    cmd = LightCommand(color_temp_kelvin=3000)
    assert kelvin.outcome(cmd, LightState(on=True, color_temp_kelvin=3001)).status is OutcomeStatus.CONFIRMED
    assert kelvin.outcome(cmd, LightState(on=True, color_temp_kelvin=3010)).status is OutcomeStatus.PENDING


def test_light_outcome_off_and_wrong_state_kind() -> None:
    cfg = _light(brightness=True)
    off = LightCommand(on=False)
    assert cfg.outcome(off, LightState(on=False, brightness=200)).status is OutcomeStatus.CONFIRMED
    assert cfg.outcome(off, LightState(on=True)).status is OutcomeStatus.PENDING
    assert cfg.outcome(off, LockState(status=LockStatus.LOCKED)).status is OutcomeStatus.PENDING


# --- lock ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "status"),
    [
        (b"LOCKED", LockStatus.LOCKED),
        (b"UNLOCKED", LockStatus.UNLOCKED),
        (b"LOCKING", LockStatus.LOCKING),
        (b"UNLOCKING", LockStatus.UNLOCKING),
        (b"JAMMED", LockStatus.JAMMED),
        (b"OPEN", LockStatus.OPEN),
        (b"OPENING", LockStatus.OPENING),
    ],
)
def test_lock_state_words(word: bytes, status: LockStatus) -> None:
    cfg = _lock()
    state = cfg.decode_state("home/door", word, None)
    assert state == LockState(status=status)
    assert cfg.encode_state(state) == [Publish("home/door", word, retain=True)]


def test_lock_state_with_json_template() -> None:
    cfg = _lock(value_template="{{ value_json.lock_state }}", state_locked="locked", state_unlocked="unlocked")
    assert cfg.decode_state("home/door", b'{"lock_state":"locked","battery":90}', None).status is LockStatus.LOCKED
    _codec_error(PayloadInvalid, "payload_out_of_range", cfg.decode_state, "home/door", b'{"lock_state":1}', None)
    _codec_error(PayloadInvalid, "payload_missing_field", cfg.decode_state, "home/door", b'{"battery":90}', None)


@pytest.mark.parametrize("payload", [b"locked", b"LOCKED ", b"", b"UNLOCK", b"\xff"])
def test_lock_unknown_word(payload: bytes) -> None:
    with pytest.raises(PayloadInvalid) as info:
        _lock().decode_state("home/door", payload, None)
    assert info.value.code in {"payload_out_of_range", "payload_not_utf8"}


def test_lock_state_too_large() -> None:
    _codec_error(PayloadInvalid, "payload_too_large", _lock().decode_state, "home/door", b"L" * 70_000, None)


def test_lock_ambiguous_state_words_refused() -> None:
    # a device saying LOCKED must never be read as OPEN
    _codec_error(ConfigInvalid, "config_invalid", _lock, state_open="LOCKED")
    _codec_error(ConfigInvalid, "config_invalid", _lock, payload_lock="GO", payload_unlock="GO")


def test_lock_commands() -> None:
    cfg = _lock(payload_lock="lock_door", payload_unlock="unlock_door")
    assert cfg.encode_command(LockCommand(action="lock")) == [Publish("home/door/set", b"lock_door", qos=1)]
    assert cfg.decode_command("home/door/set", b"unlock_door") == LockCommand(action="unlock")
    _codec_error(PayloadInvalid, "payload_out_of_range", cfg.decode_command, "home/door/set", b"OPEN")
    _codec_error(CommandInvalid, "wrong_kind", cfg.encode_command, LightCommand(on=True))
    with pytest.raises(ValidationError):
        LockCommand.model_validate({"action": "open"})


def test_lock_outcomes() -> None:
    cfg = _lock()
    lock = LockCommand(action="lock")
    unlock = LockCommand(action="unlock")
    jammed = cfg.outcome(lock, cfg.decode_state("home/door", b"JAMMED", None))
    assert jammed.status is OutcomeStatus.REFUSED
    assert jammed.reason == "device_jammed"
    assert cfg.outcome(unlock, LockState(status=LockStatus.JAMMED)).reason == "device_jammed"
    assert cfg.outcome(lock, LockState(status=LockStatus.LOCKING)).status is OutcomeStatus.PENDING
    assert cfg.outcome(lock, LockState(status=LockStatus.UNLOCKED)).status is OutcomeStatus.PENDING
    assert cfg.outcome(lock, LockState(status=LockStatus.LOCKED)).status is OutcomeStatus.CONFIRMED
    assert cfg.outcome(unlock, LockState(status=LockStatus.UNLOCKING)).status is OutcomeStatus.PENDING
    assert cfg.outcome(unlock, LockState(status=LockStatus.UNLOCKED)).status is OutcomeStatus.CONFIRMED
    assert cfg.outcome(unlock, LockState(status=LockStatus.OPEN)).status is OutcomeStatus.PENDING
    assert cfg.outcome(lock, LightState(on=True)).status is OutcomeStatus.PENDING
    assert cfg.outcome(LockCommand(action="lock"), LockState(status=LockStatus.LOCKED)).reason is None


# --- climate state -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "payload", "code"),
    [
        ("home/t/mode", b"eco", "payload_out_of_range"),  # not advertised
        ("home/t/mode", b"HEAT", "payload_out_of_range"),
        ("home/t/fan", b"turbo", "payload_out_of_range"),
        ("home/t/target", b"warm", "payload_wrong_type"),
        ("home/t/target", b"", "payload_wrong_type"),
        ("home/t/target", b"nan", "payload_out_of_range"),
        ("home/t/target", b"inf", "payload_out_of_range"),
        ("home/t/current", b"-273.15", "payload_out_of_range"),
        ("home/t/current", b"151", "payload_out_of_range"),
        ("home/t/current", b"\xff", "payload_not_utf8"),
        ("home/t/nothing", b"21", "payload_missing_field"),
    ],
)
def test_climate_state_refusals_plain(topic: str, payload: bytes, code: str) -> None:
    _codec_error(PayloadInvalid, code, _climate(modes=["off", "heat"]).decode_state, topic, payload, None)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b'{"mode":"cool"}', "payload_out_of_range"),
        (b'{"mode":1}', "payload_out_of_range"),
        (b'{"target":true}', "payload_wrong_type"),
        (b'{"target":"21.5x"}', "payload_wrong_type"),
        (b'{"target":[21]}', "payload_wrong_type"),
        (b'{"target":null}', "payload_wrong_type"),
        (b'{"target":NaN}', "payload_out_of_range"),
        (b'{"target":1e400}', "payload_out_of_range"),
        (b'{"target":' + b"9" * 400 + b"}", "payload_out_of_range"),
        (b'{"current":-61}', "payload_out_of_range"),
        (b"[" * 50_000, "payload_not_json"),
    ],
)
def test_climate_state_refusals_json(payload: bytes, code: str) -> None:
    cfg = _cfg(
        Component.CLIMATE,
        {
            "modes": ["off", "heat"],
            "mode_state_topic": "t",
            "mode_state_template": "{{ value_json.mode }}",
            "temperature_state_topic": "t",
            "temperature_state_template": "{{ value_json.target }}",
            "current_temperature_topic": "t",
            "current_temperature_template": "{{ value_json.current }}",
        },
    )
    _codec_error(PayloadInvalid, code, cfg.decode_state, "t", payload, None)


def test_climate_encode_state_merges_shared_topic() -> None:
    cfg = _cfg(
        Component.CLIMATE,
        {
            "mode_state_topic": "t",
            "mode_state_template": "{{ value_json.mode }}",
            "temperature_state_topic": "t",
            "temperature_state_template": "{{ value_json.setpoint.value }}",
            "current_temperature_topic": "t/current",
        },
    )
    state = ClimateState(mode="heat", target_temperature=21.5, current_temperature=20.0)
    pubs = {p.topic: p.payload for p in cfg.encode_state(state)}
    assert json.loads(pubs["t"]) == {"mode": "heat", "setpoint": {"value": 21.5}}
    assert pubs["t/current"] == b"20.0"
    merged = None
    for topic, payload in pubs.items():
        merged = cfg.decode_state(topic, payload, merged)
    assert merged == state


# --- climate commands ----------------------------------------------------------------------------


def test_thermostat_target_limits_and_step() -> None:
    cfg = _climate(min_temp=10, max_temp=30, temp_step=0.5)
    assert cfg.encode_command(ClimateCommand(target_temperature=10)) == [Publish("home/t/target/set", b"10", qos=1)]
    assert cfg.encode_command(ClimateCommand(target_temperature=30))[0].payload == b"30"
    assert cfg.encode_command(ClimateCommand(target_temperature=21.5))[0].payload == b"21.5"
    for target in (9.5, 30.5, -5.0, 1000.0):
        err = _codec_error(
            CommandInvalid, "out_of_range", cfg.encode_command, ClimateCommand(target_temperature=target)
        )
        assert err.field == "target_temperature"
    for target in (21.2, 21.25, 10.1):
        err = _codec_error(
            CommandInvalid, "out_of_range", cfg.encode_command, ClimateCommand(target_temperature=target)
        )
        assert err.field == "target_temperature"
        assert "step" in str(err)


def test_thermostat_step_is_counted_from_min() -> None:
    cfg = _climate(min_temp=7.5, max_temp=30, temp_step=1)
    assert cfg.encode_command(ClimateCommand(target_temperature=20.5))
    _codec_error(CommandInvalid, "out_of_range", cfg.encode_command, ClimateCommand(target_temperature=20))


def test_thermostat_mode_and_fan_must_be_advertised() -> None:
    cfg = _climate(modes=["off", "heat"], fan_modes=["auto", "low"])
    assert cfg.encode_command(ClimateCommand(mode="heat", fan_mode="low")) == [
        Publish("home/t/mode/set", b"heat", qos=1),
        Publish("home/t/fan/set", b"low", qos=1),
    ]
    err = _codec_error(CommandInvalid, "out_of_range", cfg.encode_command, ClimateCommand(mode="cool"))
    assert err.field == "mode"
    err = _codec_error(CommandInvalid, "out_of_range", cfg.encode_command, ClimateCommand(fan_mode="high"))
    assert err.field == "fan_mode"
    with pytest.raises(ValidationError):
        ClimateCommand.model_validate({"mode": "eco"})
    with pytest.raises(ValidationError):
        ClimateCommand(target_temperature=float("nan"))
    with pytest.raises(ValidationError):
        ClimateCommand()


def test_thermostat_without_command_topics() -> None:
    cfg = _cfg(Component.CLIMATE, {"current_temperature_topic": "t"})
    assert isinstance(cfg, ClimateConfig)
    assert cfg.command_topics() == frozenset()
    for cmd, field in (
        (ClimateCommand(mode="heat"), "mode"),
        (ClimateCommand(target_temperature=20), "target_temperature"),
        (ClimateCommand(fan_mode="auto"), "fan_mode"),
    ):
        err = _codec_error(CommandInvalid, "unsupported_feature", cfg.encode_command, cmd)
        assert err.field == field
    _codec_error(CommandInvalid, "wrong_kind", cfg.encode_command, LightCommand(on=True))


def test_thermostat_decode_command() -> None:
    cfg = _climate()
    assert cfg.decode_command("home/t/mode/set", b"cool") == ClimateCommand(mode="cool")
    assert cfg.decode_command("home/t/target/set", b"21.5") == ClimateCommand(target_temperature=21.5)
    assert cfg.decode_command("home/t/fan/set", b"high") == ClimateCommand(fan_mode="high")
    _codec_error(PayloadInvalid, "payload_invalid", cfg.decode_command, "home/t/mode/set", b"eco")
    _codec_error(PayloadInvalid, "payload_invalid", cfg.decode_command, "home/t/target/set", b"inf")
    _codec_error(PayloadInvalid, "payload_invalid", cfg.decode_command, "home/t/target/set", b"warm")
    _codec_error(PayloadInvalid, "payload_invalid", cfg.decode_command, "home/t/fan/set", b"")
    _codec_error(PayloadInvalid, "payload_invalid", cfg.decode_command, "home/t/mode", b"cool")


def test_thermostat_outcome() -> None:
    cfg = _climate()
    cmd = ClimateCommand(mode="heat", target_temperature=21.5)
    assert cfg.outcome(cmd, ClimateState(mode="heat", target_temperature=21.5)).status is OutcomeStatus.CONFIRMED
    assert cfg.outcome(cmd, ClimateState(mode="heat", target_temperature=21.0)).status is OutcomeStatus.PENDING
    assert cfg.outcome(cmd, ClimateState(mode="off", target_temperature=21.5)).status is OutcomeStatus.PENDING
    assert cfg.outcome(cmd, ClimateState(mode="heat")).status is OutcomeStatus.PENDING
    fan = ClimateCommand(fan_mode="low")
    assert cfg.outcome(fan, ClimateState(fan_mode="low")).status is OutcomeStatus.CONFIRMED
    assert cfg.outcome(fan, ClimateState(fan_mode="high")).status is OutcomeStatus.PENDING


# --- sensors -------------------------------------------------------------------------------------


def test_sensor_readings() -> None:
    battery = _sensor(device_class="battery", unit_of_measurement="%", value_template="{{ value_json.battery }}")
    assert battery.decode_state("home/s", b'{"battery":87,"voltage":2900}', None) == SensorState(value=87.0, unit="%")
    assert battery.decode_state("home/s", b'{"battery":"100"}', None) == SensorState(value=100.0, unit="%")
    temp = _sensor(device_class="temperature", unit_of_measurement="°C")
    assert temp.decode_state("home/s", b"-12.5", None) == SensorState(value=-12.5, unit="°C")
    text = _sensor(value_template="{{ value_json.action }}")
    assert text.decode_state("home/s", b'{"action":"single"}', None) == SensorState(value="single")
    assert text.decode_state("home/s", b'{"action":3}', None) == SensorState(value=3.0)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b'{"battery":150}', "payload_out_of_range"),
        (b'{"battery":-1}', "payload_out_of_range"),
        (b'{"battery":NaN}', "payload_out_of_range"),
        (b'{"battery":Infinity}', "payload_out_of_range"),
        (b'{"battery":' + b"1" * 400 + b"}", "payload_out_of_range"),
        (b'{"battery":"full"}', "payload_wrong_type"),
        (b'{"battery":true}', "payload_wrong_type"),
        (b'{"battery":null}', "payload_wrong_type"),
        (b'{"battery":{"level":50}}', "payload_wrong_type"),
        (b'{"voltage":3000}', "payload_missing_field"),
        (b"eighty-seven", "payload_not_json"),
        (b"87", "payload_missing_field"),  # JSON, but not an object holding the battery
        (b"[" * 50_000, "payload_not_json"),
        (b'{"battery":50,"pad":"' + b"x" * MAX_PAYLOAD_BYTES + b'"}', "payload_too_large"),
    ],
)
def test_battery_sensor_refusals(payload: bytes, code: str) -> None:
    cfg = _sensor(device_class="battery", value_template="{{ value_json.battery }}")
    _codec_error(PayloadInvalid, code, cfg.decode_state, "home/s", payload, None)


@pytest.mark.parametrize(("payload", "code"), [(b"nan", "payload_out_of_range"), (b"warm", "payload_wrong_type")])
def test_temperature_sensor_refusals(payload: bytes, code: str) -> None:
    _codec_error(PayloadInvalid, code, _sensor(device_class="temperature").decode_state, "home/s", payload, None)


def test_generic_sensor_huge_integer_refused() -> None:
    cfg = _sensor(value_template="{{ value_json.n }}")
    _codec_error(PayloadInvalid, "payload_out_of_range", cfg.decode_state, "home/s", b'{"n":' + b"7" * 400 + b"}", None)


def test_sensor_text_that_is_not_unicode_refused() -> None:
    # valid UTF-8 bytes, but the JSON escape decodes to a lone surrogate no str field can hold
    cfg = _sensor(value_template="{{ value_json.action }}")
    _codec_error(PayloadInvalid, "payload_not_utf8", cfg.decode_state, "home/s", b'{"action":"\\ud800"}', None)
    _codec_error(PayloadInvalid, "payload_not_utf8", cfg.decode_state, "home/s", b'{"action":"\xed\xa0\x80"}', None)


def test_binary_sensor() -> None:
    leak = _binary(device_class="moisture", value_template="{{ value_json.water_leak }}", pl_on=True, pl_off=False)
    # Zigbee2MQTT sends JSON booleans; HA reads them as the text True/False, as the template renders them
    assert (leak.payload_on, leak.payload_off) == ("True", "False")
    assert parse_config(Component.BINARY_SENSOR, leak.to_payload()) == leak
    assert leak.decode_state("home/b", b'{"water_leak":true}', None) == BinarySensorState(on=True)
    assert leak.decode_state("home/b", b'{"water_leak":false}', None) == BinarySensorState(on=False)
    _codec_error(PayloadInvalid, "payload_out_of_range", leak.decode_state, "home/b", b'{"water_leak":"maybe"}', None)
    contact = _binary(
        device_class="door", value_template="{{ value_json.contact }}", payload_on=False, payload_off=True
    )
    assert contact.decode_state("home/b", b'{"contact":false}', None) == BinarySensorState(on=True)  # open
    plain = _binary()
    assert plain.decode_state("home/b", b"ON", None) == BinarySensorState(on=True)
    _codec_error(PayloadInvalid, "payload_out_of_range", plain.decode_state, "home/b", b"on", None)
    assert plain.encode_state(BinarySensorState(on=False)) == [Publish("home/b", b"OFF", retain=True)]


@pytest.mark.parametrize(
    "cfg", [_sensor(device_class="battery"), _binary(device_class="moisture")], ids=["sensor", "binary"]
)
def test_sensors_not_commandable(cfg: EntityConfig) -> None:
    for cmd in (LightCommand(on=True), LockCommand(action="unlock"), ClimateCommand(mode="off")):
        _codec_error(CommandInvalid, "not_commandable", cfg.encode_command, cmd)
    _codec_error(PayloadInvalid, "not_commandable", cfg.decode_command, "home/s", b"ON")
    assert cfg.command_model is None
    assert cfg.command_topics() == frozenset()


def test_config_payload_round_trip_examples() -> None:
    configs: list[EntityConfig] = [
        _light(brightness=True, brightness_scale=100, supported_color_modes=["color_temp"], min_mireds=200),
        _lock(availability=[{"topic": "a/b", "payload_available": "up"}], device={"ids": "x", "name": "Door"}),
        _climate(min_temp=5, max_temp=30, temp_step=0.5, modes=["heat"], temperature_unit="C"),
        _sensor(device_class="battery", unit_of_measurement="%", value_template="{{ value_json.battery }}"),
        _binary(payload_on="wet", expire_after=3600, qos=1, retain=True),
    ]
    for cfg in configs:
        again = parse_config(cfg.component, cfg.to_payload())
        assert again == cfg
        assert type(again) is type(cfg)
    assert json.loads(configs[0].to_payload())["schema"] == "json"
