"""The codecs' fast paths agree with the checked ones: the same states from the same reports, the same refusals
(code and message) for bad ones, and state equality as pydantic's."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from devices import (
    ClimateState,
    Component,
    DeviceCodecError,
    EntityState,
    LightConfig,
    LightState,
    LockState,
    LockStatus,
    PayloadInvalid,
    SensorState,
    parse_config,
)
from devices import light as light_module
from devices.base import first_error, load_json_object, same_state
from devices.limits import MAX_PAYLOAD_BYTES
from gateway.core.journal import StateData

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _checked_wire(payload: bytes) -> Any:
    """The light's wire body read the checked way only (json.loads, then validation): the reference."""
    body = load_json_object(payload)
    try:
        return light_module._LightWire.model_validate(body)
    except ValidationError as exc:
        raise PayloadInvalid(first_error(exc)[1], code="payload_wrong_type") from exc


def _light(**extra: Any) -> LightConfig:
    body = {"schema": "json", "command_topic": "l/set", "state_topic": "l/state", "brightness": True}
    body["supported_color_modes"] = ["color_temp"]
    config = parse_config(Component.LIGHT, json.dumps({**body, **extra}).encode())
    assert isinstance(config, LightConfig)
    return config


def _outcome(config: LightConfig, payload: bytes, previous: EntityState | None) -> tuple[object, ...]:
    try:
        return ("state", config.decode_state("l/state", payload, previous))
    except DeviceCodecError as exc:
        return ("refused", exc.code, str(exc))


def _both(config: LightConfig, payload: bytes, previous: EntityState | None) -> None:
    fast = _outcome(config, payload, previous)
    with mock.patch.object(light_module, "_parse_wire", _checked_wire):
        checked = _outcome(config, payload, previous)
    assert fast == checked, payload


EDGES = [
    b'{"state":"ON","brightness":3,"color_mode":"color_temp","color_temp":370}',
    b'{"state":"OFF"}',
    b'\xef\xbb\xbf{"state":"ON"}',  # a UTF-8 BOM: not JSON to json.loads
    b'{"state":"ON","state":"OFF"}',
    b'{"state":"ON","brightness":true}',
    b'{"state":"ON","brightness":"12"}',
    b'{"state":"ON","brightness":NaN}',
    b'{"state":"ON","brightness":1e400}',
    b'{"state":"ON","color_temp":Infinity}',
    b'{"state":"ON","color_temp":"inf"}',
    b'{"state":"ON","brightness":123456789012345678901234567890}',
    b'{"state":"ON","x":"\xff"}',  # not UTF-8
    b'{"state":"ON","x":"\\ud800"}',  # a lone surrogate escape: json.loads takes it
    b'{"state":"ON"} x',
    b'{"state":"ON"}\x00',
    b"[]",
    b'"ON"',
    b"",
    b"ON",
    b'{"state":"on"}',
    b'{"state":null,"brightness":4}',
    b'{"state":"ON","brightness":-1}',
    b'{"state":"ON","brightness":256}',
    b'{"state":"ON","color_temp":0}',
    b'{"state":"ON","a":' + b"[" * 3000 + b"]" * 3000 + b"}",
    b'{"state":"ON","pad":"' + b"x" * MAX_PAYLOAD_BYTES + b'"}',  # oversized
    b' \t{"state":"ON"}\r\n',
]

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
FIELD_VALUES = (
    JSON_VALUES
    | st.sampled_from(["ON", "OFF", "on", "12", " 7 ", "1_0", "0x10", "nan", "Infinity", "-0"])
    | st.floats(-1e6, 1e6)
    | st.integers(-10, 70_000)
)


@st.composite
def light_bodies(draw: st.DrawFn) -> bytes:
    body = {
        key: draw(FIELD_VALUES)
        for key in draw(st.lists(st.sampled_from(["state", "brightness", "color_temp", "color_mode", "x"]), max_size=4))
    }
    text = json.dumps(body, allow_nan=True, ensure_ascii=draw(st.booleans()))
    raw = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):  # and sometimes damaged
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(max_size=3)) + raw[at + draw(st.integers(0, 2)) :]
    return raw


def test_light_fast_path_gives_the_checked_outcome_on_edge_cases() -> None:
    configs = [_light(), _light(brightness_scale=100), _light(color_temp_kelvin=True)]
    previous: list[EntityState | None] = [None, LightState(on=True, brightness=9, color_temp_kelvin=2700)]
    for payload in EDGES:
        for config in configs:
            for prev in previous:
                _both(config, payload, prev)


@SETTINGS
@given(light_bodies(), st.sampled_from([255, 100, 1000]), st.booleans(), st.booleans())
def test_light_fast_path_gives_the_checked_outcome(payload: bytes, scale: int, kelvin: bool, known: bool) -> None:
    previous = LightState(on=False, brightness=1, color_temp_kelvin=3000) if known else None
    _both(_light(brightness_scale=scale, color_temp_kelvin=kelvin), payload, previous)


STATES = st.one_of(
    st.builds(LightState, on=st.booleans(), brightness=st.none() | st.integers(0, 2)),
    st.builds(LockState, status=st.sampled_from([LockStatus.LOCKED, LockStatus.UNLOCKED])),
    st.builds(ClimateState, mode=st.sampled_from([None, "heat"]), current_temperature=st.sampled_from([None, 1.0, 1])),
    st.builds(SensorState, value=st.sampled_from([1, 1.0, "1", "é", float("nan")])),
)


@SETTINGS
@given(st.none() | STATES, st.none() | STATES)
def test_same_state_is_equality(a: EntityState | None, b: EntityState | None) -> None:
    assert same_state(a, b) == (a == b)
    assert same_state(a, a) == (a == a)  # noqa: PLR0124 - NaN: as pydantic says


@SETTINGS
@given(STATES.filter(lambda s: not isinstance(s, SensorState) or s.value == s.value))  # no NaN: a codec refuses it
def test_state_event_data_is_the_states_json(state: EntityState) -> None:
    data = StateData(state)
    assert data.json() == state.model_dump_json()
    assert dict(data) == state.model_dump(mode="json") == json.loads(data.json())
