"""Staff manage broker credentials: create one for a property's device or bridge, list, revoke; every change
audited, the broker kept in step through a ``BrokerSync`` port, and the password never logged or stored."""

from __future__ import annotations

import logging
import re
import secrets
from typing import Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from ..audit import Actor, AuditLog
from ..errors import Conflict, InvalidRequest, NotFound
from .acl import CredentialKind, Namespace, Scope
from .credential_store import CredentialRecord
from .credentials import BrokerCredentials, IssuedCredential

__all__ = ["BrokerCredentialService", "BrokerSync", "CredentialRequest", "DropOnWithdraw"]

log = logging.getLogger(__name__)
_SLUG = re.compile(r"[^a-z0-9_-]+")


class BrokerSync(Protocol):
    """What the broker must learn when a credential is issued or revoked (the embedded broker, Mosquitto's dynsec)."""

    async def grant(self, scope: Scope, password: str) -> None:
        """Let the credential of ``scope`` log in with ``password`` (the only moment the plaintext exists)."""
        ...

    async def withdraw(self, username: str) -> None:
        """Refuse ``username`` from now on and cut its live connections."""
        ...


class _Drops(Protocol):
    def drop(self, username: str) -> int: ...


class DropOnWithdraw:
    """The embedded broker's sync: it asks the gateway's records at every login, so a grant needs nothing; a
    withdrawal cuts the credential's live connections (``EmbeddedBroker.drop``)."""

    def __init__(self, broker: _Drops) -> None:
        self._broker = broker

    async def grant(self, scope: Scope, password: str) -> None:
        """Nothing to do: the embedded broker verifies against the database."""

    async def withdraw(self, username: str) -> None:
        """Cut the credential's connections."""
        dropped = self._broker.drop(username)
        log.info("broker connections cut", extra={"username": username, "clients": dropped})


class CredentialRequest(BaseModel):
    """What staff ask for: who holds the credential and the topics it owns (checked again by ``Credential``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: CredentialKind
    label: str
    username: str | None = None
    client_id: str | None = None
    node_ids: tuple[str, ...] = ()
    state_roots: tuple[str, ...] = ()
    command_roots: tuple[str, ...] = ()


class BrokerCredentialService:
    """The use cases over ``BrokerCredentials`` for staff; ``attach`` connects the broker to keep in step."""

    def __init__(
        self,
        credentials: BrokerCredentials,
        *,
        audit: AuditLog,
        discovery_prefix: str,
        broker_url: str | None = None,
        reserved_usernames: tuple[str, ...] = (),
    ) -> None:
        self._credentials = credentials
        self._audit = audit
        self._prefix = discovery_prefix
        self._reserved = frozenset(reserved_usernames)  # e.g. the gateway's own broker login
        self.broker_url = broker_url
        """Where devices reach the broker, as far as the gateway knows (shown with a new password)."""
        self._sync: BrokerSync | None = None

    def attach(self, sync: BrokerSync | None) -> None:
        """Keep ``sync`` in step from now on (None: the broker reads the records itself, or nobody listens)."""
        self._sync = sync

    async def create(self, property_id: str, request: CredentialRequest, *, by: Actor) -> IssuedCredential:
        """Issue a credential for a property's device or bridge, granted on the broker, audited.

        InvalidRequest ``broker_credential_invalid``; Conflict ``broker_credential_overlaps`` (with a live
        credential, or a login the broker already has); BrokerUnavailable when the broker cannot be told (then
        nothing was issued).
        """
        if request.kind is CredentialKind.GATEWAY:
            raise InvalidRequest("staff issue device and bridge credentials only", code="broker_credential_invalid")
        try:
            namespace = Namespace(
                discovery_prefix=self._prefix,
                node_ids=request.node_ids,
                state_roots=request.state_roots,
                command_roots=request.command_roots,
            )
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"]
            raise InvalidRequest(f"invalid broker credential: {reason}", code="broker_credential_invalid") from exc
        username = request.username or _username(request.label, request.kind)
        if username in self._reserved or (request.client_id or username) in self._reserved:
            raise Conflict("that name is the gateway's own broker login", code="broker_credential_overlaps")
        issued = await self._credentials.create(
            username,
            request.kind,
            property_id=property_id,
            namespace=namespace,
            client_id=request.client_id,
            label=request.label,
            created_by=by.account.id,
        )
        record = issued.record
        if self._sync is not None:
            try:
                await self._sync.grant(record.scope, issued.password.get_secret_value())
            except Exception:
                await self._credentials.discard(record.credential.id)
                raise
        await self._audit.record(
            by, "broker_credential.create", property_id=property_id, target=record.credential.id, detail=_detail(record)
        )
        return issued

    async def find(self, property_id: str, *, include_revoked: bool = False) -> list[CredentialRecord]:
        """The property's credentials, oldest first (no secrets: only hashes are stored, and never shown)."""
        return await self._credentials.find(property_id, include_revoked=include_revoked)

    async def revoke(self, property_id: str, credential_id: str, *, by: Actor) -> CredentialRecord:
        """Revoke one of the property's credentials and cut its connections; audited once.

        Again on a revoked one: the broker is told again (a retry after BrokerUnavailable), nothing else changes.
        Another property's credential is NotFound exactly as an unknown id.
        """
        record = await self._owned(property_id, credential_id)
        username = record.credential.username
        fresh = record.revoked_at is None
        if fresh:
            record = await self._credentials.revoke(credential_id, revoked_by=by.account.id)
            await self._audit.record(
                by, "broker_credential.revoke", property_id=property_id, target=credential_id, detail=_detail(record)
            )
        # A username is free again once revoked: never cut a newer live credential that took it.
        if self._sync is not None and (fresh or not await self._live(username)):
            await self._sync.withdraw(username)
        return record

    async def revoked_usernames(self) -> set[str]:
        """Usernames that only revoked credentials hold: what a broker with logins of its own must not keep."""
        every = await self._credentials.find(None, include_revoked=True)
        live = {r.credential.username for r in every if r.revoked_at is None}
        return {r.credential.username for r in every if r.revoked_at is not None} - live - self._reserved

    async def _owned(self, property_id: str, credential_id: str) -> CredentialRecord:
        try:
            record = await self._credentials.get(credential_id)
        except NotFound:
            record = None
        if record is None or record.credential.property_id != property_id:
            raise NotFound("no such broker credential", code="broker_credential_not_found")
        return record

    async def _live(self, username: str) -> bool:
        return any(r.credential.username == username for r in await self._credentials.find(None))


def _username(label: str, kind: CredentialKind) -> str:
    """A username from the label: readable, unique enough, within the broker's name rules."""
    slug = _SLUG.sub("-", label.lower()).strip("-_")[:40] or str(kind)
    return f"{slug}-{secrets.token_hex(3)}"


def _detail(record: CredentialRecord) -> dict[str, object]:
    """What the audit keeps of a credential: who and which topics, never a secret."""
    credential = record.credential
    return {
        "username": credential.username,
        "client_id": credential.client_id,
        "kind": str(credential.kind),
        "label": record.label,
        "node_ids": list(credential.namespace.node_ids),
        "state_roots": list(credential.namespace.state_roots),
        "command_roots": list(credential.namespace.command_roots),
    }
