"""Lights: on/off, brightness and colour temperature, on Home Assistant's JSON light schema (the default schema's
lights are in ``light_default``; both share the state and command models here)."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .base import (
    CONFIRMED,
    PENDING,
    Command,
    Component,
    DeviceKind,
    EntityConfig,
    EntityState,
    Outcome,
    Publish,
    StateKeys,
    Topic,
    first_error,
    load_json_object,
)
from .errors import CommandInvalid, PayloadInvalid
from .limits import MAX_PAYLOAD_BYTES

__all__ = [
    "LightCommand",
    "LightConfig",
    "LightState",
    "expect_light_command",
    "finite_round",
    "kelvin_range",
    "light_outcome",
]

_DIMMABLE_MODES = frozenset({"brightness", "color_temp", "hs", "xy", "rgb", "rgbw", "rgbww", "white"})
_KELVIN_DEFAULT = (2000, 6535)


class LightState(EntityState):
    """A light's state; brightness on Home Assistant's 0-255 scale, colour temperature in kelvin."""

    on: bool
    brightness: Annotated[int, Field(ge=0, le=255)] | None = None
    color_temp_kelvin: Annotated[int, Field(ge=1000, le=40000)] | None = None


class LightCommand(Command):
    """Turn on/off, dim (1-255) and/or set colour temperature (kelvin); at least one field."""

    on: bool | None = None
    brightness: Annotated[int, Field(ge=1, le=255)] | None = None
    color_temp_kelvin: Annotated[int, Field(ge=1000, le=40000)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> LightCommand:
        if self.on is None and self.brightness is None and self.color_temp_kelvin is None:
            raise ValueError("a light command needs at least one of on, brightness, color_temp_kelvin")
        if self.on is False and (self.brightness is not None or self.color_temp_kelvin is not None):
            raise ValueError("brightness and colour temperature cannot be set while turning the light off")
        return self


class _LightWire(BaseModel):
    """The JSON light schema's state/command body, as it arrives."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    state: Literal["ON", "OFF"] | None = None
    brightness: Annotated[float, Field(ge=0)] | None = None
    color_temp: Annotated[float, Field(gt=0)] | None = None


class LightConfig(EntityConfig):
    """Discovery config of an MQTT light using ``schema: json``."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    component: ClassVar[Component] = Component.LIGHT
    state_model: ClassVar[type[EntityState]] = LightState
    command_model: ClassVar[type[Command] | None] = LightCommand

    schema_: Literal["json"] = Field(alias="schema")
    command_topic: Topic
    state_topic: Topic | None = None
    brightness: bool = False
    brightness_scale: Annotated[int, Field(ge=1, le=65535)] = 255
    supported_color_modes: tuple[Annotated[str, Field(max_length=16)], ...] = ()
    color_temp_kelvin: bool = False
    min_mireds: Annotated[int, Field(ge=1, le=1000)] | None = None
    max_mireds: Annotated[int, Field(ge=1, le=1000)] | None = None
    min_kelvin: Annotated[int, Field(ge=1000, le=40000)] | None = None
    max_kelvin: Annotated[int, Field(ge=1000, le=40000)] | None = None

    @model_validator(mode="after")
    def _check_range(self) -> LightConfig:
        warm, cold = self.kelvin_range
        if warm > cold:
            raise ValueError(f"colour temperature range {warm}..{cold} K is empty")
        return self

    def payload_constants(self) -> dict[str, Any]:
        """The schema key is required on the wire (HA's default schema is not JSON)."""
        return {"schema": "json"}

    @property
    def kind(self) -> DeviceKind:
        """Always a light."""
        return DeviceKind.LIGHT

    @property
    def dimmable(self) -> bool:
        """Whether the light takes a brightness."""
        return self.brightness or bool(_DIMMABLE_MODES.intersection(self.supported_color_modes))

    @property
    def has_color_temp(self) -> bool:
        """Whether the light takes a colour temperature."""
        return "color_temp" in self.supported_color_modes

    @property
    def kelvin_range(self) -> tuple[int, int]:
        """Warmest and coldest colour temperature the light advertises, in kelvin."""
        return kelvin_range(self.min_kelvin, self.max_kelvin, self.min_mireds, self.max_mireds)

    def state_topics(self) -> frozenset[str]:
        """The single JSON state topic, if any."""
        return frozenset({self.state_topic}) if self.state_topic else frozenset()

    def state_keys(self) -> StateKeys:
        """The on/off key: asking for it gets the whole JSON state reported (brightness and colour come along)."""
        return {self.state_topic: frozenset({"state"})} if self.state_topic else {}

    def command_topics(self) -> frozenset[str]:
        """The JSON command topic."""
        return frozenset({self.command_topic})

    # --- gateway side -------------------------------------------------------------------------

    def decode_state(self, topic: str, payload: bytes, previous: EntityState | None) -> LightState:
        """Merge a JSON state report into the previous state."""
        wire = _parse_wire(payload)
        prev = previous if isinstance(previous, LightState) else None
        if wire.state is None and prev is None:
            raise PayloadInvalid("first light state must say ON or OFF", code="payload_missing_field")
        on = (wire.state == "ON") if wire.state is not None else bool(prev and prev.on)
        brightness = prev.brightness if prev else None
        if wire.brightness is not None:
            if wire.brightness > self.brightness_scale:
                raise PayloadInvalid(
                    f"brightness {wire.brightness} above scale {self.brightness_scale}", code="payload_out_of_range"
                )
            brightness = round(wire.brightness * 255 / self.brightness_scale)
        kelvin = prev.color_temp_kelvin if prev else None
        if wire.color_temp is not None:
            kelvin = _finite_round(wire.color_temp if self.color_temp_kelvin else 1_000_000 / wire.color_temp)
            if not 1000 <= kelvin <= 40000:
                raise PayloadInvalid(f"colour temperature {wire.color_temp} out of range", code="payload_out_of_range")
        return LightState(on=on, brightness=brightness, color_temp_kelvin=kelvin)

    def encode_command(self, command: Command) -> list[Publish]:
        """One JSON body on the command topic, scaled to the device's units."""
        cmd = _expect(command)
        body: dict[str, Any] = {"state": "OFF" if cmd.on is False else "ON"}
        if cmd.brightness is not None:
            if not self.dimmable:
                raise CommandInvalid("this light is not dimmable", code="unsupported_feature", field="brightness")
            body["brightness"] = max(1, round(cmd.brightness * self.brightness_scale / 255))
        if cmd.color_temp_kelvin is not None:
            if not self.has_color_temp:
                raise CommandInvalid(
                    "this light has no colour temperature", code="unsupported_feature", field="color_temp_kelvin"
                )
            warm, cold = self.kelvin_range
            if not warm <= cmd.color_temp_kelvin <= cold:
                raise CommandInvalid(
                    f"colour temperature must be within {warm}..{cold} K for this light",
                    code="out_of_range",
                    field="color_temp_kelvin",
                )
            k = cmd.color_temp_kelvin
            body["color_temp"] = k if self.color_temp_kelvin else round(1_000_000 / k)
        return [Publish(self.command_topic, json.dumps(body, separators=(",", ":")).encode(), qos=1)]

    def outcome(self, command: Command, state: EntityState) -> Outcome:
        """Confirmed once on/off, brightness and colour temperature all match within rounding."""
        return light_outcome(_expect(command), state, self.brightness_scale, kelvin=self.color_temp_kelvin)

    # --- device side (simulators) -------------------------------------------------------------

    def encode_state(self, state: EntityState) -> list[Publish]:
        """The retained JSON state report for ``state``."""
        if not isinstance(state, LightState) or self.state_topic is None:
            return []
        body: dict[str, Any] = {"state": "ON" if state.on else "OFF"}
        if self.dimmable and state.brightness is not None:
            body["brightness"] = round(state.brightness * self.brightness_scale / 255)
        if self.has_color_temp and state.color_temp_kelvin is not None:
            k = state.color_temp_kelvin
            body["color_mode"] = "color_temp"
            body["color_temp"] = k if self.color_temp_kelvin else round(1_000_000 / k)
        elif self.dimmable:
            body["color_mode"] = "brightness"
        return [Publish(self.state_topic, json.dumps(body, separators=(",", ":")).encode(), retain=True)]

    def decode_command(self, topic: str, payload: bytes) -> LightCommand:
        """Parse a JSON command body into a normalised command."""
        wire = _parse_wire(payload)
        on = None if wire.state is None else wire.state == "ON"
        brightness = None
        if wire.brightness is not None:
            brightness = max(1, min(255, _finite_round(wire.brightness * 255 / self.brightness_scale)))
        kelvin = None
        if wire.color_temp is not None:
            kelvin = _finite_round(wire.color_temp if self.color_temp_kelvin else 1_000_000 / wire.color_temp)
        try:
            return LightCommand(on=on, brightness=brightness, color_temp_kelvin=kelvin)
        except ValidationError as exc:
            raise PayloadInvalid(first_error(exc)[1], code="payload_invalid") from exc


def light_outcome(cmd: LightCommand, state: EntityState, brightness_scale: int, *, kelvin: bool) -> Outcome:
    """Whether a reported light state confirms ``cmd``: on/off, brightness and colour temperature all match within
    the rounding of the device's own scales (``kelvin``: it reports kelvin, not mireds)."""
    if not isinstance(state, LightState):
        return PENDING
    if state.on != (cmd.on is not False):
        return PENDING
    if cmd.brightness is not None:
        tolerance = max(1, math.ceil(255 / brightness_scale))
        if state.brightness is None or abs(state.brightness - cmd.brightness) > tolerance:
            return PENDING
    if cmd.color_temp_kelvin is not None:
        k = cmd.color_temp_kelvin
        tolerance = 1 if kelvin else math.ceil(k * k / 1_000_000) + 1
        if state.color_temp_kelvin is None or abs(state.color_temp_kelvin - k) > tolerance:
            return PENDING
    return CONFIRMED


def kelvin_range(
    min_kelvin: int | None, max_kelvin: int | None, min_mireds: int | None, max_mireds: int | None
) -> tuple[int, int]:
    """Warmest and coldest colour temperature a light advertises (kelvin, else mireds, else HA's defaults)."""
    if min_kelvin is not None or max_kelvin is not None:
        return (min_kelvin or _KELVIN_DEFAULT[0], max_kelvin or _KELVIN_DEFAULT[1])
    if min_mireds is not None or max_mireds is not None:
        return (math.ceil(1_000_000 / (max_mireds or 500)), math.floor(1_000_000 / (min_mireds or 153)))
    return _KELVIN_DEFAULT


def expect_light_command(command: Command) -> LightCommand:
    """``command`` as a light command; CommandInvalid (``wrong_kind``) otherwise."""
    return _expect(command)


def finite_round(value: float) -> int:
    """``value`` rounded; PayloadInvalid when it is not finite."""
    return _finite_round(value)


def _finite_round(value: float) -> int:
    if not math.isfinite(value):
        raise PayloadInvalid(f"value {value} out of range", code="payload_out_of_range")
    return round(value)


def _parse_wire(payload: bytes) -> _LightWire:
    if len(payload) <= MAX_PAYLOAD_BYTES:
        # The common case straight from bytes (pydantic-core's parser, no dict in between). Anything it refuses
        # goes the checked way below, which gives the refusal its reason, or accepts what only this parser balks at
        # (NaN, a lone surrogate escape): what is accepted, and as what, is the same either way (tests/devices).
        try:
            return _LightWire.model_validate_json(payload)
        except ValidationError:
            pass
    body = load_json_object(payload)
    try:
        return _LightWire.model_validate(body)
    except ValidationError as exc:
        raise PayloadInvalid(first_error(exc)[1], code="payload_wrong_type") from exc


def _expect(command: Command) -> LightCommand:
    if not isinstance(command, LightCommand):
        raise CommandInvalid(f"a light takes a light command, not {type(command).__name__}", code="wrong_kind")
    return command
