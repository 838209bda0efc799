"""Firmware updates: Home Assistant's MQTT ``update`` entity (installed and latest version, progress, install).

Home Assistant (``homeassistant/components/mqtt/update.py``) reads the state topic through ``value_template``: a
JSON object gives ``installed_version``, ``latest_version``, ``title``, ``release_summary``, ``release_url``,
``in_progress`` and ``update_percentage``; anything else is the installed version. ``latest_version_topic`` (with
``latest_version_template``) may carry the latest version apart. Install is ``payload_install`` on
``command_topic``. What the firmwares publish:

- ESPHome (``esphome/components/mqtt/mqtt_update.cpp``): a JSON state with ``installed_version``,
  ``latest_version``, ``title``, ``release_summary``, ``release_url``; ``payload_install`` ``INSTALL``.
- Zigbee2MQTT (``lib/extension/homeassistant.ts``, 2.x): the device's own state topic, whose ``update`` object is
  ``{"state": "idle"|"available"|"updating", "installed_version", "latest_version", "progress", "remaining"}``,
  read through a template that builds the JSON object above; install is ``{"id": "<ieee>"}`` on the bridge's
  ``bridge/request/device/ota_update/update``, one topic for all its devices. Zigbee2MQTT 1.x used plain
  ``value_template`` / ``latest_version_template`` paths into the same ``update`` object.

The gateway never renders Jinja: it recognises the JSON-object template form Zigbee2MQTT emits (fields that are a
value path, a path's ``.get('key', 'null')``, or ``(path == 'word')|lower``) and refuses any other at discovery.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

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
    load_json_object,
)
from .errors import CommandInvalid, ConfigInvalid, PayloadInvalid
from .templates import Payload, ValuePath, first_key, parse_template

__all__ = ["UpdateCommand", "UpdateConfig", "UpdateState"]

_Text = Annotated[str, Field(max_length=255)]
_Version = Annotated[str, Field(max_length=64)]
_FIELDS = frozenset(
    {"installed_version", "latest_version", "title", "release_summary", "release_url", "in_progress",
     "update_percentage", "entity_picture"}
)  # fmt: skip


class UpdateState(EntityState):
    """What the device says of its firmware: installed and latest version, and an install under way."""

    installed_version: _Version | None = None
    latest_version: _Version | None = None
    in_progress: bool = False
    update_percentage: Annotated[float, Field(ge=0, le=100)] | None = None
    title: _Text | None = None
    release_summary: _Text | None = None
    release_url: _Text | None = None

    @property
    def update_available(self) -> bool:
        """A latest version is known and differs from the installed one."""
        return self.latest_version is not None and self.latest_version != self.installed_version


class UpdateCommand(Command):
    """Install the latest version."""

    action: Literal["install"]


_PATH = r"value_json(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\s*'[^']+'\s*\]|\[\s*\"[^\"]+\"\s*\])*"
_FIELD = re.compile(r'\s*"([a-z_]{1,32})"\s*:\s*("\{\{[^{}]*\}\}"|\{\{[^{}]*\}\})\s*(,|$)')
_GET = re.compile(r"^(" + _PATH + r")\.get\(\s*'([^']+)'\s*,\s*'null'\s*\)$")
_EQUALS = re.compile(r"^\(\s*(" + _PATH + r")\s*==\s*'([^']*)'\s*\)\s*\|\s*lower$")


@dataclass(frozen=True, slots=True)
class _Read:
    """How one field of a JSON-object template is read: a path, optionally compared with a word."""

    path: ValuePath
    equals: str | None = None

    def value(self, payload: Payload) -> Any:
        try:
            value = self.path.read(payload)
        except PayloadInvalid as exc:
            if exc.code != "payload_missing_field":
                raise
            value = None  # Jinja renders a missing key as nothing, as Home Assistant sees it
        return value == self.equals if self.equals is not None else value


def _object_template(template: str) -> dict[str, _Read] | None:
    """The fields of a JSON-object template (Zigbee2MQTT's form), None when ``template`` is not one."""
    text = template.strip()
    if not (text.startswith("{") and text.endswith("}") and '"' in text[:3]):
        return None
    body, reads, at = text[1:-1], {}, 0
    while at < len(body):
        match = _FIELD.match(body, at)
        if match is None:
            raise ConfigInvalid(f"unsupported value template {template[:80]!r}", code="unsupported_template")
        name, expr = match.group(1), match.group(2).strip('"').strip()[2:-2].strip()
        if name not in _FIELDS:
            raise ConfigInvalid(f"unknown update field {name!r} in template", code="unsupported_template")
        if (got := _GET.match(expr)) is not None:
            base = parse_template("{{ " + got.group(1) + " }}")
            reads[name] = _Read(ValuePath((*base.path, got.group(2)), json_=True))
        elif (eq := _EQUALS.match(expr)) is not None:
            reads[name] = _Read(parse_template("{{ " + eq.group(1) + " }}"), equals=eq.group(2))
        else:
            reads[name] = _Read(parse_template("{{ " + expr + " }}"))
        at = match.end()
    return reads


class UpdateConfig(EntityConfig):
    """Discovery config of an MQTT update entity (device class ``firmware`` or none)."""

    component: ClassVar[Component] = Component.UPDATE
    state_model: ClassVar[type[EntityState]] = UpdateState
    command_model: ClassVar[type[Command] | None] = UpdateCommand

    state_topic: Topic | None = None
    value_template: Annotated[str, Field(max_length=1024)] | None = None
    latest_version_topic: Topic | None = None
    latest_version_template: Annotated[str, Field(max_length=256)] | None = None
    command_topic: Topic | None = None
    payload_install: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    title: _Text | None = None
    release_summary: _Text | None = None
    release_url: _Text | None = None
    entity_picture: Annotated[str, Field(max_length=512)] | None = None

    @field_validator("payload_install", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _check(self) -> UpdateConfig:
        if self.state_topic is None and self.latest_version_topic is None:
            raise ValueError("an update entity needs a state_topic or a latest_version_topic")
        _ = self._reads
        _ = self.latest_path
        return self

    @property
    def kind(self) -> DeviceKind:
        """Always a firmware update."""
        return DeviceKind.FIRMWARE_UPDATE

    @property
    def _reads(self) -> dict[str, _Read] | ValuePath:
        if self.value_template is None:
            return parse_template(None)
        fields = _object_template(self.value_template)
        return parse_template(self.value_template) if fields is None else fields

    @property
    def latest_path(self) -> ValuePath:
        """Where the latest version sits on ``latest_version_topic``."""
        return parse_template(self.latest_version_template)

    @property
    def installable(self) -> bool:
        """Whether the gateway can start an install (a command topic and an install payload)."""
        return self.command_topic is not None and self.payload_install is not None

    def state_topics(self) -> frozenset[str]:
        """The state topic and the latest-version topic."""
        return frozenset(t for t in (self.state_topic, self.latest_version_topic) if t is not None)

    def owned_topics(self) -> frozenset[str]:
        """The state topics only: the install topic may be a bridge's request topic, shared by all its devices
        (Zigbee2MQTT's ``bridge/request/device/ota_update/update``; the payload names the device)."""
        return self.state_topics()

    def state_keys(self) -> StateKeys:
        """The top-level keys read from each topic."""
        keys: dict[str, frozenset[str] | None] = {}
        reads = self._reads
        if self.state_topic is not None:
            if isinstance(reads, ValuePath):
                keys[self.state_topic] = first_key(reads)
            else:
                firsts = [first_key(r.path) for r in reads.values()]
                keys[self.state_topic] = None if None in firsts else frozenset().union(*(f or () for f in firsts))
        if self.latest_version_topic is not None:
            latest = first_key(self.latest_path)
            prior = keys.get(self.latest_version_topic, frozenset())
            keys[self.latest_version_topic] = None if latest is None or prior is None else prior | latest
        return keys

    def command_topics(self) -> frozenset[str]:
        """The install topic, if any."""
        return frozenset({self.command_topic}) if self.command_topic is not None else frozenset()

    def decode_state(self, topic: str, payload: bytes, previous: EntityState | None) -> UpdateState:
        """Merge a state or latest-version report into the previous state, as Home Assistant does."""
        base = previous if isinstance(previous, UpdateState) else UpdateState()
        raw = Payload(payload)
        changes: dict[str, Any] = {}
        if topic == self.state_topic:
            changes.update(self._decode_state_topic(raw))
        if topic == self.latest_version_topic:
            changes["latest_version"] = _version(self.latest_path.read(raw))
        try:
            return base if not changes else UpdateState(**{**base.model_dump(), **changes})
        except ValidationError as exc:
            raise PayloadInvalid(
                f"update state invalid: {exc.errors()[0].get('msg')}", code="payload_wrong_type"
            ) from exc

    def _decode_state_topic(self, raw: Payload) -> dict[str, Any]:
        reads = self._reads
        if isinstance(reads, ValuePath):
            value = reads.read(raw)
            if isinstance(value, str) and not reads.json:
                value = _maybe_object(value)
            if isinstance(value, dict):
                return _fields(value)
            return {"installed_version": _version(value)}
        return _fields({name: read.value(raw) for name, read in reads.items()})

    def encode_state(self, state: EntityState) -> list[Publish]:
        """A JSON state as ESPHome publishes it (used by simulators whose config reads it plainly)."""
        if not isinstance(state, UpdateState) or self.state_topic is None:
            return []
        doc = {k: v for k, v in state.model_dump(mode="json").items() if v is not None}
        return [Publish(self.state_topic, json.dumps(doc, separators=(",", ":")).encode(), retain=True)]

    def encode_command(self, command: Command) -> list[Publish]:
        """The install payload on the command topic."""
        if not isinstance(command, UpdateCommand):
            raise CommandInvalid("an update entity takes an install command", code="wrong_kind")
        if self.command_topic is None or self.payload_install is None:
            raise CommandInvalid("this device announces no install command", code="not_commandable")
        return [Publish(self.command_topic, self.payload_install.encode(), qos=1)]

    def decode_command(self, topic: str, payload: bytes) -> UpdateCommand:
        """Parse the install payload."""
        if self.payload_install is not None and payload == self.payload_install.encode():
            return UpdateCommand(action="install")
        raise PayloadInvalid("not this entity's install payload", code="payload_out_of_range")

    def outcome(self, command: Command, state: EntityState) -> Outcome:
        """Confirmed once the install is under way or the latest version is installed."""
        if not isinstance(command, UpdateCommand) or not isinstance(state, UpdateState):
            return PENDING
        return CONFIRMED if state.in_progress or not state.update_available else PENDING


def _maybe_object(text: str) -> Any:
    """A raw payload that is a JSON object (ESPHome's state) as a mapping; else the text itself."""
    if not text.lstrip().startswith("{"):
        return text
    try:
        return dict(load_json_object(text.encode()))
    except PayloadInvalid:
        return text


def _version(value: Any) -> str | None:
    """A version as text (Zigbee2MQTT's are integers); empty or absent is unknown."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = str(value).strip()
    return text[:64] or None


def _fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The known fields of a rendered update state; the rest is ignored, as Home Assistant does."""
    out: dict[str, Any] = {}
    for name in ("installed_version", "latest_version"):
        if name in doc:
            out[name] = _version(doc[name])
    for name in ("title", "release_summary", "release_url"):
        if isinstance(doc.get(name), str):
            out[name] = doc[name][:255] or None
    if "in_progress" in doc:
        progress = doc["in_progress"]
        if isinstance(progress, bool):
            out["in_progress"] = progress
        elif isinstance(progress, int | float) and math.isfinite(progress):
            # Before Home Assistant 2024.11 a number here was the percentage (still accepted until 2025.12).
            out["in_progress"], out["update_percentage"] = True, progress
        elif progress is None:
            out["in_progress"] = False
        else:
            raise PayloadInvalid("in_progress must be true or false", code="payload_wrong_type")
    if "update_percentage" in doc:
        percentage = doc["update_percentage"]
        if percentage is None or percentage in ("", "null"):
            out["update_percentage"] = None
        elif isinstance(percentage, int | float) and not isinstance(percentage, bool) and math.isfinite(percentage):
            out["update_percentage"] = percentage
        else:
            raise PayloadInvalid("update_percentage must be a number", code="payload_wrong_type")
    if out.get("in_progress") is False:
        out["update_percentage"] = None
    return out
