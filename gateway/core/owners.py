"""Who owns a discovery node id, and which topic roots with it: the registry's port onto the broker credentials.

The gateway trusts topics, not payloads: with the broker enforcing each credential's scope, a discovery config under
``<prefix>/<component>/<node_id>/…`` can only come from the credential that owns ``node_id``, and that credential
can only publish state under its own roots. So the owner of a node id is the publisher of every config under it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from ..mqtt.acl import CredentialKind
from ..mqtt.credential_store import CredentialRecord

__all__ = ["CredentialOwners", "DeviceOwners", "Owner"]


@dataclass(frozen=True, slots=True)
class Owner:
    """A live broker credential as a publisher of discovery configs: its id, its property and its topic roots."""

    credential_id: str
    property_id: str | None  # None: a credential of no property (the simulated unit's), seen by every property
    roots: tuple[str, ...]

    def covers(self, topic: str) -> bool:
        """Whether ``topic`` lies inside one of the owner's roots (the root itself or below it)."""
        return any(topic == root or topic.startswith(root + "/") for root in self.roots)


class DeviceOwners(Protocol):
    """The ownership port the registry's acceptance asks."""

    def owner_of(self, node_id: str) -> Owner | None:
        """The live credential that owns the discovery node id, or None."""
        ...

    def is_live(self, credential_id: str) -> bool:
        """Whether the credential exists and is not revoked."""
        ...


class CredentialOwners:
    """``DeviceOwners`` over the live broker credentials, kept in memory: loaded at start, then told of every
    credential created or revoked (``credential_changed``, a ``BrokerCredentials`` listener)."""

    def __init__(self, discovery_prefix: str) -> None:
        self._prefix = discovery_prefix
        self._owners: dict[str, Owner] = {}  # credential id -> owner (live ones only)
        self._by_node: dict[str, str] = {}  # node id -> credential id

    def load(self, records: Iterable[CredentialRecord]) -> None:
        """Replace what is known with ``records`` (the live ones count)."""
        self._owners.clear()
        self._by_node.clear()
        for record in records:
            self.credential_changed(record)

    def credential_changed(self, record: CredentialRecord) -> None:
        """Take a created or revoked credential into account."""
        credential = record.credential
        self._forget(credential.id)
        if record.revoked_at is not None or credential.kind is CredentialKind.GATEWAY:
            return
        if credential.namespace.discovery_prefix != self._prefix:
            return  # its node ids are in another discovery tree: it publishes nothing this gateway reads
        self._owners[credential.id] = Owner(credential.id, credential.property_id, credential.namespace.roots)
        for node_id in credential.namespace.node_ids:
            # Live credentials never share a node id (the store refuses the overlap), so nothing is overwritten.
            self._by_node[node_id] = credential.id

    def owner_of(self, node_id: str) -> Owner | None:
        """The live credential that owns the discovery node id, or None."""
        credential_id = self._by_node.get(node_id)
        return None if credential_id is None else self._owners.get(credential_id)

    def is_live(self, credential_id: str) -> bool:
        """Whether the credential exists and is not revoked."""
        return credential_id in self._owners

    def _forget(self, credential_id: str) -> None:
        if self._owners.pop(credential_id, None) is None:
            return
        for node_id in [n for n, c in self._by_node.items() if c == credential_id]:
            del self._by_node[node_id]
