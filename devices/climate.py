"""Thermostats: mode, target temperature within the device's limits, current temperature, fan mode."""

from __future__ import annotations

import json
import math
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

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
)
from .errors import CommandInvalid, ConfigInvalid, PayloadInvalid
from .templates import Payload, ValuePath, keys_by_topic, parse_template

__all__ = ["ClimateCommand", "ClimateConfig", "ClimateState", "HvacMode"]

HvacMode = Literal["off", "heat", "cool", "auto", "heat_cool", "dry", "fan_only"]
_Word = Annotated[str, Field(min_length=1, max_length=32)]
# Home Assistant's defaults for an MQTT climate entity, in Celsius.
_DEFAULT_MIN = {"C": 7.0, "F": 44.0}
_DEFAULT_MAX = {"C": 35.0, "F": 95.0}
_PLAUSIBLE = (-60.0, 150.0)


class ClimateState(EntityState):
    """What a thermostat reports; any field may be unknown until first reported."""

    mode: str | None = None
    target_temperature: float | None = None
    current_temperature: float | None = None
    fan_mode: str | None = None
    unit: Literal["C", "F"] = "C"


class ClimateCommand(Command):
    """Set the mode, the target temperature and/or the fan mode; at least one field."""

    mode: HvacMode | None = None
    target_temperature: Annotated[float, Field(allow_inf_nan=False)] | None = None
    fan_mode: _Word | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> ClimateCommand:
        if self.mode is None and self.target_temperature is None and self.fan_mode is None:
            raise ValueError("a thermostat command needs at least one of mode, target_temperature, fan_mode")
        return self


_FIELDS = ("mode", "target_temperature", "current_temperature", "fan_mode")


class ClimateConfig(EntityConfig):
    """Discovery config of an MQTT climate entity (one topic per attribute, shared JSON topics allowed)."""

    component: ClassVar[Component] = Component.CLIMATE
    state_model: ClassVar[type[EntityState]] = ClimateState
    command_model: ClassVar[type[Command] | None] = ClimateCommand

    mode_command_topic: Topic | None = None
    mode_state_topic: Topic | None = None
    mode_state_template: str | None = None
    modes: tuple[_Word, ...] = ("auto", "off", "cool", "heat", "dry", "fan_only")
    temperature_command_topic: Topic | None = None
    temperature_state_topic: Topic | None = None
    temperature_state_template: str | None = None
    current_temperature_topic: Topic | None = None
    current_temperature_template: str | None = None
    fan_mode_command_topic: Topic | None = None
    fan_mode_state_topic: Topic | None = None
    fan_mode_state_template: str | None = None
    fan_modes: tuple[_Word, ...] = ("auto", "low", "medium", "high")
    min_temp: Annotated[float, Field(allow_inf_nan=False)] | None = None
    max_temp: Annotated[float, Field(allow_inf_nan=False)] | None = None
    temp_step: Annotated[float, Field(gt=0, le=10)] = 1.0
    temperature_unit: Literal["C", "F"] = "C"
    mode_command_template: str | None = None
    temperature_command_template: str | None = None
    fan_mode_command_template: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ClimateConfig:
        if any((self.mode_command_template, self.temperature_command_template, self.fan_mode_command_template)):
            raise ConfigInvalid("command templates are not supported", code="unsupported_template")
        if self.min_temperature >= self.max_temperature:
            raise ValueError("min_temp must be below max_temp")
        if not (_PLAUSIBLE[0] <= self.min_temperature and self.max_temperature <= _PLAUSIBLE[1]):
            # a target the gateway could never read back as confirmed
            raise ValueError(f"min_temp/max_temp must lie within {_PLAUSIBLE[0]:g}..{_PLAUSIBLE[1]:g}")
        _ = self.readers()
        return self

    @property
    def kind(self) -> DeviceKind:
        """Always a thermostat."""
        return DeviceKind.THERMOSTAT

    @property
    def min_temperature(self) -> float:
        """Lowest target the device advertises."""
        return self.min_temp if self.min_temp is not None else _DEFAULT_MIN[self.temperature_unit]

    @property
    def max_temperature(self) -> float:
        """Highest target the device advertises."""
        return self.max_temp if self.max_temp is not None else _DEFAULT_MAX[self.temperature_unit]

    def readers(self) -> dict[str, tuple[str, ValuePath]]:
        """For each reported field, its state topic and where the value sits there."""
        return self._readers

    @cached_property
    def _readers(self) -> dict[str, tuple[str, ValuePath]]:
        # Once per config: it is read for every state report.
        spec = {
            "mode": (self.mode_state_topic, self.mode_state_template),
            "target_temperature": (self.temperature_state_topic, self.temperature_state_template),
            "current_temperature": (self.current_temperature_topic, self.current_temperature_template),
            "fan_mode": (self.fan_mode_state_topic, self.fan_mode_state_template),
        }
        return {name: (topic, parse_template(tpl)) for name, (topic, tpl) in spec.items() if topic}

    @cached_property
    def _readers_on(self) -> dict[str, tuple[tuple[str, ValuePath], ...]]:
        # Per topic, the fields read from it, in the readers' order (the first bad one is the one refused).
        on: dict[str, list[tuple[str, ValuePath]]] = {}
        for name, (topic, path) in self.readers().items():
            on.setdefault(topic, []).append((name, path))
        return {topic: tuple(fields) for topic, fields in on.items()}

    def state_topics(self) -> frozenset[str]:
        """Every topic a field is reported on."""
        return self._state_topics

    @cached_property
    def _state_topics(self) -> frozenset[str]:
        return frozenset(self._readers_on)

    def state_keys(self) -> StateKeys:
        """Per state topic, the keys of the fields reported there (None if one of them is the whole payload)."""
        return keys_by_topic(self.readers().values())

    def command_topics(self) -> frozenset[str]:
        """Every topic a field is set on."""
        topics = (self.mode_command_topic, self.temperature_command_topic, self.fan_mode_command_topic)
        return frozenset(t for t in topics if t)

    def decode_state(self, topic: str, payload: bytes, previous: EntityState | None) -> ClimateState:
        """Merge the fields reported on ``topic`` into the previous state."""
        # Its fields are plain values: a copy of its __dict__ is its model_dump(), without the serialiser's cost.
        values: dict[str, Any] = (
            dict(previous.__dict__) if isinstance(previous, ClimateState) else {"unit": self.temperature_unit}
        )
        found = 0
        received = Payload(payload)  # decoded and parsed once, however many fields it carries
        for name, path in self._readers_on.get(topic, ()):
            try:
                raw = path.read(received)
            except PayloadInvalid as exc:
                if exc.code == "payload_missing_field":
                    continue  # shared JSON topics often carry only what changed
                raise
            values[name] = self._check_field(name, raw)
            found += 1
        if not found:
            raise PayloadInvalid("state report carries no thermostat field", code="payload_missing_field")
        return ClimateState.model_validate(values)

    def _check_field(self, name: str, raw: Any) -> str | float:
        if name in ("mode", "fan_mode"):
            allowed = self.modes if name == "mode" else self.fan_modes
            if not isinstance(raw, str) or raw not in allowed:
                raise PayloadInvalid(f"{name} {str(raw)[:32]!r} not advertised", code="payload_out_of_range")
            return raw
        if isinstance(raw, bool):
            raise PayloadInvalid(f"{name} is not a number", code="payload_wrong_type")
        try:
            value = float(raw)
        except (TypeError, ValueError) as exc:
            raise PayloadInvalid(f"{name} {str(raw)[:32]!r} is not a number", code="payload_wrong_type") from exc
        except OverflowError as exc:
            raise PayloadInvalid(f"{name} out of range", code="payload_out_of_range") from exc
        if not math.isfinite(value) or not _PLAUSIBLE[0] <= value <= _PLAUSIBLE[1]:
            raise PayloadInvalid(f"{name} {value} out of range", code="payload_out_of_range")
        return value

    def encode_command(self, command: Command) -> list[Publish]:
        """One plain payload per attribute, each on its command topic, after checking the limits."""
        if not isinstance(command, ClimateCommand):
            raise CommandInvalid("a thermostat takes a thermostat command", code="wrong_kind")
        out: list[Publish] = []
        if command.mode is not None:
            if self.mode_command_topic is None:
                raise CommandInvalid("this thermostat's mode cannot be set", code="unsupported_feature", field="mode")
            if command.mode not in self.modes:
                raise CommandInvalid(f"mode must be one of {', '.join(self.modes)}", code="out_of_range", field="mode")
            out.append(Publish(self.mode_command_topic, command.mode.encode(), qos=1))
        if command.target_temperature is not None:
            out.append(self._temperature_publish(command.target_temperature))
        if command.fan_mode is not None:
            if self.fan_mode_command_topic is None:
                raise CommandInvalid("this thermostat has no fan control", code="unsupported_feature", field="fan_mode")
            if command.fan_mode not in self.fan_modes:
                raise CommandInvalid(
                    f"fan_mode must be one of {', '.join(self.fan_modes)}", code="out_of_range", field="fan_mode"
                )
            out.append(Publish(self.fan_mode_command_topic, command.fan_mode.encode(), qos=1))
        return out

    def _temperature_publish(self, target: float) -> Publish:
        if self.temperature_command_topic is None:
            raise CommandInvalid(
                "this thermostat's target cannot be set", code="unsupported_feature", field="target_temperature"
            )
        low, high = self.min_temperature, self.max_temperature
        if not low <= target <= high:
            raise CommandInvalid(
                f"target_temperature must be within {low:g}..{high:g} °{self.temperature_unit}",
                code="out_of_range",
                field="target_temperature",
            )
        steps = (target - low) / self.temp_step
        if abs(steps - round(steps)) > 1e-6:
            raise CommandInvalid(
                f"target_temperature must be in steps of {self.temp_step:g}",
                code="out_of_range",
                field="target_temperature",
            )
        return Publish(self.temperature_command_topic, f"{target:g}".encode(), qos=1)

    def outcome(self, command: Command, state: EntityState) -> Outcome:
        """Confirmed when every field the command set is reported back."""
        if not isinstance(command, ClimateCommand) or not isinstance(state, ClimateState):
            return PENDING
        if command.mode is not None and state.mode != command.mode:
            return PENDING
        if command.fan_mode is not None and state.fan_mode != command.fan_mode:
            return PENDING
        if command.target_temperature is not None and (
            state.target_temperature is None or abs(state.target_temperature - command.target_temperature) > 1e-3
        ):
            return PENDING
        return CONFIRMED

    def encode_state(self, state: EntityState) -> list[Publish]:
        """Retained reports; fields that share a JSON topic are merged into one object."""
        if not isinstance(state, ClimateState):
            return []
        docs: dict[str, dict[str, Any]] = {}
        raw: dict[str, bytes] = {}
        values = state.model_dump()
        for name, (topic, path) in self.readers().items():
            value = values.get(name)
            if value is None:
                continue
            if not path.json:
                raw[topic] = path.render(value)
                continue
            _merge(docs.setdefault(topic, {}), json.loads(path.render(value)))
        out = [Publish(t, json.dumps(d, separators=(",", ":")).encode(), retain=True) for t, d in docs.items()]
        out.extend(Publish(t, p, retain=True) for t, p in raw.items())
        return out

    def decode_command(self, topic: str, payload: bytes) -> ClimateCommand:
        """Parse a plain attribute payload arriving on one of the command topics."""
        text = payload.decode("utf-8", "replace")
        try:
            if topic == self.mode_command_topic:
                return ClimateCommand.model_validate({"mode": text})
            if topic == self.temperature_command_topic:
                return ClimateCommand(target_temperature=float(text))
            if topic == self.fan_mode_command_topic:
                return ClimateCommand(fan_mode=text)
        except ValueError as exc:
            raise PayloadInvalid(f"bad thermostat command {text[:32]!r}", code="payload_invalid") from exc
        raise PayloadInvalid(f"not a command topic of this thermostat: {topic[:80]}", code="payload_invalid")


def _merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
