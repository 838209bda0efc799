"""Lights on Home Assistant's default (``basic``) MQTT light schema: one topic per attribute, plain payloads.

This is the schema when a light's config names none (Tasmota's discovery, Z-Wave JS UI's binary lights): on/off is
``payload_on``/``payload_off`` on ``command_topic``, brightness a number on ``brightness_command_topic`` (0 to
``brightness_scale``), colour temperature mireds (or kelvin with ``color_temp_kelvin``) on
``color_temp_command_topic``; each is read back from its state topic through its value template, and several may
share one JSON state topic (Tasmota reports all of them in ``tele/<topic>/STATE``).

Commands follow Home Assistant's order for ``on_command_type``; command templates are refused at discovery (the
gateway renders no Jinja).
"""

from __future__ import annotations

import json
import math
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from .base import (
    Command,
    Component,
    DeviceKind,
    EntityConfig,
    EntityState,
    Outcome,
    Publish,
    StateKeys,
    Topic,
)
from .errors import CommandInvalid, ConfigInvalid, PayloadInvalid
from .light import LightCommand, LightState, expect_light_command, finite_round, kelvin_range, light_outcome
from .switch import json_word
from .templates import Payload, ValuePath, keys_by_topic, parse_template

__all__ = ["DefaultLightConfig"]

_Word = Annotated[str, Field(min_length=1, max_length=64)]


class DefaultLightConfig(EntityConfig):
    """Discovery config of an MQTT light on the default schema (``schema`` absent, ``default`` or ``basic``)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    component: ClassVar[Component] = Component.LIGHT
    state_model: ClassVar[type[EntityState]] = LightState
    command_model: ClassVar[type[Command] | None] = LightCommand

    schema_: Literal["default", "basic"] = Field(default="default", alias="schema")
    command_topic: Topic
    state_topic: Topic | None = None
    state_value_template: str | None = None
    payload_on: _Word = "ON"
    payload_off: _Word = "OFF"
    on_command_type: Literal["last", "first", "brightness"] = "last"
    brightness_command_topic: Topic | None = None
    brightness_state_topic: Topic | None = None
    brightness_value_template: str | None = None
    brightness_scale: Annotated[int, Field(ge=1, le=65535)] = 255
    color_temp_command_topic: Topic | None = None
    color_temp_state_topic: Topic | None = None
    color_temp_value_template: str | None = None
    color_temp_kelvin: bool = False
    min_mireds: Annotated[int, Field(ge=1, le=1000)] | None = None
    max_mireds: Annotated[int, Field(ge=1, le=1000)] | None = None
    min_kelvin: Annotated[int, Field(ge=1000, le=40000)] | None = None
    max_kelvin: Annotated[int, Field(ge=1000, le=40000)] | None = None

    @field_validator("payload_on", "payload_off", mode="before")
    @classmethod
    def _as_word(cls, value: Any) -> Any:
        return json_word(value)

    @model_validator(mode="before")
    @classmethod
    def _refuse_command_templates(cls, data: Any) -> Any:
        if isinstance(data, dict):
            found = sorted(k for k in data if isinstance(k, str) and k.endswith("command_template"))
            if found:
                raise ConfigInvalid(
                    f"command templates are not supported ({', '.join(found)})", code="unsupported_template"
                )
        return data

    @model_validator(mode="after")
    def _check(self) -> DefaultLightConfig:
        if self.payload_on == self.payload_off:
            raise ValueError("payload_on and payload_off must differ")
        warm, cold = self.kelvin_range
        if warm > cold:
            raise ValueError(f"colour temperature range {warm}..{cold} K is empty")
        _ = self.readers()
        return self

    @property
    def kind(self) -> DeviceKind:
        """Always a light."""
        return DeviceKind.LIGHT

    @property
    def dimmable(self) -> bool:
        """Whether the light takes a brightness (it has a brightness command topic)."""
        return self.brightness_command_topic is not None

    @property
    def has_color_temp(self) -> bool:
        """Whether the light takes a colour temperature."""
        return self.color_temp_command_topic is not None

    @property
    def kelvin_range(self) -> tuple[int, int]:
        """Warmest and coldest colour temperature the light advertises, in kelvin."""
        return kelvin_range(self.min_kelvin, self.max_kelvin, self.min_mireds, self.max_mireds)

    def readers(self) -> dict[str, tuple[str, ValuePath]]:
        """For each reported attribute (on, brightness, color_temp), its state topic and where it sits there."""
        return self._readers

    @cached_property
    def _readers(self) -> dict[str, tuple[str, ValuePath]]:
        spec = {
            "on": (self.state_topic, self.state_value_template),
            "brightness": (self.brightness_state_topic, self.brightness_value_template),
            "color_temp": (self.color_temp_state_topic, self.color_temp_value_template),
        }
        return {name: (topic, parse_template(tpl)) for name, (topic, tpl) in spec.items() if topic}

    def state_topics(self) -> frozenset[str]:
        """Every topic an attribute is reported on."""
        return frozenset(topic for topic, _ in self.readers().values())

    def state_keys(self) -> StateKeys:
        """Per state topic, the keys of the attributes reported there (None if one is the whole payload)."""
        return keys_by_topic(self.readers().values())

    def command_topics(self) -> frozenset[str]:
        """The on/off, brightness and colour temperature command topics."""
        topics = (self.command_topic, self.brightness_command_topic, self.color_temp_command_topic)
        return frozenset(t for t in topics if t)

    # --- gateway side -------------------------------------------------------------------------

    def decode_state(self, topic: str, payload: bytes, previous: EntityState | None) -> LightState:
        """Merge the attributes reported on ``topic`` into the previous state (a shared JSON topic may carry any
        of them)."""
        prev = previous if isinstance(previous, LightState) else None
        values: dict[str, Any] = prev.model_dump() if prev else {}
        received = Payload(payload)
        found = 0
        for name, (field_topic, path) in self.readers().items():
            if field_topic != topic:
                continue
            try:
                raw = path.read(received)
            except PayloadInvalid as exc:
                if exc.code == "payload_missing_field":
                    continue  # a shared JSON topic (Tasmota's STATE) need not carry every attribute
                raise
            values.update(self._field(name, raw))
            found += 1
        if not found:
            raise PayloadInvalid("state report carries no light attribute", code="payload_missing_field")
        if "on" not in values:
            raise PayloadInvalid("first light state must say on or off", code="payload_missing_field")
        return LightState.model_validate(values)

    def _field(self, name: str, raw: Any) -> dict[str, Any]:
        if name == "on":
            word = _word(raw)
            if word == self.payload_on:
                return {"on": True}
            if word == self.payload_off:
                return {"on": False}
            raise PayloadInvalid(f"unknown light state {word[:32]!r}", code="payload_out_of_range")
        number = _number(name, raw)
        if name == "brightness":
            if not 0 <= number <= self.brightness_scale:
                raise PayloadInvalid(
                    f"brightness {number:g} outside 0..{self.brightness_scale}", code="payload_out_of_range"
                )
            return {"brightness": round(number * 255 / self.brightness_scale)}
        if number <= 0:
            raise PayloadInvalid(f"colour temperature {number:g} out of range", code="payload_out_of_range")
        kelvin = finite_round(number if self.color_temp_kelvin else 1_000_000 / number)
        if not 1000 <= kelvin <= 40000:
            raise PayloadInvalid(f"colour temperature {number:g} out of range", code="payload_out_of_range")
        return {"color_temp_kelvin": kelvin}

    def encode_command(self, command: Command) -> list[Publish]:
        """Plain payloads, each on its topic, in Home Assistant's order for ``on_command_type``."""
        return self.encode_command_from(command, None)

    def encode_command_from(self, command: Command, state: EntityState | None) -> list[Publish]:
        """As Home Assistant's MQTT light (``schema_basic``): ``first`` sends ``payload_on`` before the attributes,
        ``last`` after them, ``brightness`` never: the brightness turns the light on, the last known one (else full)
        when the command names none (Tasmota's Dimmer, Z-Wave JS UI's Multilevel Switch level)."""
        cmd = expect_light_command(command)
        if cmd.on is False:
            return [Publish(self.command_topic, self.payload_off.encode(), qos=1)]
        brightness = cmd.brightness
        if brightness is not None and self.brightness_command_topic is None:
            raise CommandInvalid("this light is not dimmable", code="unsupported_feature", field="brightness")
        if brightness is None and self.on_command_type == "brightness" and self.brightness_command_topic:
            last = state.brightness if isinstance(state, LightState) else None
            brightness = last if last else 255
        attributes: list[Publish] = []
        if brightness is not None and self.brightness_command_topic is not None:
            level = max(1, round(brightness * self.brightness_scale / 255))
            attributes.append(Publish(self.brightness_command_topic, str(level).encode(), qos=1))
        if cmd.color_temp_kelvin is not None:
            attributes.append(self._color_temp_publish(cmd.color_temp_kelvin))
        on = Publish(self.command_topic, self.payload_on.encode(), qos=1)
        if self.on_command_type == "brightness" and self.brightness_command_topic is not None:
            return attributes
        if self.on_command_type == "first":
            return [on, *attributes]
        return [*attributes, on]

    def _color_temp_publish(self, kelvin: int) -> Publish:
        if self.color_temp_command_topic is None:
            raise CommandInvalid(
                "this light has no colour temperature", code="unsupported_feature", field="color_temp_kelvin"
            )
        warm, cold = self.kelvin_range
        if not warm <= kelvin <= cold:
            raise CommandInvalid(
                f"colour temperature must be within {warm}..{cold} K for this light",
                code="out_of_range",
                field="color_temp_kelvin",
            )
        value = kelvin if self.color_temp_kelvin else round(1_000_000 / kelvin)
        return Publish(self.color_temp_command_topic, str(value).encode(), qos=1)

    def outcome(self, command: Command, state: EntityState) -> Outcome:
        """Confirmed once on/off, brightness and colour temperature all match within rounding."""
        return light_outcome(expect_light_command(command), state, self.brightness_scale, kelvin=self.color_temp_kelvin)

    # --- device side (simulators) -------------------------------------------------------------

    def encode_state(self, state: EntityState) -> list[Publish]:
        """Retained reports; attributes that share a JSON topic are merged into one object."""
        if not isinstance(state, LightState):
            return []
        values: dict[str, Any] = {"on": self.payload_on if state.on else self.payload_off}
        if state.brightness is not None:
            values["brightness"] = round(state.brightness * self.brightness_scale / 255)
        if state.color_temp_kelvin is not None:
            k = state.color_temp_kelvin
            values["color_temp"] = k if self.color_temp_kelvin else round(1_000_000 / k)
        docs: dict[str, dict[str, Any]] = {}
        raw: dict[str, bytes] = {}
        for name, (topic, path) in self.readers().items():
            if name not in values:
                continue
            if not path.json:
                raw[topic] = path.render(values[name])
            else:
                docs.setdefault(topic, {}).update(json.loads(path.render(values[name])))
        out = [Publish(t, json.dumps(d, separators=(",", ":")).encode(), retain=True) for t, d in docs.items()]
        out.extend(Publish(t, p, retain=True) for t, p in raw.items())
        return out


def _word(raw: Any) -> str:
    """A reported value as the word it is compared with (JSON booleans as JSON spells them)."""
    return json.dumps(raw) if isinstance(raw, bool) else str(raw)


def _number(name: str, raw: Any) -> float:
    if isinstance(raw, bool):
        raise PayloadInvalid(f"{name} is not a number", code="payload_wrong_type")
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise PayloadInvalid(f"{name} {str(raw)[:32]!r} is not a number", code="payload_wrong_type") from exc
    except OverflowError as exc:
        raise PayloadInvalid(f"{name} out of range", code="payload_out_of_range") from exc
    if not math.isfinite(value):
        raise PayloadInvalid(f"{name} {value} out of range", code="payload_out_of_range")
    return value
