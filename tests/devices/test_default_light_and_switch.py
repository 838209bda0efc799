"""Home Assistant's default (basic) light schema, the switch kind, and the value-template forms the firmwares emit,
at the codec level (the recorded devices in test_recorded_firmware.py exercise them as each firmware sends them)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from devices import (
    ClimateCommand,
    CommandInvalid,
    Component,
    ConfigInvalid,
    DefaultLightConfig,
    DeviceCodecError,
    DeviceKind,
    LightCommand,
    LightState,
    LockCommand,
    LockConfig,
    LockState,
    LockStatus,
    OutcomeStatus,
    PayloadInvalid,
    Publish,
    SwitchCommand,
    SwitchConfig,
    SwitchState,
    parse_config,
    parse_template,
)


def _light(**extra: Any) -> DefaultLightConfig:
    body = {"command_topic": "l/power", "state_topic": "l/state", **extra}
    cfg = parse_config(Component.LIGHT, json.dumps(body).encode())
    assert isinstance(cfg, DefaultLightConfig)
    return cfg


def _switch(**extra: Any) -> SwitchConfig:
    cfg = parse_config(Component.SWITCH, json.dumps({"command_topic": "s/set", "state_topic": "s", **extra}).encode())
    assert isinstance(cfg, SwitchConfig)
    return cfg


def _error(exc_type: type[DeviceCodecError], code: str, fn: Any, *args: Any) -> DeviceCodecError:
    with pytest.raises(exc_type) as info:
        fn(*args)
    assert info.value.code == code, str(info.value)
    return info.value


DIMMER = {"brightness_command_topic": "l/dim", "brightness_state_topic": "l/dim/state", "brightness_scale": 100}


@pytest.mark.parametrize(
    ("on_command_type", "expected"),
    [
        ("last", [("l/dim", b"50"), ("l/power", b"ON")]),
        ("first", [("l/power", b"ON"), ("l/dim", b"50")]),
        ("brightness", [("l/dim", b"50")]),
    ],
)
def test_default_light_orders_its_messages_as_home_assistant(on_command_type: str, expected: list[Any]) -> None:
    cfg = _light(on_command_type=on_command_type, **DIMMER)
    sent = cfg.encode_command(LightCommand(on=True, brightness=128))
    assert [(p.topic, p.payload) for p in sent] == expected
    assert cfg.encode_command(LightCommand(on=False)) == [Publish("l/power", b"OFF", qos=1)]


def test_default_light_turned_on_by_brightness_uses_the_last_known_level() -> None:
    cfg = _light(on_command_type="brightness", **DIMMER)
    on = LightCommand(on=True)
    assert cfg.encode_command_from(on, LightState(on=False, brightness=77)) == [Publish("l/dim", b"30", qos=1)]
    assert cfg.encode_command_from(on, LightState(on=False, brightness=0)) == [Publish("l/dim", b"100", qos=1)]
    assert cfg.encode_command_from(on, None) == [Publish("l/dim", b"100", qos=1)]


def test_default_light_reads_separate_and_shared_topics() -> None:
    cfg = _light(**DIMMER, state_value_template="{{ value_json.POWER }}")
    state = cfg.decode_state("l/state", b'{"POWER":"ON"}', None)
    state = cfg.decode_state("l/dim/state", b"40", state)
    assert state == LightState(on=True, brightness=102)
    assert cfg.outcome(LightCommand(on=True, brightness=100), state).status is OutcomeStatus.CONFIRMED
    assert cfg.outcome(LightCommand(on=False), state).status is OutcomeStatus.PENDING
    _error(PayloadInvalid, "payload_out_of_range", cfg.decode_state, "l/dim/state", b"101", state)
    _error(PayloadInvalid, "payload_out_of_range", cfg.decode_state, "l/state", b'{"POWER":"MAYBE"}', state)
    _error(PayloadInvalid, "payload_wrong_type", cfg.decode_state, "l/dim/state", b"true", state)
    # the first report must say on or off: a brightness alone is not a light state yet
    _error(PayloadInvalid, "payload_missing_field", cfg.decode_state, "l/dim/state", b"40", None)


def test_default_light_features_and_limits() -> None:
    plain = _light()
    assert plain.kind is DeviceKind.LIGHT and not plain.dimmable and not plain.has_color_temp
    _error(CommandInvalid, "unsupported_feature", plain.encode_command, LightCommand(on=True, brightness=10))
    _error(CommandInvalid, "unsupported_feature", plain.encode_command, LightCommand(on=True, color_temp_kelvin=3000))
    ct = _light(color_temp_command_topic="l/ct", min_mireds=250, max_mireds=454)
    assert ct.encode_command(LightCommand(color_temp_kelvin=2700)) == [
        Publish("l/ct", b"370", qos=1),
        Publish("l/power", b"ON", qos=1),
    ]
    _error(CommandInvalid, "out_of_range", ct.encode_command, LightCommand(color_temp_kelvin=6500))
    kelvin = _light(color_temp_command_topic="l/ct", color_temp_kelvin=True)
    assert kelvin.encode_command(LightCommand(color_temp_kelvin=2700))[0] == Publish("l/ct", b"2700", qos=1)


@pytest.mark.parametrize(
    "body",
    [
        {"command_template": "{{ value }}"},
        {"brightness_command_template": "{{ value * 2 }}"},
        {"payload_on": "X", "payload_off": "X"},
        {"state_value_template": "{{ value_json.POWER | lower }}"},
    ],
)
def test_default_light_configs_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ConfigInvalid):
        _light(**body)


def test_switch_words_and_outcomes() -> None:
    cfg = _switch(payload_on="on", payload_off="off")
    assert cfg.kind is DeviceKind.SWITCH and cfg.component is Component.SWITCH
    assert cfg.encode_command(SwitchCommand(on=True)) == [Publish("s/set", b"on", qos=1)]
    state = cfg.decode_state("s", b"off", None)
    assert state == SwitchState(on=False)
    assert cfg.outcome(SwitchCommand(on=True), state).status is OutcomeStatus.PENDING
    assert cfg.outcome(SwitchCommand(on=False), state).status is OutcomeStatus.CONFIRMED
    _error(PayloadInvalid, "payload_out_of_range", cfg.decode_state, "s", b"ON", None)
    _error(CommandInvalid, "wrong_kind", cfg.encode_command, LightCommand(on=True))
    # state_on/state_off, when given, are what the device reports
    reported = _switch(state_on="POWER_ON", state_off="POWER_OFF")
    assert reported.decode_state("s", b"POWER_ON", None) == SwitchState(on=True)
    assert reported.encode_command(SwitchCommand(on=False)) == [Publish("s/set", b"OFF", qos=1)]


def test_switch_with_json_boolean_words_as_z_wave_js_ui_announces() -> None:
    cfg = _switch(payload_on=True, payload_off=False, value_template="{{ value_json.value }}")
    assert cfg.encode_command(SwitchCommand(on=True)) == [Publish("s/set", b"true", qos=1)]
    assert cfg.decode_state("s", b'{"time":1,"value":true}', None) == SwitchState(on=True)
    assert cfg.decode_state("s", b'{"time":1,"value":false}', None) == SwitchState(on=False)
    # the string "true" is not the JSON boolean it was announced as
    _error(PayloadInvalid, "payload_out_of_range", cfg.decode_state, "s", b'{"value":"yes"}', None)


def test_lock_with_numeric_words_as_z_wave_js_ui_announces() -> None:
    body: dict[str, Any] = {"command_topic": "d/set", "state_topic": "d", "value_template": "{{ value_json.value }}"}
    body |= {"state_locked": 255, "state_unlocked": 0, "payload_lock": 255, "payload_unlock": 0}
    cfg = parse_config(Component.LOCK, json.dumps(body).encode())
    assert isinstance(cfg, LockConfig)
    assert cfg.encode_command(LockCommand(action="unlock")) == [Publish("d/set", b"0", qos=1)]
    assert cfg.decode_state("d", b'{"value":255}', None) == LockState(status=LockStatus.LOCKED)
    _error(PayloadInvalid, "payload_out_of_range", cfg.decode_state, "d", b'{"value":"255x"}', None)


@pytest.mark.parametrize("truthy", ["yes", "true", 1, "on", None])
def test_commands_take_no_truthy_strings(truthy: object) -> None:
    for model in (LightCommand, SwitchCommand):
        with pytest.raises(ValidationError):
            model.model_validate({"on": truthy})


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (ClimateCommand, {"target_temperature": "21"}),
        (ClimateCommand, {"target_temperature": True}),
        (ClimateCommand, {"mode": 1}),
        (LockCommand, {"action": True}),
        (LightCommand, {"brightness": "128"}),
        (LightCommand, {"brightness": 128.0}),
    ],
)
def test_commands_take_no_strings_for_numbers_nor_numbers_for_words(model: type[Any], body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(body)
    assert ClimateCommand.model_validate({"target_temperature": 21}).target_temperature == 21.0


@pytest.mark.parametrize(
    ("template", "payload", "word"),
    [
        ("{{'online' if value_json.value else 'offline'}}", b'{"value":true}', "online"),
        ("{{'online' if value_json.value else 'offline'}}", b'{"value":0}', "offline"),
        ("{{'true' if value_json.value else 'false'}}", b'{"value":false}', "false"),
        ('{{ "OFF" if value_json.value == 0 else "ON" }}', b'{"value":0}', "OFF"),
        ('{{ "OFF" if value_json.value == 0 else "ON" }}', b'{"value":0.0}', "OFF"),
        ('{{ "OFF" if value_json.value == 0 else "ON" }}', b'{"value":false}', "ON"),
        ('{{ "OFF" if value_json.value == 0 else "ON" }}', b'{"value":37}', "ON"),
        ('{{ {0: "off", 1: "heat"}[value_json.value] | default(\'off\') }}', b'{"value":1}', "heat"),
        ('{{ {0: "off", 1: "heat"}[value_json.value] | default(\'off\') }}', b'{"value":9}', "off"),
        ('{{ {0: "off", 1: "heat"}[value_json.value] | default(\'off\') }}', b'{"value":"1"}', "off"),
        ('{{ "offline" }}', b'{"state":"online"}', "offline"),
        ("", b"21.5", "21.5"),
    ],
)
def test_word_choosing_templates(template: str, payload: bytes, word: str) -> None:
    assert parse_template(template).extract(payload) == word


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'a' if value_json.v > 0 else 'b' }}",
        "{{ 'a' if value_json.v == x else 'b' }}",
        "{{ 'a' if states('x') else 'b' }}",
        "{{ {0: off}[value_json.v] | default('off') }}",
        "{{ {0: 'a'}[value_json.v] | default(value_json.v) }}",
        "{{ {0: 'a'}[value_json.v] }}",
        "{{ offline }}",
        "{% if value_json.White %}color_temp{% else %}hs{% endif %}",
    ],
)
def test_other_templates_refused(template: str) -> None:
    with pytest.raises(ConfigInvalid):
        parse_template(template)
