"""What every device kind shares: components, the discovery envelope, availability and the codec contract."""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import CommandInvalid, PayloadInvalid
from .limits import MAX_PAYLOAD_BYTES
from .templates import ValuePath, parse_template

__all__ = [
    "CONFIRMED",
    "MAX_TOPIC_LENGTH",
    "PENDING",
    "AvailabilityEntry",
    "Command",
    "Component",
    "DeviceInfo",
    "DeviceKind",
    "EntityConfig",
    "EntityState",
    "FrozenModel",
    "OriginInfo",
    "Outcome",
    "OutcomeStatus",
    "Publish",
    "StateKeys",
    "Topic",
    "first_error",
    "load_json_object",
    "same_state",
]

MAX_TOPIC_LENGTH = 256


class FrozenModel(BaseModel):
    """Immutable model that refuses unknown fields (for input we define ourselves)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_topic(value: str) -> str:
    if not value or len(value) > MAX_TOPIC_LENGTH:
        raise ValueError(f"topic must be 1..{MAX_TOPIC_LENGTH} characters")
    if "+" in value or "#" in value or "\x00" in value:
        raise ValueError("topic must not contain wildcards or NUL")
    return value


Topic = Annotated[str, AfterValidator(_check_topic)]
"""A concrete MQTT topic name (no wildcards), as a device may advertise it."""


class Component(StrEnum):
    """Home Assistant MQTT discovery components the gateway drives."""

    LIGHT = "light"
    LOCK = "lock"
    SWITCH = "switch"
    CLIMATE = "climate"
    BINARY_SENSOR = "binary_sensor"
    SENSOR = "sensor"
    UPDATE = "update"


class DeviceKind(StrEnum):
    """What an entity is, for residents and policy (derived from component and device class)."""

    LIGHT = "light"
    LOCK = "lock"
    SWITCH = "switch"
    THERMOSTAT = "thermostat"
    LEAK_SENSOR = "leak_sensor"
    CONTACT_SENSOR = "contact_sensor"
    BINARY_SENSOR = "binary_sensor"
    BATTERY_SENSOR = "battery_sensor"
    TEMPERATURE_SENSOR = "temperature_sensor"
    SENSOR = "sensor"
    FIRMWARE_UPDATE = "firmware_update"


@dataclass(frozen=True, slots=True)
class Publish:
    """One MQTT message to send."""

    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 1


class OutcomeStatus(StrEnum):
    """How a device's reported state answers a pending command."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The verdict of one state report on a command; ``reason`` is a stable code when refused."""

    status: OutcomeStatus
    reason: str | None = None


PENDING = Outcome(OutcomeStatus.PENDING)
CONFIRMED = Outcome(OutcomeStatus.CONFIRMED)


class DeviceInfo(BaseModel):
    """The physical device an entity belongs to (HA ``device`` block)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    identifiers: tuple[Annotated[str, Field(max_length=128)], ...] = ()
    name: Annotated[str, Field(max_length=128)] | None = None
    manufacturer: Annotated[str, Field(max_length=128)] | None = None
    model: Annotated[str, Field(max_length=128)] | None = None
    sw_version: Annotated[str, Field(max_length=64)] | None = None

    @field_validator("identifiers", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value


class OriginInfo(BaseModel):
    """The software that published the discovery config (HA ``origin`` block), e.g. Zigbee2MQTT."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: Annotated[str, Field(max_length=128)]
    sw_version: Annotated[str, Field(max_length=64)] | None = None
    support_url: Annotated[str, Field(max_length=256)] | None = None


StateKeys = Mapping[str, frozenset[str] | None]
"""Per state topic, the top-level JSON keys an entity reads its state from; None where it reads the whole payload."""


class AvailabilityEntry(BaseModel):
    """One availability topic and its payloads (HA ``availability`` list item)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    topic: Topic
    payload_available: str = "online"
    payload_not_available: str = "offline"
    value_template: str | None = None

    @property
    def path(self) -> ValuePath:
        """Where the availability word sits in the payload."""
        return parse_template(self.value_template)

    def decode(self, payload: bytes) -> bool | None:
        """Return True/False for available/unavailable, None for a payload that is neither."""
        try:
            word = str(self.path.extract(payload))
        except PayloadInvalid:
            return None
        if word == self.payload_available:
            return True
        if word == self.payload_not_available:
            return False
        return None


class EntityState(BaseModel):
    """Normalised state of one entity, the same whatever the device's wire format."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def same_state(a: EntityState | None, b: EntityState | None) -> bool:
    """``a == b``, at a fraction of pydantic's generic ``__eq__`` (compared for every state report): a state model
    has no extra fields and no private attributes, so the same type and the same field values are equality."""
    if a is None or b is None:
        return a is b
    return type(a) is type(b) and a.__dict__ == b.__dict__


class Command(FrozenModel):
    """A normalised command for one entity. Strict: a command is user input, and ``"yes"`` or ``1`` is not ``true``
    (nor ``"21"`` a temperature)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class EntityConfig(BaseModel):
    """A parsed discovery config; subclasses know their component's wire format.

    Unknown keys are ignored, as Home Assistant does, so real devices' richer configs still load.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    component: ClassVar[Component]
    state_model: ClassVar[type[EntityState]]
    command_model: ClassVar[type[Command] | None] = None

    name: Annotated[str, Field(max_length=128)] | None = None
    unique_id: Annotated[str, Field(max_length=128)] | None = None
    device: DeviceInfo | None = None
    origin: OriginInfo | None = None
    device_class: Annotated[str, Field(max_length=64)] | None = None
    availability_topic: Topic | None = None
    payload_available: str = "online"
    payload_not_available: str = "offline"
    availability: tuple[AvailabilityEntry, ...] = ()
    availability_mode: Literal["all", "any", "latest"] = "latest"
    qos: Annotated[int, Field(ge=0, le=2)] = 0
    retain: bool = False
    expire_after: Annotated[int, Field(ge=0, le=86_400 * 7)] | None = None

    @model_validator(mode="after")
    def _check_templates(self) -> EntityConfig:
        for entry in self.availability:
            _ = entry.path
        return self

    @property
    def kind(self) -> DeviceKind:
        """What this entity is for residents and policy."""
        raise NotImplementedError

    def availability_entries(self) -> tuple[AvailabilityEntry, ...]:
        """All availability topics, whichever of the two HA spellings the config used."""
        return self._availability_entries

    @cached_property
    def _availability_entries(self) -> tuple[AvailabilityEntry, ...]:
        # Once per config: the connectivity sweep and every availability report read it.
        entries = self.availability
        if self.availability_topic is not None:
            entries = (
                AvailabilityEntry(
                    topic=self.availability_topic,
                    payload_available=self.payload_available,
                    payload_not_available=self.payload_not_available,
                ),
                *entries,
            )
        return entries

    def owned_topics(self) -> frozenset[str]:
        """The topics no other device may use: those it reports its state on and those it takes commands on.

        Availability topics are not among them: a bridge's status (Zigbee2MQTT's ``bridge/state``, Z-Wave JS UI's
        client status) is every one of its devices' availability, and listening to a topic claims nothing.
        """
        return self.state_topics() | self.command_topics()

    def topics(self) -> frozenset[str]:
        """Every topic this entity publishes on or listens to."""
        return self.owned_topics() | {e.topic for e in self.availability_entries()}

    def to_payload(self) -> bytes:
        """The discovery config as Home Assistant reads it (used by simulators)."""
        body = self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
        body.update(self.payload_constants())
        if self.device is not None:
            body["device"] = self.device.model_dump(mode="json", exclude_none=True)
        return json.dumps(body, separators=(",", ":")).encode()

    def payload_constants(self) -> dict[str, Any]:
        """Keys whose value is fixed for this model but must still appear on the wire."""
        return {}

    @abstractmethod
    def state_topics(self) -> frozenset[str]:
        """Topics on which the device reports state."""

    @abstractmethod
    def state_keys(self) -> StateKeys:
        """Per state topic, the JSON keys this entity's state is read from (what a bridge can be asked for)."""

    @abstractmethod
    def command_topics(self) -> frozenset[str]:
        """Topics on which the device takes commands."""

    @abstractmethod
    def decode_state(self, topic: str, payload: bytes, previous: EntityState | None) -> EntityState:
        """Merge one state report into the previous state; raise PayloadInvalid for bad payloads."""

    @abstractmethod
    def encode_state(self, state: EntityState) -> list[Publish]:
        """Messages a device publishes to report ``state`` (used by simulators)."""

    def encode_command(self, command: Command) -> list[Publish]:
        """Messages that carry ``command``; raise CommandInvalid if this entity cannot take it."""
        raise CommandInvalid(f"{self.component} entities take no commands", code="not_commandable")

    def encode_command_from(self, command: Command, state: EntityState | None) -> list[Publish]:
        """As ``encode_command``, for a device last known to be in ``state`` (None: unknown); the wire form of a
        few commands depends on it (a default-schema light turned on by its brightness)."""
        return self.encode_command(command)

    def decode_command(self, topic: str, payload: bytes) -> Command:
        """Parse a command the device received (used by simulators)."""
        raise PayloadInvalid(f"{self.component} entities take no commands", code="not_commandable")

    def outcome(self, command: Command, state: EntityState) -> Outcome:
        """Whether ``state``, reported after ``command`` was sent, confirms or refuses it."""
        return PENDING


def first_error(exc: ValidationError) -> tuple[str, str]:
    """The dotted field name and message of a pydantic validation error's first problem."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err.get("loc", ())) or "payload"
    return field, f"{field}: {err.get('msg', 'invalid')}"


def load_json_object(payload: bytes) -> Mapping[str, Any]:
    """Parse a JSON object payload with the size cap; raise PayloadInvalid otherwise."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadInvalid(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}", code="payload_too_large")
    try:
        # Decoded as UTF-8 first: json.loads(bytes) would also accept UTF-16/32, which MQTT text is not.
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadInvalid("payload is not UTF-8", code="payload_not_utf8") from exc
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise PayloadInvalid(f"not JSON: {exc}", code="payload_not_json") from exc
    if not isinstance(value, dict):
        raise PayloadInvalid("JSON payload is not an object", code="payload_not_object")
    return value
