"""Property tests for the device codecs: round trips, command confirmation and robustness."""

from __future__ import annotations

import json
import math
import string
from collections.abc import Callable
from functools import partial
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices import (
    CONFIG_MODELS,
    BinarySensorConfig,
    BinarySensorState,
    ClimateCommand,
    ClimateConfig,
    ClimateState,
    Component,
    DeviceCodecError,
    EntityConfig,
    EntityState,
    LightCommand,
    LightConfig,
    LightState,
    LockCommand,
    LockConfig,
    LockState,
    LockStatus,
    OutcomeStatus,
    SensorConfig,
    SensorState,
    parse_config,
    parse_discovery_topic,
    parse_template,
)
from devices.climate import HvacMode
from devices.discovery import ABBREVIATIONS

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROBUST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HVAC_MODES: tuple[str, ...] = get_args(HvacMode)
LIGHT_SCALES = st.one_of(st.sampled_from([1, 2, 3, 100, 254, 255, 256, 1000, 65535]), st.integers(1, 65535))

# --- building blocks -----------------------------------------------------------------------------

_SEGMENT = st.text(alphabet=string.ascii_lowercase + string.digits + "_- ", min_size=1, max_size=8)
TOPICS = st.lists(_SEGMENT, min_size=1, max_size=4).map("/".join)
# Text as devices may put it in configs and payloads: any Unicode except lone surrogates (not UTF-8).
TEXT = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=24)
_KEY = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True)
FINITE = st.floats(allow_nan=False, allow_infinity=False)


def _template(path: tuple[str, ...]) -> str:
    return "{{ value_json" + "".join(f".{p}" for p in path) + " }}"


@st.composite
def json_templates(draw: st.DrawFn, key: str) -> tuple[str | None, tuple[str, ...] | None]:
    """Either the raw payload (no template / ``{{ value }}``) or a JSON path ending in ``key``."""
    kind = draw(st.sampled_from(["none", "value", "json"]))
    if kind == "none":
        return None, None
    if kind == "value":
        return "{{ value }}", None
    prefix = draw(st.lists(st.sampled_from(["state", "data", "attrs"]), max_size=2, unique=True))
    path = (*prefix, key)
    return _template(path), path


def _build(component: Component, body: dict[str, Any]) -> EntityConfig:
    return parse_config(component, json.dumps(body).encode())


def _relay(cfg: EntityConfig, state: EntityState) -> EntityState | None:
    """What the gateway reads back after the device publishes ``state`` (None if nothing is published)."""
    out: EntityState | None = None
    for pub in cfg.encode_state(state):
        assert pub.retain
        assert pub.topic in cfg.state_topics()
        out = cfg.decode_state(pub.topic, pub.payload, out)
    return out


# --- lights --------------------------------------------------------------------------------------


@st.composite
def light_configs(draw: st.DrawFn) -> LightConfig:
    body: dict[str, Any] = {"schema": "json", "command_topic": draw(TOPICS) + "/set", "state_topic": draw(TOPICS)}
    if draw(st.booleans()):
        body["brightness"] = draw(st.booleans())
    body["brightness_scale"] = draw(LIGHT_SCALES)
    body["supported_color_modes"] = draw(
        st.lists(st.sampled_from(["onoff", "brightness", "color_temp", "hs", "xy", "white"]), unique=True, max_size=3)
    )
    units = draw(st.sampled_from(["default", "mireds", "kelvin"]))
    if units == "mireds":
        low = draw(st.integers(25, 999))
        body["min_mireds"] = low
        body["max_mireds"] = draw(st.integers(low + 1, 1000))
    elif units == "kelvin":
        body["color_temp_kelvin"] = True
        low = draw(st.integers(1000, 39_999))
        body["min_kelvin"] = low
        body["max_kelvin"] = draw(st.integers(low + 1, 40_000))
    cfg = _build(Component.LIGHT, body)
    assert isinstance(cfg, LightConfig)
    return cfg


@st.composite
def light_states(draw: st.DrawFn, cfg: LightConfig) -> LightState:
    brightness = draw(st.none() | st.integers(0, 255)) if cfg.dimmable else None
    kelvin = draw(st.none() | st.integers(1000, 40_000)) if cfg.has_color_temp else None
    return LightState(on=draw(st.booleans()), brightness=brightness, color_temp_kelvin=kelvin)


@st.composite
def light_commands(draw: st.DrawFn, cfg: LightConfig) -> LightCommand:
    on = draw(st.sampled_from([None, True, False]))
    if on is False:
        return LightCommand(on=False)
    brightness = draw(st.none() | st.integers(1, 255)) if cfg.dimmable else None
    kelvin = None
    if cfg.has_color_temp:
        warm, cold = cfg.kelvin_range
        kelvin = draw(st.none() | st.integers(max(warm, 1000), min(cold, 40_000)))
    if on is None and brightness is None and kelvin is None:
        on = True
    return LightCommand(on=on, brightness=brightness, color_temp_kelvin=kelvin)


def _brightness_close(cfg: LightConfig, got: int | None, want: int) -> bool:
    """Within the documented rounding of the device's brightness scale (exact at 255 steps or more)."""
    if got is None:
        return False
    if cfg.brightness_scale >= 255:
        return got == want
    return abs(got - want) <= 127.5 / cfg.brightness_scale + 0.5


def _kelvin_close(cfg: LightConfig, got: int | None, want: int) -> bool:
    """Exact in kelvin; within half a mired (plus rounding) when the device speaks mireds."""
    if got is None:
        return False
    if cfg.color_temp_kelvin:
        return got == want
    return abs(got - want) <= max(got, want) ** 2 / 2_000_000 + 0.5


@SETTINGS
@given(st.data())
def test_light_state_round_trip(data: st.DataObject) -> None:
    cfg = data.draw(light_configs())
    state = data.draw(light_states(cfg))
    back = _relay(cfg, state)
    assert isinstance(back, LightState)
    assert back.on == state.on
    if state.brightness is None:
        assert back.brightness is None
    else:
        assert _brightness_close(cfg, back.brightness, state.brightness), (state, back)
    if state.color_temp_kelvin is None:
        assert back.color_temp_kelvin is None
    else:
        assert _kelvin_close(cfg, back.color_temp_kelvin, state.color_temp_kelvin), (state, back)
    # once normalised, the state is a fixed point of the wire format
    assert _relay(cfg, back) == back


@SETTINGS
@given(st.data())
def test_light_command_round_trip_is_confirmed(data: st.DataObject) -> None:
    cfg = data.draw(light_configs())
    cmd = data.draw(light_commands(cfg))
    (pub,) = cfg.encode_command(cmd)
    assert pub.topic == cfg.command_topic
    received = cfg.decode_command(pub.topic, pub.payload)
    assert received.on is (cmd.on is not False)
    if cmd.brightness is None:
        assert received.brightness is None
    else:
        assert received.brightness is not None
        assert abs(received.brightness - cmd.brightness) <= max(1, math.ceil(255 / cfg.brightness_scale))
    if cmd.color_temp_kelvin is None:
        assert received.color_temp_kelvin is None
    else:
        assert _kelvin_close(cfg, received.color_temp_kelvin, cmd.color_temp_kelvin)

    # the device applies what it received and reports back; the gateway confirms the original command
    before = data.draw(light_states(cfg))
    after = LightState(
        on=bool(received.on),
        brightness=received.brightness if received.brightness is not None else before.brightness,
        color_temp_kelvin=(
            received.color_temp_kelvin if received.color_temp_kelvin is not None else before.color_temp_kelvin
        ),
    )
    reported = _relay(cfg, after)
    assert isinstance(reported, LightState)
    assert cfg.outcome(cmd, reported).status is OutcomeStatus.CONFIRMED, (cmd, received, reported)
    # and the opposite on/off never confirms
    flipped = reported.model_copy(update={"on": not reported.on})
    assert cfg.outcome(cmd, flipped).status is OutcomeStatus.PENDING


@SETTINGS
@given(light_configs(), st.integers(1, 255))
def test_light_brightness_far_off_is_not_confirmed(cfg: LightConfig, wanted: int) -> None:
    if not cfg.dimmable:
        return
    tolerance = max(1, math.ceil(255 / cfg.brightness_scale))
    far = wanted + tolerance + 1 if wanted + tolerance + 1 <= 255 else wanted - tolerance - 1
    if not 0 <= far <= 255:
        return
    cmd = LightCommand(brightness=wanted)
    assert cfg.outcome(cmd, LightState(on=True, brightness=far)).status is OutcomeStatus.PENDING


# --- locks ---------------------------------------------------------------------------------------

_LOCK_STATE_KEYS = (
    "state_locked",
    "state_unlocked",
    "state_locking",
    "state_unlocking",
    "state_jammed",
    "state_open",
    "state_opening",
)
_LOCK_WORDS = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=64)


@st.composite
def lock_configs(draw: st.DrawFn) -> LockConfig:
    body: dict[str, Any] = {"command_topic": draw(TOPICS) + "/set", "state_topic": draw(TOPICS)}
    if draw(st.booleans()):
        words = draw(st.lists(_LOCK_WORDS, min_size=7, max_size=7, unique=True))
        body.update(zip(_LOCK_STATE_KEYS, words, strict=True))
        body["payload_lock"], body["payload_unlock"] = draw(st.lists(_LOCK_WORDS, min_size=2, max_size=2, unique=True))
    template, _ = draw(json_templates("state"))
    if template is not None:
        body["value_template"] = template
    cfg = _build(Component.LOCK, body)
    assert isinstance(cfg, LockConfig)
    return cfg


@SETTINGS
@given(lock_configs(), st.sampled_from(list(LockStatus)))
def test_lock_state_round_trip(cfg: LockConfig, status: LockStatus) -> None:
    state = LockState(status=status)
    assert _relay(cfg, state) == state


@SETTINGS
@given(lock_configs(), st.sampled_from(["lock", "unlock"]))
def test_lock_command_round_trip_is_confirmed(cfg: LockConfig, action: str) -> None:
    cmd = LockCommand.model_validate({"action": action})
    (pub,) = cfg.encode_command(cmd)
    assert pub.topic == cfg.command_topic
    received = cfg.decode_command(pub.topic, pub.payload)
    assert received == cmd
    target = LockStatus.LOCKED if action == "lock" else LockStatus.UNLOCKED
    for status in LockStatus:
        reported = _relay(cfg, LockState(status=status))
        assert reported is not None
        outcome = cfg.outcome(cmd, reported)
        if status is target:
            assert outcome.status is OutcomeStatus.CONFIRMED
        elif status is LockStatus.JAMMED:
            assert (outcome.status, outcome.reason) == (OutcomeStatus.REFUSED, "device_jammed")
        else:
            assert outcome.status is OutcomeStatus.PENDING


# --- thermostats ---------------------------------------------------------------------------------

_CLIMATE_FIELDS = {
    # field: (state topic key, state template key, command topic key or None)
    "mode": ("mode_state_topic", "mode_state_template", "mode_command_topic"),
    "target_temperature": ("temperature_state_topic", "temperature_state_template", "temperature_command_topic"),
    "current_temperature": ("current_temperature_topic", "current_temperature_template", None),
    "fan_mode": ("fan_mode_state_topic", "fan_mode_state_template", "fan_mode_command_topic"),
}
_CLIMATE_WORDS = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=32)


@st.composite
def climate_configs(draw: st.DrawFn) -> ClimateConfig:
    base = draw(TOPICS)
    shared = base + "/state"
    body: dict[str, Any] = {}
    for name, (state_key, template_key, command_key) in _CLIMATE_FIELDS.items():
        how = draw(st.sampled_from(["absent", "raw", "json_own", "json_shared"]))
        if how == "raw":
            body[state_key] = f"{base}/{name}"
            if draw(st.booleans()):
                body[template_key] = "{{ value }}"
        elif how == "json_own":
            body[state_key] = f"{base}/{name}/json"
            body[template_key] = _template(("data", name))
        elif how == "json_shared":
            body[state_key] = shared
            nested = draw(st.booleans())
            body[template_key] = _template(("setpoints", name) if nested else (name,))
        if command_key is not None and draw(st.booleans()):
            body[command_key] = f"{base}/{name}/set"
    body["modes"] = draw(st.lists(st.sampled_from(HVAC_MODES) | _CLIMATE_WORDS, min_size=1, max_size=8, unique=True))
    body["fan_modes"] = draw(st.lists(_CLIMATE_WORDS, min_size=1, max_size=5, unique=True))
    unit = draw(st.sampled_from(["C", "F"]))
    body["temperature_unit"] = unit
    step = draw(st.sampled_from([0.1, 0.5, 1.0, 2.0]))
    body["temp_step"] = step
    # limits inside the range of readings the gateway accepts back (-60..150)
    low = draw(st.integers(-40, 100))
    body["min_temp"] = low
    body["max_temp"] = low + step * draw(st.integers(1, int((150 - low) / step)))
    cfg = _build(Component.CLIMATE, body)
    assert isinstance(cfg, ClimateConfig)
    return cfg


def _plausible() -> st.SearchStrategy[float]:
    return st.floats(min_value=-60, max_value=150, allow_nan=False)


@st.composite
def climate_states(draw: st.DrawFn, cfg: ClimateConfig) -> ClimateState:
    readers = cfg.readers()
    values: dict[str, Any] = {"unit": cfg.temperature_unit}
    if "mode" in readers:
        values["mode"] = draw(st.none() | st.sampled_from(cfg.modes))
    if "fan_mode" in readers:
        values["fan_mode"] = draw(st.none() | st.sampled_from(cfg.fan_modes))
    for name in ("target_temperature", "current_temperature"):
        if name in readers:
            values[name] = draw(st.none() | _plausible())
    return ClimateState.model_validate(values)


@SETTINGS
@given(st.data())
def test_climate_state_round_trip(data: st.DataObject) -> None:
    cfg = data.draw(climate_configs())
    state = data.draw(climate_states(cfg))
    back = _relay(cfg, state)
    if back is None:
        assert (state.mode, state.target_temperature, state.current_temperature, state.fan_mode) == (None,) * 4
    else:
        assert back == state


@SETTINGS
@given(st.data())
def test_climate_partial_reports_keep_previous_fields(data: st.DataObject) -> None:
    cfg = data.draw(climate_configs())
    full = data.draw(climate_states(cfg))
    previous = _relay(cfg, full)
    if previous is None:
        return
    update = data.draw(climate_states(cfg))
    after = previous
    for pub in cfg.encode_state(update):
        after = cfg.decode_state(pub.topic, pub.payload, after)
    expected = {**previous.model_dump(), **{k: v for k, v in update.model_dump().items() if v is not None}}
    assert after.model_dump() == expected


@st.composite
def climate_commands(draw: st.DrawFn, cfg: ClimateConfig) -> ClimateCommand:
    fields: dict[str, Any] = {}
    allowed_modes = [m for m in cfg.modes if m in HVAC_MODES]
    if cfg.mode_command_topic and allowed_modes and draw(st.booleans()):
        fields["mode"] = draw(st.sampled_from(allowed_modes))
    if cfg.temperature_command_topic and draw(st.booleans()):
        steps = round((cfg.max_temperature - cfg.min_temperature) / cfg.temp_step)
        fields["target_temperature"] = cfg.min_temperature + cfg.temp_step * draw(st.integers(0, steps))
    if cfg.fan_mode_command_topic and draw(st.booleans()):
        fields["fan_mode"] = draw(st.sampled_from(cfg.fan_modes))
    if not fields:
        fields["mode"] = "off"  # may well be refused: not every config can take a command
    return ClimateCommand.model_validate(fields)


@SETTINGS
@given(st.data())
def test_climate_command_round_trip_is_confirmed(data: st.DataObject) -> None:
    cfg = data.draw(climate_configs())
    cmd = data.draw(climate_commands(cfg))
    try:
        pubs = cfg.encode_command(cmd)
    except DeviceCodecError as exc:
        assert exc.code in {"out_of_range", "unsupported_feature"}
        assert cmd.mode == "off"
        return
    assert len({p.topic for p in pubs}) == len(pubs)
    assert {p.topic for p in pubs} <= cfg.command_topics()
    received: dict[str, Any] = {}
    for pub in pubs:
        part = cfg.decode_command(pub.topic, pub.payload)
        received.update(part.model_dump(exclude_none=True))
    assert set(received) == set(cmd.model_dump(exclude_none=True))
    assert received.get("mode") == cmd.mode
    assert received.get("fan_mode") == cmd.fan_mode
    if cmd.target_temperature is not None:
        assert abs(received["target_temperature"] - cmd.target_temperature) <= 1e-3

    readers = cfg.readers()
    before = data.draw(climate_states(cfg))
    applied = before.model_copy(update={k: v for k, v in received.items() if k in readers})
    reported = _relay(cfg, applied)
    if all(name in readers for name in received):
        assert reported is not None
        assert cfg.outcome(cmd, reported).status is OutcomeStatus.CONFIRMED, (cmd, received, reported)
    elif reported is not None:
        # a field the thermostat never reports can never be confirmed; the command times out
        assert cfg.outcome(cmd, reported).status is OutcomeStatus.PENDING


@SETTINGS
@given(climate_configs(), FINITE)
def test_climate_target_outside_limits_refused(cfg: ClimateConfig, target: float) -> None:
    if cfg.temperature_command_topic is None:
        return
    cmd = ClimateCommand(target_temperature=target)
    inside = cfg.min_temperature <= target <= cfg.max_temperature
    steps = (target - cfg.min_temperature) / cfg.temp_step
    on_step = abs(steps - round(steps)) <= 1e-6 if inside else False
    try:
        (pub,) = cfg.encode_command(cmd)
    except DeviceCodecError as exc:
        assert exc.code == "out_of_range"
        assert exc.field == "target_temperature"
        assert not on_step
    else:
        assert on_step
        assert pub.topic == cfg.temperature_command_topic


# --- sensors -------------------------------------------------------------------------------------


@st.composite
def sensor_configs(draw: st.DrawFn) -> SensorConfig:
    body: dict[str, Any] = {"state_topic": draw(TOPICS)}
    device_class = draw(st.sampled_from([None, "battery", "temperature", "humidity"]))
    if device_class is not None:
        body["device_class"] = device_class
    if draw(st.booleans()):
        body["unit_of_measurement"] = draw(st.sampled_from(["%", "°C", "°F", "lx"]))
    template, _ = draw(json_templates("reading"))
    if template is not None:
        body["value_template"] = template
    cfg = _build(Component.SENSOR, body)
    assert isinstance(cfg, SensorConfig)
    return cfg


@st.composite
def sensor_states(draw: st.DrawFn, cfg: SensorConfig) -> SensorState:
    kind = cfg.device_class
    value: float | str
    if kind == "battery":
        value = draw(st.floats(0, 100))
    elif kind == "temperature":
        value = draw(_plausible())
    elif cfg.value_path.json and draw(st.booleans()):
        value = draw(FINITE)
    else:
        # a sensor without a numeric device class read from a plain payload reports text
        value = draw(st.text(alphabet=st.characters(codec="utf-8"), max_size=255))
    return SensorState(value=value, unit=cfg.unit_of_measurement)


@SETTINGS
@given(st.data())
def test_sensor_state_round_trip(data: st.DataObject) -> None:
    cfg = data.draw(sensor_configs())
    state = data.draw(sensor_states(cfg))
    assert _relay(cfg, state) == state


@st.composite
def binary_configs(draw: st.DrawFn) -> BinarySensorConfig:
    body: dict[str, Any] = {"state_topic": draw(TOPICS)}
    if draw(st.booleans()):
        body["payload_on"], body["payload_off"] = draw(
            st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=64), min_size=2, max_size=2, unique=True)
        )
    if draw(st.booleans()):
        body["device_class"] = draw(st.sampled_from(["moisture", "door", "window", "smoke"]))
    template, _ = draw(json_templates("contact"))
    if template is not None:
        body["value_template"] = template
    cfg = _build(Component.BINARY_SENSOR, body)
    assert isinstance(cfg, BinarySensorConfig)
    return cfg


@SETTINGS
@given(binary_configs(), st.booleans())
def test_binary_sensor_state_round_trip(cfg: BinarySensorConfig, on: bool) -> None:
    state = BinarySensorState(on=on)
    assert _relay(cfg, state) == state


@SETTINGS
@given(
    st.one_of(sensor_configs(), binary_configs()), st.builds(LockCommand, action=st.sampled_from(["lock", "unlock"]))
)
def test_sensors_take_no_commands(cfg: EntityConfig, cmd: LockCommand) -> None:
    try:
        cfg.encode_command(cmd)
    except DeviceCodecError as exc:
        assert exc.code == "not_commandable"
    else:
        raise AssertionError("a sensor accepted a command")
    assert cfg.command_topics() == frozenset()


# --- config identity -----------------------------------------------------------------------------


@st.composite
def enveloped(draw: st.DrawFn, cfg: EntityConfig) -> EntityConfig:
    """Add the fields every component shares (names, device, availability, qos) and re-parse."""
    body = json.loads(cfg.to_payload())
    if draw(st.booleans()):
        body["name"] = draw(TEXT)
        body["unique_id"] = draw(TEXT)
    if draw(st.booleans()):
        device: dict[str, Any] = {"identifiers": draw(st.lists(TEXT, max_size=3))}
        if draw(st.booleans()):
            device["manufacturer"] = draw(TEXT)
            device["model"] = draw(TEXT)
            device["sw_version"] = draw(TEXT)
        body["device"] = device
    if draw(st.booleans()):
        body["availability_topic"] = draw(TOPICS)
        body["payload_available"] = draw(TEXT)
    if draw(st.booleans()):
        entries = []
        for _ in range(draw(st.integers(1, 3))):
            entry: dict[str, Any] = {"topic": draw(TOPICS)}
            if draw(st.booleans()):
                entry["value_template"] = _template(("state",))
            if draw(st.booleans()):
                entry["payload_not_available"] = draw(TEXT)
            entries.append(entry)
        body["availability"] = entries
        body["availability_mode"] = draw(st.sampled_from(["all", "any", "latest"]))
    body["qos"] = draw(st.integers(0, 2))
    body["retain"] = draw(st.booleans())
    if draw(st.booleans()):
        body["expire_after"] = draw(st.integers(0, 86_400))
    return parse_config(cfg.component, json.dumps(body).encode())


ANY_CONFIG = st.one_of(light_configs(), lock_configs(), climate_configs(), sensor_configs(), binary_configs())


@SETTINGS
@given(st.data())
def test_config_payload_round_trip_is_identity(data: st.DataObject) -> None:
    cfg = data.draw(enveloped(data.draw(ANY_CONFIG)))
    payload = cfg.to_payload()
    again = parse_config(cfg.component, payload)
    assert again == cfg
    assert type(again) is type(cfg)
    assert again.to_payload() == payload


@st.composite
def abbreviated(draw: st.DrawFn, cfg: EntityConfig) -> bytes:
    """The same config as a device might send it: HA abbreviations and a ``~`` base topic."""
    short = {long: short for short, long in ABBREVIATIONS.items()}
    body: dict[str, Any] = json.loads(cfg.to_payload())
    base = draw(TOPICS)
    out: dict[str, Any] = {"~": base}
    for key, value in body.items():
        new_value = value
        if (key == "topic" or key.endswith("_topic")) and isinstance(value, str) and value.startswith(base):
            new_value = "~" + value[len(base) :]
        out[short.get(key, key) if draw(st.booleans()) else key] = new_value
    return json.dumps(out).encode()


@SETTINGS
@given(st.data())
def test_abbreviated_config_parses_the_same(data: st.DataObject) -> None:
    cfg = data.draw(ANY_CONFIG)
    payload = data.draw(abbreviated(cfg))
    assert parse_config(cfg.component, payload) == cfg


# --- robustness: only codec errors ever escape --------------------------------------------------

_ALL_KEYS = sorted(
    {k for model in CONFIG_MODELS.values() for k in model.model_fields}
    | set(ABBREVIATIONS)
    | {"schema", "~", "avty", "dev", "t"}
)
_WEIRD_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),  # beyond float range from 10**309
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(
        ["json", "~", "~/x", "a/+/b", "#", "{{ value }}", "{{ value_json.a }}", "{{ x | y }}", "ON", "heat", "\ud800"]
    ),
)
JSONISH: st.SearchStrategy[Any] = st.recursive(
    _WEIRD_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_ALL_KEYS) | _KEY, inner, max_size=4),
    max_leaves=12,
)
CONFIG_BODIES = st.dictionaries(st.sampled_from(_ALL_KEYS), JSONISH, max_size=12)


def _only_codec_errors(fn: Callable[[], object]) -> None:
    try:
        fn()
    except DeviceCodecError as exc:
        assert isinstance(exc.code, str)
        assert exc.code
        str(exc)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


# JSON nested deeper than the interpreter's recursion limit
DEEP = st.builds(lambda n, opener: opener * n, st.integers(1_000, 30_000), st.sampled_from([b"[", b'{"a":']))

PAYLOADS = st.one_of(
    st.binary(max_size=200),
    DEEP,
    JSONISH.map(_dumps),
    st.dictionaries(_KEY | st.sampled_from(["state", "brightness", "color_temp", "data", "reading"]), JSONISH).map(
        _dumps
    ),
    st.text(max_size=50).map(lambda s: s.encode("utf-8", "surrogatepass")),
)


@ROBUST
@given(st.sampled_from(list(Component)), st.binary(max_size=300))
def test_parse_config_arbitrary_bytes(component: Component, payload: bytes) -> None:
    _only_codec_errors(lambda: parse_config(component, payload))


@ROBUST
@given(st.sampled_from(list(Component)), CONFIG_BODIES)
def test_parse_config_arbitrary_json(component: Component, body: dict[str, Any]) -> None:
    def run() -> None:
        cfg = parse_config(component, _dumps(body))
        # whatever parses must also serialise and re-parse to itself
        assert parse_config(component, cfg.to_payload()) == cfg

    _only_codec_errors(run)


# values that break naive arithmetic and text handling
EXTREMES = st.sampled_from([math.inf, -math.inf, math.nan, 5e-324, 1e308, -1e308, 10**400, "\udc80"])
READ_VALUES = st.one_of(EXTREMES, _WEIRD_SCALARS, JSONISH)


@st.composite
def targeted(draw: st.DrawFn, cfg: EntityConfig) -> tuple[str, bytes]:
    """A state topic of ``cfg`` and a payload carrying arbitrary values where the config reads them."""
    if isinstance(cfg, LightConfig):
        assert cfg.state_topic is not None
        # one hostile field at a time, so that it is the one the codec has to deal with
        body: dict[str, Any] = {"state": draw(st.sampled_from(["ON", "OFF"]))}
        if draw(st.booleans()):
            body["brightness"] = draw(st.integers(0, cfg.brightness_scale))
        if draw(st.booleans()):
            body["color_temp"] = draw(st.integers(153, 500))
        hostile = draw(st.sampled_from(["state", "brightness", "color_temp", "color_mode"]))
        body[hostile] = draw(st.one_of(EXTREMES, st.floats(), st.integers(), READ_VALUES))
        if draw(st.booleans()) and hostile != "state":
            del body["state"]
        return cfg.state_topic, _dumps(body)
    if isinstance(cfg, ClimateConfig):
        readers = cfg.readers()
        if not readers:
            return "none", b"{}"
        topic, path = readers[draw(st.sampled_from(sorted(readers)))]
    elif isinstance(cfg, LockConfig | SensorConfig | BinarySensorConfig):
        assert cfg.state_topic is not None
        topic, path = cfg.state_topic, cfg.value_path
    else:
        raise TypeError(type(cfg))
    if not path.json:
        as_text = JSONISH.map(lambda v: str(v).encode("utf-8", "surrogatepass"))
        return topic, draw(st.one_of(as_text, st.binary(max_size=40), DEEP))
    doc: Any = draw(EXTREMES if draw(st.booleans()) else READ_VALUES)
    for key in reversed(path.path):
        doc = {key: doc}
    return topic, _dumps(doc)


CONFIG_FAMILIES: dict[str, st.SearchStrategy[Any]] = {
    "light": light_configs(),
    "lock": lock_configs(),
    "climate": climate_configs(),
    "sensor": sensor_configs(),
    "binary_sensor": binary_configs(),
}


@pytest.mark.parametrize("family", sorted(CONFIG_FAMILIES))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decode_state_values_at_the_read_paths(family: str, data: st.DataObject) -> None:
    cfg: EntityConfig = data.draw(CONFIG_FAMILIES[family])
    topic, payload = data.draw(targeted(cfg))
    _only_codec_errors(partial(cfg.decode_state, topic, payload, None))
    for cmd_topic in sorted(cfg.command_topics()):
        _only_codec_errors(partial(cfg.decode_command, cmd_topic, payload))


@ROBUST
@given(ANY_CONFIG, PAYLOADS, st.booleans())
def test_decode_state_arbitrary_payloads(cfg: EntityConfig, payload: bytes, own_topic: bool) -> None:
    topics = sorted(cfg.state_topics()) or ["elsewhere"]
    for topic in topics if own_topic else ["elsewhere/topic"]:
        _only_codec_errors(partial(cfg.decode_state, topic, payload, None))
    for entry in cfg.availability_entries():
        assert entry.decode(payload) in {True, False, None}


@ROBUST
@given(ANY_CONFIG, PAYLOADS)
def test_decode_state_with_previous_and_decode_command(cfg: EntityConfig, payload: bytes) -> None:
    for topic in sorted(cfg.state_topics() | cfg.command_topics()):
        _only_codec_errors(partial(cfg.decode_state, topic, payload, LightState(on=True)))
        _only_codec_errors(partial(cfg.decode_command, topic, payload))


@ROBUST
@given(
    ANY_CONFIG,
    st.one_of(
        st.builds(
            LightCommand,
            on=st.sampled_from([None, True]),
            brightness=st.none() | st.integers(1, 255),
            color_temp_kelvin=st.integers(1000, 40_000),
        ),
        st.builds(LockCommand, action=st.sampled_from(["lock", "unlock"])),
        st.builds(
            ClimateCommand,
            mode=st.sampled_from(HVAC_MODES),
            target_temperature=st.none() | FINITE,
            fan_mode=st.none() | _CLIMATE_WORDS,
        ),
    ),
)
def test_encode_command_refuses_only_with_codec_errors(cfg: EntityConfig, cmd: Any) -> None:
    def run() -> None:
        for pub in cfg.encode_command(cmd):
            assert pub.topic in cfg.command_topics()
            pub.topic.encode()
        cfg.outcome(cmd, LockState(status=LockStatus.JAMMED))

    _only_codec_errors(run)


@ROBUST
@given(
    st.sampled_from(["homeassistant", "ha", "bldg/7/ha", ""]),
    st.one_of(
        st.text(max_size=80),
        st.lists(
            st.sampled_from(["homeassistant", "light", "lock", "climate", "sensor", "config", "+", "#", "", "x\n"])
            | st.text(max_size=10),
            max_size=6,
        ).map("/".join),
        st.binary(max_size=80).map(lambda b: b.decode("utf-8", "surrogateescape")),
    ),
)
def test_parse_discovery_topic_arbitrary_text(prefix: str, topic: str) -> None:
    try:
        key = parse_discovery_topic(prefix, topic)
    except DeviceCodecError as exc:
        assert exc.code in {"topic_invalid", "unknown_component"}
    else:
        assert topic == f"{prefix}/{key.key}/config"
        assert all(i.isascii() and i.isprintable() and "/" not in i for i in (key.node_id or "", key.object_id))


_TEMPLATE_PIECES = st.sampled_from(
    ["{{", "}}", " ", "value", "value_json", ".", "a", "_b1", "[", "]", "'", '"', "x y", "|", "int", "0", "\n", "{%"]
)


@ROBUST
@given(
    st.one_of(
        st.text(max_size=60),
        st.lists(_TEMPLATE_PIECES, max_size=12).map("".join),
        st.binary(max_size=60).map(lambda b: b.decode("utf-8", "surrogateescape")),
    ),
    PAYLOADS,
)
def test_parse_template_arbitrary_text(template: str, payload: bytes) -> None:
    try:
        path = parse_template(template)
    except DeviceCodecError as exc:
        assert exc.code == "unsupported_template"
        return
    _only_codec_errors(lambda: path.extract(payload))
    if path.json:
        assert path.extract(path.render(12.5)) == 12.5
    else:
        assert path.extract(path.render("ON")) == "ON"
