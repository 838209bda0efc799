"""Door locks: locked/unlocked/jammed, lock and unlock, on Home Assistant's MQTT lock."""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from functools import cached_property
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal

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
    OutcomeStatus,
    Publish,
    StateKeys,
    Topic,
)
from .errors import CommandInvalid, PayloadInvalid
from .templates import ValuePath, first_key, parse_template

__all__ = ["LockCommand", "LockConfig", "LockState", "LockStatus"]

_Word = Annotated[str, Field(min_length=1, max_length=64)]


class LockStatus(StrEnum):
    """What a lock reports."""

    LOCKED = "locked"
    UNLOCKED = "unlocked"
    LOCKING = "locking"
    UNLOCKING = "unlocking"
    JAMMED = "jammed"
    OPEN = "open"
    OPENING = "opening"


class LockState(EntityState):
    """A lock's reported status."""

    status: LockStatus


class LockCommand(Command):
    """Lock or unlock the door."""

    action: Literal["lock", "unlock"]


class LockConfig(EntityConfig):
    """Discovery config of an MQTT lock (plain string payloads)."""

    component: ClassVar[Component] = Component.LOCK
    state_model: ClassVar[type[EntityState]] = LockState
    command_model: ClassVar[type[Command] | None] = LockCommand

    command_topic: Topic
    state_topic: Topic | None = None
    value_template: str | None = None
    payload_lock: _Word = "LOCK"
    payload_unlock: _Word = "UNLOCK"
    state_locked: _Word = "LOCKED"
    state_unlocked: _Word = "UNLOCKED"
    state_locking: _Word = "LOCKING"
    state_unlocking: _Word = "UNLOCKING"
    state_jammed: _Word = "JAMMED"
    state_open: _Word = "OPEN"
    state_opening: _Word = "OPENING"

    @field_validator(
        "payload_lock",
        "payload_unlock",
        "state_locked",
        "state_unlocked",
        "state_locking",
        "state_unlocking",
        "state_jammed",
        "state_open",
        "state_opening",
        mode="before",
    )
    @classmethod
    def _as_word(cls, value: Any) -> Any:
        """Z-Wave JS UI announces Door Lock CC modes as numbers (``state_locked: 255``): compared as JSON spells
        them."""
        return json.dumps(value) if isinstance(value, bool | int | float) else value

    @model_validator(mode="after")
    def _check(self) -> LockConfig:
        _ = self.value_path
        if len(self._words()) != len(LockStatus):
            raise ValueError("state words must be distinct")
        if self.payload_lock == self.payload_unlock:
            raise ValueError("payload_lock and payload_unlock must differ")
        return self

    @property
    def kind(self) -> DeviceKind:
        """Always a lock."""
        return DeviceKind.LOCK

    @cached_property  # read for every state report
    def value_path(self) -> ValuePath:
        """Where the state word sits in the state payload."""
        return parse_template(self.value_template)

    @cached_property
    def _status_of(self) -> Mapping[str, LockStatus]:
        # Once per config: it is read for every state report.
        return MappingProxyType(self._words())

    def _words(self) -> dict[str, LockStatus]:
        return {
            self.state_locked: LockStatus.LOCKED,
            self.state_unlocked: LockStatus.UNLOCKED,
            self.state_locking: LockStatus.LOCKING,
            self.state_unlocking: LockStatus.UNLOCKING,
            self.state_jammed: LockStatus.JAMMED,
            self.state_open: LockStatus.OPEN,
            self.state_opening: LockStatus.OPENING,
        }

    def state_topics(self) -> frozenset[str]:
        """The state topic, if any."""
        return frozenset({self.state_topic}) if self.state_topic else frozenset()

    def state_keys(self) -> StateKeys:
        """The key the state word sits under, if the state is JSON."""
        return {self.state_topic: first_key(self.value_path)} if self.state_topic else {}

    def command_topics(self) -> frozenset[str]:
        """The command topic."""
        return frozenset({self.command_topic})

    def decode_state(self, topic: str, payload: bytes, previous: EntityState | None) -> LockState:
        """Map the device's state word to a status."""
        raw = self.value_path.extract(payload)
        word = raw if isinstance(raw, str) else json.dumps(raw) if isinstance(raw, bool | int | float) else None
        status = None if word is None else self._status_of.get(word)
        if status is None:
            raise PayloadInvalid(f"unknown lock state {str(word)[:32]!r}", code="payload_out_of_range")
        return LockState(status=status)

    def encode_command(self, command: Command) -> list[Publish]:
        """The lock or unlock word on the command topic."""
        if not isinstance(command, LockCommand):
            raise CommandInvalid("a lock takes a lock command", code="wrong_kind")
        word = self.payload_lock if command.action == "lock" else self.payload_unlock
        return [Publish(self.command_topic, word.encode(), qos=1)]

    def outcome(self, command: Command, state: EntityState) -> Outcome:
        """Confirmed when the target status is reported; refused when the lock reports jammed."""
        if not isinstance(command, LockCommand) or not isinstance(state, LockState):
            return PENDING
        if state.status is LockStatus.JAMMED:
            return Outcome(OutcomeStatus.REFUSED, "device_jammed")
        target = LockStatus.LOCKED if command.action == "lock" else LockStatus.UNLOCKED
        return CONFIRMED if state.status is target else PENDING

    def encode_state(self, state: EntityState) -> list[Publish]:
        """The retained state word for ``state``."""
        if not isinstance(state, LockState) or self.state_topic is None:
            return []
        word = next(w for w, s in self._words().items() if s is state.status)
        return [Publish(self.state_topic, self.value_path.render(word), retain=True)]

    def decode_command(self, topic: str, payload: bytes) -> LockCommand:
        """Parse the lock/unlock word."""
        word = payload.decode("utf-8", "replace")
        if word == self.payload_lock:
            return LockCommand(action="lock")
        if word == self.payload_unlock:
            return LockCommand(action="unlock")
        raise PayloadInvalid(f"unknown lock command {word[:32]!r}", code="payload_out_of_range")
