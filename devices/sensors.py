"""Read-only sensors: leak and contact (binary), battery and temperature (numeric)."""

from __future__ import annotations

import math
from functools import cached_property
from typing import Annotated, Any, ClassVar

from pydantic import Field, ValidationError, field_validator, model_validator

from .base import Component, DeviceKind, EntityConfig, EntityState, Publish, StateKeys, Topic
from .errors import PayloadInvalid
from .templates import ValuePath, first_key, parse_template

__all__ = ["BinarySensorConfig", "BinarySensorState", "SensorConfig", "SensorState"]

_BINARY_KINDS = {
    "moisture": DeviceKind.LEAK_SENSOR,
    "door": DeviceKind.CONTACT_SENSOR,
    "window": DeviceKind.CONTACT_SENSOR,
    "opening": DeviceKind.CONTACT_SENSOR,
    "garage_door": DeviceKind.CONTACT_SENSOR,
}
_SENSOR_KINDS = {"battery": DeviceKind.BATTERY_SENSOR, "temperature": DeviceKind.TEMPERATURE_SENSOR}
# Plausible physical ranges: a reading outside them is a broken payload, not weather.
_RANGES: dict[DeviceKind, tuple[float, float]] = {
    DeviceKind.BATTERY_SENSOR: (0.0, 100.0),
    DeviceKind.TEMPERATURE_SENSOR: (-60.0, 150.0),
}


class BinarySensorState(EntityState):
    """On means leak detected / contact open / whatever the device class says is 'on'."""

    on: bool


class SensorState(EntityState):
    """A numeric reading (or a short text for non-numeric sensors) and its unit."""

    value: float | Annotated[str, Field(max_length=255)]
    unit: str | None = None


class _ReadOnly(EntityConfig):
    state_topic: Topic
    value_template: str | None = None

    @model_validator(mode="after")
    def _check(self) -> _ReadOnly:
        _ = self.value_path
        return self

    @cached_property  # read for every state report
    def value_path(self) -> ValuePath:
        """Where the reading sits in the state payload."""
        return parse_template(self.value_template)

    def state_topics(self) -> frozenset[str]:
        """The state topic."""
        return frozenset({self.state_topic})

    def state_keys(self) -> StateKeys:
        """The key the reading sits under, if the state is JSON."""
        return {self.state_topic: first_key(self.value_path)}

    def command_topics(self) -> frozenset[str]:
        """Sensors take no commands."""
        return frozenset()


class BinarySensorConfig(_ReadOnly):
    """Discovery config of an MQTT binary sensor."""

    component: ClassVar[Component] = Component.BINARY_SENSOR
    state_model: ClassVar[type[EntityState]] = BinarySensorState

    payload_on: Annotated[str, Field(max_length=64)] = "ON"
    payload_off: Annotated[str, Field(max_length=64)] = "OFF"

    @field_validator("payload_on", "payload_off", mode="before")
    @classmethod
    def _as_string(cls, value: Any) -> Any:
        """Zigbee2MQTT sends JSON booleans (``payload_on: true``); HA compares their text, ``True``."""
        return str(value) if isinstance(value, bool | int | float) else value

    @model_validator(mode="after")
    def _distinct(self) -> BinarySensorConfig:
        if self.payload_on == self.payload_off:
            raise ValueError("payload_on and payload_off must differ")
        return self

    @property
    def kind(self) -> DeviceKind:
        """Leak, contact or generic binary sensor, by device class."""
        return _BINARY_KINDS.get(self.device_class or "", DeviceKind.BINARY_SENSOR)

    def decode_state(self, topic: str, payload: bytes, previous: EntityState | None) -> BinarySensorState:
        """Map payload_on/payload_off to on/off."""
        word = str(self.value_path.extract(payload))
        if word == self.payload_on:
            return BinarySensorState(on=True)
        if word == self.payload_off:
            return BinarySensorState(on=False)
        raise PayloadInvalid(f"unknown binary state {word[:32]!r}", code="payload_out_of_range")

    def encode_state(self, state: EntityState) -> list[Publish]:
        """The retained on/off word."""
        if not isinstance(state, BinarySensorState):
            return []
        word = self.payload_on if state.on else self.payload_off
        return [Publish(self.state_topic, self.value_path.render(word), retain=True)]


class SensorConfig(_ReadOnly):
    """Discovery config of an MQTT sensor."""

    component: ClassVar[Component] = Component.SENSOR
    state_model: ClassVar[type[EntityState]] = SensorState

    unit_of_measurement: Annotated[str, Field(max_length=16)] | None = None

    @property
    def kind(self) -> DeviceKind:
        """Battery, temperature or generic sensor, by device class."""
        return _SENSOR_KINDS.get(self.device_class or "", DeviceKind.SENSOR)

    def decode_state(self, topic: str, payload: bytes, previous: EntityState | None) -> SensorState:
        """Parse the reading; numeric kinds must be finite numbers within a plausible range."""
        raw = self.value_path.extract(payload)
        bounds = _RANGES.get(self.kind)
        if bounds is not None and isinstance(raw, bool):
            raise PayloadInvalid("reading is not a number", code="payload_wrong_type")
        if bounds is None and not isinstance(raw, int | float):
            try:
                return SensorState(value=str(raw)[:255], unit=self.unit_of_measurement)
            except ValidationError as exc:  # e.g. a lone surrogate from a JSON \ud800 escape
                raise PayloadInvalid("reading is not valid Unicode text", code="payload_not_utf8") from exc
        try:
            value = float(raw)
        except (TypeError, ValueError) as exc:
            raise PayloadInvalid(f"reading {str(raw)[:32]!r} is not a number", code="payload_wrong_type") from exc
        except OverflowError as exc:
            raise PayloadInvalid("reading out of range", code="payload_out_of_range") from exc
        if not math.isfinite(value) or (bounds is not None and not bounds[0] <= value <= bounds[1]):
            raise PayloadInvalid(f"reading {value} out of range", code="payload_out_of_range")
        return SensorState(value=value, unit=self.unit_of_measurement)

    def encode_state(self, state: EntityState) -> list[Publish]:
        """The retained reading."""
        if not isinstance(state, SensorState):
            return []
        return [Publish(self.state_topic, self.value_path.render(state.value), retain=True)]
