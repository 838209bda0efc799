"""Switches (smart plugs, relays): on and off, on Home Assistant's MQTT switch.

``payload_on``/``payload_off`` go to ``command_topic``; ``state_on``/``state_off`` (by default the same words) are read
back from ``state_topic`` through ``value_template``. Bridges that announce JSON booleans (Z-Wave JS UI's
``"payload_on": true``) are compared and commanded as JSON spells them (``true``/``false``).
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator, model_validator

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
from .errors import CommandInvalid, PayloadInvalid
from .templates import ValuePath, first_key, parse_template

__all__ = ["SwitchCommand", "SwitchConfig", "SwitchState", "json_word"]

_Word = Annotated[str, Field(min_length=1, max_length=64)]


class SwitchState(EntityState):
    """Whether the switch's output is on."""

    on: bool


class SwitchCommand(Command):
    """Turn the output on or off."""

    on: bool


def json_word(value: Any) -> Any:
    """A payload word as configured: JSON booleans and numbers as JSON spells them, anything else unchanged."""
    return json.dumps(value) if isinstance(value, bool | int | float) else value


class SwitchConfig(EntityConfig):
    """Discovery config of an MQTT switch."""

    component: ClassVar[Component] = Component.SWITCH
    state_model: ClassVar[type[EntityState]] = SwitchState
    command_model: ClassVar[type[Command] | None] = SwitchCommand

    command_topic: Topic
    state_topic: Topic | None = None
    value_template: str | None = None
    payload_on: _Word = "ON"
    payload_off: _Word = "OFF"
    state_on: _Word | None = None
    state_off: _Word | None = None

    @field_validator("payload_on", "payload_off", "state_on", "state_off", mode="before")
    @classmethod
    def _as_word(cls, value: Any) -> Any:
        return json_word(value)

    @model_validator(mode="after")
    def _check(self) -> SwitchConfig:
        _ = self.value_path
        if self.payload_on == self.payload_off:
            raise ValueError("payload_on and payload_off must differ")
        if self.on_word == self.off_word:
            raise ValueError("state_on and state_off must differ")
        return self

    @property
    def kind(self) -> DeviceKind:
        """Always a switch."""
        return DeviceKind.SWITCH

    @cached_property  # read for every state report
    def value_path(self) -> ValuePath:
        """Where the state word sits in the state payload."""
        return parse_template(self.value_template)

    @property
    def on_word(self) -> str:
        """The reported word for on (``state_on``, else ``payload_on``, as Home Assistant reads it)."""
        return self.state_on if self.state_on is not None else self.payload_on

    @property
    def off_word(self) -> str:
        """The reported word for off."""
        return self.state_off if self.state_off is not None else self.payload_off

    def state_topics(self) -> frozenset[str]:
        """The state topic, if any."""
        return frozenset({self.state_topic}) if self.state_topic else frozenset()

    def state_keys(self) -> StateKeys:
        """The key the state word sits under, if the state is JSON."""
        return {self.state_topic: first_key(self.value_path)} if self.state_topic else {}

    def command_topics(self) -> frozenset[str]:
        """The command topic."""
        return frozenset({self.command_topic})

    def decode_state(self, topic: str, payload: bytes, previous: EntityState | None) -> SwitchState:
        """Map the reported word to on/off."""
        raw = self.value_path.extract(payload)
        word = json.dumps(raw) if isinstance(raw, bool) else str(raw)
        if word == self.on_word:
            return SwitchState(on=True)
        if word == self.off_word:
            return SwitchState(on=False)
        raise PayloadInvalid(f"unknown switch state {word[:32]!r}", code="payload_out_of_range")

    def encode_command(self, command: Command) -> list[Publish]:
        """The on or off word on the command topic."""
        if not isinstance(command, SwitchCommand):
            raise CommandInvalid("a switch takes a switch command", code="wrong_kind")
        word = self.payload_on if command.on else self.payload_off
        return [Publish(self.command_topic, word.encode(), qos=1)]

    def outcome(self, command: Command, state: EntityState) -> Outcome:
        """Confirmed when the reported output matches."""
        if not isinstance(command, SwitchCommand) or not isinstance(state, SwitchState):
            return PENDING
        return CONFIRMED if state.on == command.on else PENDING

    def encode_state(self, state: EntityState) -> list[Publish]:
        """The retained state word."""
        if not isinstance(state, SwitchState) or self.state_topic is None:
            return []
        word = self.on_word if state.on else self.off_word
        return [Publish(self.state_topic, self.value_path.render(word), retain=True)]

    def decode_command(self, topic: str, payload: bytes) -> SwitchCommand:
        """Parse the on/off word."""
        word = payload.decode("utf-8", "replace")
        if word == self.payload_on:
            return SwitchCommand(on=True)
        if word == self.payload_off:
            return SwitchCommand(on=False)
        raise PayloadInvalid(f"unknown switch command {word[:32]!r}", code="payload_out_of_range")
