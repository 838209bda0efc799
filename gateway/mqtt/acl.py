"""Broker credentials and what each may do: a namespace of topics it owns, the scope derived from it, deny by default.

One model for both brokers: the embedded broker's topic-check plugin asks ``allowed`` on every PUBLISH and
SUBSCRIBE, and Mosquitto gets the same ``Scope`` as dynamic-security ACLs (``gateway.mqtt.dynsec``).

What a device or bridge credential may do:

- publish its discovery configs, ``<prefix>/+/<node_id>/#`` for each node id it owns, and anything under its
  state roots (state, availability, telemetry; ``<root>`` and ``<root>/#``);
- subscribe under its command roots (``<root>/#``) and to Home Assistant's birth topic ``<prefix>/status``;
  a bridge may also read back its own discovery configs (Zigbee2MQTT clears its stale ones at start).

Where firmware puts state and commands under one root (Zigbee2MQTT ``<base>/<device>`` and ``…/set``, ESPHome,
the simulators) the same root is in both lists: the credential may then publish on its own command topics too,
which commands nothing it does not already control. Only the gateway credential publishes on anyone's command
topics, reads everything, or uses ``$`` topics. A credential connects with the one client id it owns (by default
its username); the gateway's may use any, so no device can take over the gateway's session by its client id.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from .topics import filter_covers, is_valid_filter, is_valid_topic, topic_matches

__all__ = [
    "DEFAULT_DISCOVERY_PREFIX",
    "RESERVED_ROOTS",
    "Action",
    "Credential",
    "CredentialKind",
    "Namespace",
    "Scope",
    "allowed",
    "roots_overlap",
]

DEFAULT_DISCOVERY_PREFIX = "homeassistant"
RESERVED_ROOTS = ("aptgateway",)
"""Topic trees no device or bridge may own: the gateway's own status and echo topics live there."""

MAX_ROOT_CHARS = 200
MAX_ROOT_LEVELS = 12
MAX_ROOTS = 16
MAX_NODE_IDS = {"device": 8, "bridge": 512, "gateway": 0}
"""A bridge announces every device behind it under a node id of its own; a device needs one or a few."""

_NODE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # as the registry parses discovery topics
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # usernames and client ids: no spaces, no wildcards


class Action(StrEnum):
    """What a client asks the broker to do with a topic."""

    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"


class CredentialKind(StrEnum):
    """Who holds a broker credential."""

    DEVICE = "device"
    BRIDGE = "bridge"
    GATEWAY = "gateway"


def _root(value: str) -> str:
    """A topic root a credential owns: a plain topic name, no ``$``, no empty level, not a reserved tree."""
    if not is_valid_topic(value) or len(value) > MAX_ROOT_CHARS or value.startswith("$"):
        raise ValueError("a topic root is a topic name without wildcards, NUL or a leading $")
    levels = value.split("/")
    if len(levels) > MAX_ROOT_LEVELS or "" in levels:
        raise ValueError(f"a topic root has 1 to {MAX_ROOT_LEVELS} non-empty levels")
    if any(roots_overlap(value, reserved) for reserved in RESERVED_ROOTS):
        raise ValueError(f"{value!r} overlaps a topic tree the gateway reserves")
    return value


def _node_id(value: str) -> str:
    if not _NODE_ID.fullmatch(value):
        raise ValueError("a node id is 1 to 64 letters, digits, '_' or '-'")
    return value


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError("1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return value


Root = Annotated[str, AfterValidator(_root)]
NodeId = Annotated[str, AfterValidator(_node_id)]
Name = Annotated[str, AfterValidator(_name)]


def roots_overlap(a: str, b: str) -> bool:
    """Whether one topic root is the other or lies under it (then both would own some topics)."""
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


class Namespace(BaseModel):
    """The topics a credential owns: discovery node ids, state roots it publishes under, command roots it reads."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    discovery_prefix: Root = DEFAULT_DISCOVERY_PREFIX
    node_ids: tuple[NodeId, ...] = ()
    state_roots: Annotated[tuple[Root, ...], Field(max_length=MAX_ROOTS)] = ()
    command_roots: Annotated[tuple[Root, ...], Field(max_length=MAX_ROOTS)] = ()

    @model_validator(mode="after")
    def _disjoint_from_discovery(self) -> Self:
        # A root over the discovery prefix would let the credential publish anyone's discovery config.
        for root in (*self.state_roots, *self.command_roots):
            if roots_overlap(root, self.discovery_prefix):
                raise ValueError(f"topic root {root!r} overlaps the discovery prefix {self.discovery_prefix!r}")
        return self

    @property
    def roots(self) -> tuple[str, ...]:
        """Every topic root, state and command, once each."""
        return tuple(dict.fromkeys((*self.state_roots, *self.command_roots)))


class Credential(BaseModel):
    """A broker login: who holds it, for which property, with which client id and namespace (no secret).

    Staff issue device and bridge credentials for a property. A device credential without one is the gateway's own
    making for a device of its own (the simulated unit ``gateway run`` and ``gateway demo`` start), scoped alike.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[str, Field(min_length=1, max_length=64)]
    username: Name
    kind: CredentialKind
    property_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    client_id: Name | None = None
    namespace: Namespace = Namespace()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.kind is CredentialKind.GATEWAY:
            if self.property_id is not None or self.namespace.node_ids or self.namespace.roots:
                raise ValueError("the gateway credential has no property and no namespace: it may do everything")
            return self
        if self.property_id is None and self.kind is not CredentialKind.DEVICE:
            raise ValueError(f"a {self.kind} credential belongs to a property")
        if self.client_id is None:
            raise ValueError(f"a {self.kind} credential owns exactly one client id")
        if not (self.namespace.node_ids or self.namespace.roots):
            raise ValueError(f"a {self.kind} credential needs a namespace (node ids or topic roots)")
        if len(self.namespace.node_ids) > MAX_NODE_IDS[self.kind]:
            raise ValueError(f"a {self.kind} credential owns at most {MAX_NODE_IDS[self.kind]} node ids")
        return self


class Scope(BaseModel):
    """What one credential may do, as topic filters; ``everything`` is the gateway's (any topic, any client id)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    username: str
    client_id: str | None
    everything: bool = False
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()

    @classmethod
    def of(cls, credential: Credential) -> Scope:
        """The scope a credential's kind and namespace grant."""
        if credential.kind is CredentialKind.GATEWAY:
            return cls(username=credential.username, client_id=credential.client_id, everything=True)
        ns = credential.namespace
        discovery = tuple(f"{ns.discovery_prefix}/+/{node}/#" for node in ns.node_ids)
        birth = (f"{ns.discovery_prefix}/status",)
        own_configs = discovery if credential.kind is CredentialKind.BRIDGE else ()
        return cls(
            username=credential.username,
            client_id=credential.client_id,
            publish=(*discovery, *(f"{root}/#" for root in ns.state_roots)),
            subscribe=(*(f"{root}/#" for root in ns.command_roots), *birth, *own_configs),
        )

    def owns_client_id(self, client_id: str) -> bool:
        """Whether this credential may connect with ``client_id``."""
        return self.everything or client_id == self.client_id


def allowed(scope: Scope, action: Action, topic: str) -> bool:
    """Whether ``scope`` may publish to the topic name, or subscribe to the filter, ``topic``; deny by default."""
    if action is Action.PUBLISH:
        if not is_valid_topic(topic):
            return False
        return scope.everything or any(topic_matches(grant, topic) for grant in scope.publish)
    if not is_valid_filter(topic):
        return False
    return scope.everything or any(filter_covers(grant, topic) for grant in scope.subscribe)
