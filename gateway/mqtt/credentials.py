"""Broker credentials the gateway issues: generated passwords shown once, stored only as argon2 hashes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Callable
from typing import TypeVar

import sqlite_utils
from pydantic import BaseModel, ConfigDict, SecretStr

from ..accounts.credentials import MAX_PASSWORD_LENGTH, Passwords
from ..clock import Clock
from ..errors import InvalidRequest
from ..storage.db import Database
from . import credential_store as store
from .acl import Credential, CredentialKind, Namespace, Scope
from .credential_store import CredentialRecord

__all__ = [
    "MADE_AT_START",
    "PASSWORD_BYTES",
    "BrokerCredentials",
    "CredentialListener",
    "CredentialRecord",
    "IssuedCredential",
    "new_broker_password",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

MADE_AT_START = "gateway:start"
"""``created_by`` of the logins the gateway makes for itself at a start (its own, its simulated devices'): their
passwords live only in that process, so the next start revokes them all and makes new ones. No account username
has a ':'."""

CredentialListener = Callable[[CredentialRecord], None]
"""Told of a credential just created or revoked (the record as stored, ``revoked_at`` set once revoked)."""

PASSWORD_BYTES = 24
"""192 random bits: far beyond guessing, so a cache of verified logins may key on a plain digest (see ``verify``)."""


def new_broker_password() -> str:
    """A generated broker password (URL-safe, 32 characters, 192 random bits)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


class IssuedCredential(BaseModel):
    """A new credential with its password, which exists only here: shown once, never stored or logged."""

    model_config = ConfigDict(frozen=True)

    record: CredentialRecord
    password: SecretStr


class BrokerCredentials:
    """Create, list, revoke and verify broker credentials; every database call runs through ``Database.run``.

    argon2 runs in a worker thread, never on the event loop nor on the database's writer thread. A device that
    reconnects (a broker restart, a flaky Wi-Fi) would pay a full argon2 verification each time, so a successful
    login is remembered as the SHA-256 of its password (safe for 192-bit generated secrets, as for bearer tokens)
    until the credential is revoked or this object is discarded.
    """

    def __init__(self, db: Database, clock: Clock, passwords: Passwords | None = None) -> None:
        self._db = db
        self._clock = clock
        self._passwords = passwords or Passwords()
        self._verified: dict[str, tuple[bytes, Scope]] = {}  # username -> (password digest, scope)
        self._generation = 0
        self._listeners: list[CredentialListener] = []

    def add_listener(self, listener: CredentialListener) -> None:
        """Be told of every credential created or revoked, once it is stored."""
        self._listeners.append(listener)

    def _changed(self, record: CredentialRecord) -> None:
        for listener in self._listeners:
            listener(record)

    async def _run(self, work: Callable[[sqlite_utils.Database], T]) -> T:
        """Run ``work`` on the writer thread, forgetting remembered logins first (it may change any of them)."""
        self._generation += 1
        self._verified.clear()
        return await self._db.run(work)

    async def create(
        self,
        username: str,
        kind: CredentialKind,
        *,
        property_id: str | None,
        namespace: Namespace | None = None,
        client_id: str | None = None,
        label: str | None = None,
        created_by: str | None = None,
    ) -> IssuedCredential:
        """Issue a credential with a generated password; a device's or bridge's client id defaults to its username.

        InvalidRequest if the credential is malformed, Conflict if it overlaps a live one (username, client id,
        node id or topic root), StorageError if the property does not exist.
        """
        if client_id is None and kind is not CredentialKind.GATEWAY:
            client_id = username
        try:
            credential = Credential(
                id=uuid.uuid4().hex,
                username=username,
                kind=kind,
                property_id=property_id,
                client_id=client_id,
                namespace=namespace or Namespace(),
            )
        except ValueError as exc:
            raise InvalidRequest(f"invalid broker credential: {exc}", code="broker_credential_invalid") from exc
        record = CredentialRecord(
            credential=credential, label=label, created_at=self._clock.now(), created_by=created_by
        )
        password = new_broker_password()
        digest = await asyncio.to_thread(self._passwords.hash, password)
        await self._run(lambda db: store.insert_credential(db, record, digest))
        self._changed(record)
        log.info(
            "broker credential created",
            extra={"credential": credential.id, "username": username, "kind": str(kind), "by": created_by},
        )
        return IssuedCredential(record=record, password=SecretStr(password))

    async def get(self, credential_id: str) -> CredentialRecord:
        """The credential with that id (revoked or not); NotFound otherwise."""
        return await self._db.run(lambda db: store.credential_by_id(db, credential_id))

    async def find(self, property_id: str | None = None, *, include_revoked: bool = False) -> list[CredentialRecord]:
        """Credentials of one property, or of every property and the gateway with None; oldest first."""
        return await self._db.run(lambda db: store.where(db, property_id, include_revoked))

    async def revoke(self, credential_id: str, *, revoked_by: str | None = None) -> CredentialRecord:
        """Revoke a credential: it logs in no more (clients already connected are the broker's to drop)."""
        now = self._clock.now().isoformat()
        record = await self._run(lambda db: store.revoke_credential(db, credential_id, now, revoked_by))
        self._changed(record)
        log.info("broker credential revoked", extra={"credential": credential_id, "by": revoked_by})
        return record

    async def revoke_made_by(self, created_by: str, *, revoked_by: str | None = None) -> list[CredentialRecord]:
        """Revoke every live credential ``created_by`` made (e.g. the logins an earlier start made); those revoked."""
        now = self._clock.now().isoformat()
        records = await self._run(lambda db: store.revoke_made_by(db, created_by, now, revoked_by))
        if records:
            log.info(
                "broker credentials revoked",
                extra={"credentials": [r.credential.id for r in records], "made_by": created_by, "by": revoked_by},
            )
        return records

    async def discard(self, credential_id: str) -> None:
        """Delete a credential the broker would not take (so it never existed); only right after ``create``."""
        await self._run(lambda db: store.delete_credential(db, credential_id))
        log.info("broker credential discarded", extra={"credential": credential_id})

    async def verify(self, username: str, password: str) -> Scope | None:
        """The scope of the live credential ``username`` if ``password`` is its password; None otherwise.

        An unknown username costs one argon2 verification too, so a miss does not tell usernames apart.
        """
        if len(password) > MAX_PASSWORD_LENGTH or len(username) > MAX_PASSWORD_LENGTH:
            return None
        digest = hashlib.sha256(password.encode()).digest()
        remembered = self._verified.get(username)
        if remembered is not None and hmac.compare_digest(remembered[0], digest):
            return remembered[1]
        # A revocation queued after this read must not be undone by remembering what the read saw.
        generation = self._generation
        found = await self._db.run(lambda db: store.live_login(db, username))
        stored = None if found is None else found[1]
        if not await asyncio.to_thread(self._passwords.verify, stored, password) or found is None:
            return None
        scope = found[0].scope
        if generation == self._generation:
            self._verified[username] = (digest, scope)
        return scope
