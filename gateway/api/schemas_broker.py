"""Bodies of the broker-credential endpoints: what staff ask for (frozen, capped, no unknown fields) and what they
see (never a password, except once in the answer that creates it)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ..mqtt.acl import MAX_ROOTS
from ..mqtt.credential_store import CredentialRecord

__all__ = ["BrokerCredentialOut", "BrokerLoginOut", "CreateBrokerCredentialRequest", "IssuedBrokerCredentialOut"]

# As gateway.mqtt.acl checks them again: usernames and client ids, discovery node ids, topic roots.
Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
NodeId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Root = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){0,11}$")
]
MAX_NODE_IDS = 512  # a bridge's; a device's credential owns at most 8 (422 broker_credential_invalid beyond)


class CreateBrokerCredentialRequest(BaseModel):
    """A broker login for one device or one bridge of the property, and the topics it owns."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=256)

    kind: Literal["device", "bridge"] = Field(description="device: one device; bridge: Zigbee2MQTT, Z-Wave JS UI…")
    label: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)] = Field(
        description="What staff call it, e.g. 'Zigbee2MQTT, 3rd floor'"
    )
    username: Name | None = Field(default=None, description="Default: made from the label")
    client_id: Name | None = Field(default=None, description="The one MQTT client id it may use; default: username")
    node_ids: Annotated[tuple[NodeId, ...], Field(max_length=MAX_NODE_IDS)] = Field(
        default=(), description="Node ids of its discovery topics (<prefix>/<component>/<node_id>/…/config)"
    )
    state_roots: Annotated[tuple[Root, ...], Field(max_length=MAX_ROOTS)] = Field(
        default=(), description="Topic roots it publishes state and availability under, e.g. zigbee2mqtt"
    )
    command_roots: Annotated[tuple[Root, ...], Field(max_length=MAX_ROOTS)] = Field(
        default=(), description="Topic roots it reads commands under (often the same as state_roots)"
    )

    @model_validator(mode="after")
    def _owns_something(self) -> Self:
        if not (self.node_ids or self.state_roots or self.command_roots):
            raise ValueError("a credential needs node ids or topic roots")
        return self


class BrokerCredentialOut(BaseModel):
    """A broker credential as staff see it: who holds it, its topics and what they grant; no secret."""

    id: str
    username: str
    client_id: str | None
    kind: str
    property_id: str | None
    label: str | None
    discovery_prefix: str
    node_ids: list[str]
    state_roots: list[str]
    command_roots: list[str]
    publish: list[str] = Field(description="The topic filters it may publish to")
    subscribe: list[str] = Field(description="The topic filters it may subscribe to")
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None
    revoked_by: str | None

    @classmethod
    def of(cls, record: CredentialRecord) -> BrokerCredentialOut:
        """The view of a stored credential."""
        credential, scope = record.credential, record.scope
        ns = credential.namespace
        return cls(
            id=credential.id,
            username=credential.username,
            client_id=credential.client_id,
            kind=str(credential.kind),
            property_id=credential.property_id,
            label=record.label,
            discovery_prefix=ns.discovery_prefix,
            node_ids=list(ns.node_ids),
            state_roots=list(ns.state_roots),
            command_roots=list(ns.command_roots),
            publish=list(scope.publish),
            subscribe=list(scope.subscribe),
            created_at=record.created_at,
            created_by=record.created_by,
            revoked_at=record.revoked_at,
            revoked_by=record.revoked_by,
        )


class BrokerLoginOut(BaseModel):
    """How the device or bridge logs in."""

    username: str
    password: str = Field(description="Shown this once: the gateway keeps only a hash of it")
    client_id: str | None = Field(description="Set the device's MQTT client id to exactly this")
    broker_url: str | None = Field(description="The broker as the gateway reaches it (devices: this machine)")


class IssuedBrokerCredentialOut(BaseModel):
    """A new credential and its login, the password included: shown once."""

    credential: BrokerCredentialOut
    login: BrokerLoginOut
    note: str
