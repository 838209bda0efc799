"""Helpers for the device-plane acceptance tests: credentials in the gateway's own store, configs published by hand."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import aiomqtt

from gateway.app import Gateway
from gateway.mqtt.acl import CredentialKind, Namespace
from gateway.mqtt.credentials import BrokerCredentials, CredentialRecord
from gateway.storage import Database
from tests.support.api import FAST_PASSWORDS
from tests.support.polling import eventually

__all__ = ["Plane", "add_properties", "lock_config", "publish", "refused"]


async def add_properties(db: Database, *property_ids: str) -> None:
    """Rows for properties (broker credentials reference them)."""
    rows = [{"id": p, "name": p.upper(), "created_at": "2026-01-01T00:00:00+00:00"} for p in property_ids]
    await db.run(lambda d: d.table("properties").insert_all(rows, ignore=True))


@dataclass
class Plane:
    """A gateway with the device plane enforced and a credential store whose changes it hears of."""

    gateway: Gateway
    credentials: BrokerCredentials
    prefix: str

    @classmethod
    async def over(cls, gateway: Gateway, *property_ids: str) -> Plane:
        """Credentials over the gateway's database, wired as ``Services`` wires them."""
        await add_properties(gateway.db, *property_ids)
        credentials = BrokerCredentials(gateway.db, gateway.clock, FAST_PASSWORDS)
        credentials.add_listener(gateway.owners.credential_changed)
        return cls(gateway, credentials, gateway.settings.discovery_prefix)

    async def device(
        self, username: str, property_id: str, node_ids: tuple[str, ...], roots: tuple[str, ...]
    ) -> CredentialRecord:
        """A device credential owning ``node_ids`` with ``roots`` as both state and command roots."""
        namespace = Namespace(discovery_prefix=self.prefix, node_ids=node_ids, state_roots=roots, command_roots=roots)
        issued = await self.credentials.create(
            username, CredentialKind.DEVICE, property_id=property_id, namespace=namespace
        )
        return issued.record

    def config_topic(self, component: str, node: str, obj: str) -> str:
        """``<prefix>/<component>/<node>/<obj>/config``."""
        return f"{self.prefix}/{component}/{node}/{obj}/config"

    async def refused(self, mqtt: aiomqtt.Client, topic: str, body: Mapping[str, object] | bytes, code: str) -> None:
        """Publish a config and wait until the gateway has counted its refusal under ``code``."""
        await refused(self.gateway, mqtt, topic, body, code)


def lock_config(root: str, device_id: str, **changes: object) -> dict[str, object]:
    """A lock's discovery config under a topic root."""
    body: dict[str, object] = {
        "command_topic": f"{root}/lock/set",
        "state_topic": f"{root}/lock/state",
        "availability_topic": f"{root}/availability",
        "device": {"identifiers": [device_id], "name": device_id},
    }
    body.update(changes)
    return body


async def publish(mqtt: aiomqtt.Client, topic: str, body: Mapping[str, object] | bytes, *, retain: bool = True) -> None:
    """Publish a JSON body (or raw bytes) at QoS 1."""
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    await mqtt.publish(topic, payload, qos=1, retain=retain)


async def refused(
    gateway: Gateway, mqtt: aiomqtt.Client, topic: str, body: Mapping[str, object] | bytes, code: str
) -> None:
    """Publish a config and wait until the gateway has counted one more refusal under ``code``."""
    before = gateway.metrics.rejected[code]
    await publish(mqtt, topic, body)
    await eventually(lambda: gateway.metrics.rejected[code] > before, what=f"config on {topic} refused as {code}")
