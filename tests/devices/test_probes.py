"""The self-test's state requests, by firmware: discovery configs as Zigbee2MQTT, Tasmota, ESPHome and Z-Wave JS UI
publish them, what each is asked (never on a command topic), and which are judged by their reports instead."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from devices import (
    ClimateConfig,
    Component,
    EntityConfig,
    Firmware,
    LockConfig,
    Publish,
    QueryMethod,
    StateQuery,
    firmware_of,
    parse_config,
    state_queries,
)

Z2M_ORIGIN = {"name": "Zigbee2MQTT", "sw": "1.40.2", "url": "https://www.zigbee2mqtt.io"}
Z2M_AVAILABILITY = [{"topic": "zigbee2mqtt/bridge/state", "value_template": "{{ value_json.state }}"}]
FWSIM_DEVICE = {"identifiers": ["fwsim-u1-x"], "manufacturer": "fwsim", "model": "fwsim lock"}


def cfg(component: Component, body: dict[str, Any]) -> EntityConfig:
    """A config parsed as the gateway parses discovery payloads."""
    return parse_config(component, json.dumps(body).encode())


def z2m(component: Component, name: str, **body: Any) -> EntityConfig:
    """A Zigbee2MQTT discovery config for the device ``name`` (as its homeassistant extension builds them)."""
    device = {"identifiers": [f"zigbee2mqtt_{name}"], "name": name, "manufacturer": "Vendor", "model": "M1"}
    return cfg(component, {"availability": Z2M_AVAILABILITY, "device": device, "origin": Z2M_ORIGIN, **body})


def asked(query: StateQuery) -> list[tuple[str, bytes]]:
    """The requests of an asked query as (topic, payload); fails for any other query."""
    assert query.method is QueryMethod.ASKED, query
    assert all(not p.retain and p.qos == 1 for p in query.requests)  # a retained request would replay forever
    return [(p.topic, p.payload) for p in query.requests]


def not_asked(query: StateQuery) -> str | None:
    """Why a query judged by reports is not asked; fails for an asked one."""
    assert query.method is QueryMethod.FRESH_REPORT and query.requests == (), query
    return query.reason


# --- Zigbee2MQTT ------------------------------------------------------------------------------------------------


def test_a_zigbee2mqtt_thermostat_is_asked_for_the_attributes_it_reports_not_state() -> None:
    trv = z2m(
        Component.CLIMATE, "hall trv",
        current_temperature_topic="zigbee2mqtt/hall trv",
        current_temperature_template="{{ value_json.local_temperature }}",
        mode_state_topic="zigbee2mqtt/hall trv", mode_state_template="{{ value_json.system_mode }}",
        mode_command_topic="zigbee2mqtt/hall trv/set/system_mode", modes=["off", "heat", "auto"],
        temperature_state_topic="zigbee2mqtt/hall trv",
        temperature_state_template="{{ value_json.occupied_heating_setpoint }}",
        temperature_command_topic="zigbee2mqtt/hall trv/set/occupied_heating_setpoint",
        min_temp="5", max_temp="30", temp_step=0.5, temperature_unit="C",
    )  # fmt: skip
    assert firmware_of(trv) is Firmware.ZIGBEE2MQTT
    (query,) = state_queries([trv])
    body = b'{"local_temperature":"","occupied_heating_setpoint":"","system_mode":""}'
    assert asked(query) == [("zigbee2mqtt/hall trv/get", body)]


def test_a_zigbee2mqtt_light_and_lock_are_asked_for_their_state() -> None:
    light = z2m(
        Component.LIGHT, "hall bulb", schema="json", brightness=True, brightness_scale=254,
        command_topic="zigbee2mqtt/hall bulb/set", state_topic="zigbee2mqtt/hall bulb",
    )  # fmt: skip
    lock = z2m(
        Component.LOCK, "front door", command_topic="zigbee2mqtt/front door/set",
        state_topic="zigbee2mqtt/front door", value_template="{{ value_json.state }}",
    )  # fmt: skip
    assert asked(state_queries([light])[0]) == [("zigbee2mqtt/hall bulb/get", b'{"state":""}')]
    assert asked(state_queries([lock])[0]) == [("zigbee2mqtt/front door/get", b'{"state":""}')]


def test_a_battery_powered_zigbee_device_is_judged_by_its_reports_it_may_sleep() -> None:
    topic = "zigbee2mqtt/front door"
    contact = z2m(
        Component.BINARY_SENSOR, "front door", state_topic=topic, value_template="{{ value_json.contact }}",
        payload_on=False, payload_off=True, device_class="door",
    )  # fmt: skip
    battery = z2m(
        Component.SENSOR, "front door", state_topic=topic, value_template="{{ value_json.battery }}",
        device_class="battery", unit_of_measurement="%",
    )  # fmt: skip
    lock = z2m(Component.LOCK, "front door", command_topic=f"{topic}/set", state_topic=topic,
               value_template="{{ value_json.state }}")  # fmt: skip
    assert [not_asked(q) for q in state_queries([contact, battery])] == ["battery_powered"] * 2
    assert [not_asked(q) for q in state_queries([lock, battery])] == ["battery_powered"] * 2
    assert asked(state_queries([lock])[0])  # the same lock on mains is asked


def test_a_zigbee2mqtt_sensor_is_not_asked_its_attribute_may_not_be_readable() -> None:
    power = z2m(Component.SENSOR, "plug", state_topic="zigbee2mqtt/plug", value_template="{{ value_json.power }}",
                device_class="power", unit_of_measurement="W")  # fmt: skip
    assert not_asked(state_queries([power])[0]) == "not_readable"


def test_zigbee2mqtt_without_an_origin_block_is_known_by_its_bridge_state_availability() -> None:
    lock = cfg(Component.LOCK, {
        "availability": [{"topic": "z2m/bridge/state"}], "command_topic": "z2m/door/set",
        "state_topic": "z2m/door", "value_template": "{{ value_json.state }}",
    })  # fmt: skip
    assert firmware_of(lock) is Firmware.ZIGBEE2MQTT
    assert asked(state_queries([lock])[0]) == [("z2m/door/get", b'{"state":""}')]


def test_the_origin_block_is_read_in_either_spelling() -> None:
    short = cfg(Component.SENSOR, {"stat_t": "a/b", "o": {"name": "Zigbee2MQTT", "sw": "1.40.2", "url": "u"}})
    assert short.origin is not None and (short.origin.name, short.origin.sw_version) == ("Zigbee2MQTT", "1.40.2")
    assert short.origin.support_url == "u" and firmware_of(short) is Firmware.ZIGBEE2MQTT


# --- Tasmota, ESPHome, Z-Wave JS UI, others --------------------------------------------------------------------------


def tasmota_sensor(state_topic: str, lwt: str, maker: str | None = "Tasmota") -> EntityConfig:
    """A DS18B20 reading as Tasmota's legacy discovery (SetOption19 1) announces it, abbreviated."""
    device: dict[str, Any] = {"ids": ["8E0C3A"], "name": "Boiler", "mdl": "Sonoff TH", "sw": "14.1.0"}
    if maker is not None:
        device["mf"] = maker
    return cfg(Component.SENSOR, {
        "name": "Boiler DS18B20 Temperature", "stat_t": state_topic, "avty_t": lwt, "pl_avail": "Online",
        "pl_not_avail": "Offline", "uniq_id": "8E0C3A_DS18B20_Temperature", "dev_cla": "temperature",
        "unit_of_meas": "°C", "val_tpl": "{{value_json['DS18B20'].Temperature}}", "dev": device,
    })  # fmt: skip


def test_a_tasmota_sensor_is_asked_with_an_empty_teleperiod_which_changes_nothing() -> None:
    sensor = tasmota_sensor("tele/boiler/SENSOR", "tele/boiler/LWT")
    assert firmware_of(sensor) is Firmware.TASMOTA
    assert asked(state_queries([sensor])[0]) == [("cmnd/boiler/TelePeriod", b"")]
    # Wherever FullTopic puts the prefix, and known by its layout when the maker is not named.
    custom = tasmota_sensor("home/boiler/tele/SENSOR", "home/boiler/tele/LWT", maker=None)
    assert firmware_of(custom) is Firmware.TASMOTA
    assert asked(state_queries([custom])[0]) == [("home/boiler/cmnd/TelePeriod", b"")]


def test_a_tasmota_entity_reporting_elsewhere_than_telemetry_is_not_asked() -> None:
    switch = cfg(Component.BINARY_SENSOR, {
        "stat_t": "stat/boiler/SWITCH1", "avty_t": "tele/boiler/LWT", "pl_on": "ON", "pl_off": "OFF",
        "dev": {"ids": ["8E0C3A"], "mf": "Tasmota"},
    })  # fmt: skip
    assert not_asked(state_queries([switch])[0]) == "no_request_for_topic"


def test_esphome_zwave_js_ui_and_unknown_firmware_are_judged_by_their_reports() -> None:
    esphome = cfg(Component.SENSOR, {
        "name": "Living temperature", "stat_t": "living/sensor/temperature/state", "avty_t": "living/status",
        "unit_of_meas": "°C", "dev_cla": "temperature", "uniq_id": "ESPsensortemperature",
        "dev": {"ids": "a4cf12b3c4d5", "name": "living", "sw": "esphome v2024.6.1 Jun 20 2024, 10:00:00",
                "mdl": "esp32dev", "mf": "espressif"},
    })  # fmt: skip
    zwave = cfg(Component.SENSOR, {"stat_t": "zwave/Hall/sensor/49/0/Air_temperature", "o": {"name": "Z-Wave JS UI"}})
    other = cfg(Component.LOCK, {"command_topic": "x/lock/set", "state_topic": "x/lock"})
    for config, firmware in ((esphome, Firmware.ESPHOME), (zwave, Firmware.ZWAVE_JS_UI), (other, Firmware.UNKNOWN)):
        (query,) = state_queries([config])
        assert (query.firmware, not_asked(query)) == (firmware, "no_known_request")


def test_fwsim_is_asked_on_state_get_for_every_entity() -> None:
    lock = LockConfig(command_topic="u1/lock/set", state_topic="u1/lock/state", device=FWSIM_DEVICE)
    assert asked(state_queries([lock])[0]) == [("u1/lock/state/get", b'{"state":""}')]
    climate = ClimateConfig(
        mode_command_topic="u1/t/set/mode", mode_state_topic="u1/t/state", mode_state_template="{{ value_json.mode }}",
        current_temperature_topic="u1/t/current", device=FWSIM_DEVICE,
    )  # fmt: skip
    assert asked(state_queries([climate])[0]) == [
        ("u1/t/current/get", b'{"state":""}'),
        ("u1/t/state/get", b'{"mode":""}'),
    ]
    silent = LockConfig(command_topic="u1/lock/set", device=FWSIM_DEVICE)  # optimistic: reports nothing
    assert not_asked(state_queries([silent])[0]) == "reports_no_state"


def test_no_request_lands_on_a_command_topic_of_the_device_or_any_other() -> None:
    own = LockConfig(command_topic="u1/lock/state/get", state_topic="u1/lock/state", device=FWSIM_DEVICE)
    assert not_asked(state_queries([own])[0]) == "request_on_command_topic"
    lock = LockConfig(command_topic="u1/lock/set", state_topic="u1/lock/state", device=FWSIM_DEVICE)
    assert not_asked(state_queries([lock], forbidden={"u1/lock/state/get"})[0]) == "request_on_command_topic"


_topic = st.text(alphabet="ab/", min_size=1, max_size=6)


@st.composite
def _devices(draw: st.DrawFn) -> list[EntityConfig]:
    origin = draw(st.sampled_from([None, {"name": "Zigbee2MQTT"}, {"name": "Tasmota"}, {"name": "fwsim"}]))
    state = draw(st.one_of(_topic, st.just("tele/x/SENSOR")))
    near = st.one_of(_topic, st.just(f"{state}/get"), st.just("cmnd/x/TelePeriod"))
    lock = LockConfig(
        command_topic=draw(near), state_topic=draw(st.one_of(st.none(), st.just(state))), origin=origin,
        value_template=draw(st.sampled_from([None, "{{ value_json.state }}"])),
    )  # fmt: skip
    climate = ClimateConfig(
        mode_command_topic=draw(st.one_of(st.none(), near)), mode_state_topic=state,
        temperature_command_topic=draw(st.one_of(st.none(), near)), temperature_state_topic=draw(_topic),
        current_temperature_topic=draw(st.one_of(st.none(), _topic)), origin=origin,
    )  # fmt: skip
    return draw(st.lists(st.sampled_from([lock, climate]), min_size=1, max_size=2))


@settings(max_examples=300, deadline=None)
@given(configs=_devices(), forbidden=st.sets(st.one_of(_topic, st.just("tele/x/SENSOR/get"))))
def test_a_state_request_never_goes_to_a_command_topic(configs: list[EntityConfig], forbidden: set[str]) -> None:
    """Whatever the firmware and layout: asked means at least one request, and none on a topic that is a command
    (or state) topic of the device, or forbidden; otherwise no request at all."""
    taken = forbidden.union(*(c.command_topics() | c.state_topics() for c in configs))
    for query in state_queries(configs, forbidden):
        assert (query.method is QueryMethod.ASKED) == bool(query.requests)
        assert all(isinstance(p, Publish) and p.topic not in taken for p in query.requests)
