"""Synchronous reads and writes of broker credentials (run on the writer thread through ``Database.run``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlite_utils
from pydantic import BaseModel, ConfigDict

from ..errors import Conflict, NotFound
from ..storage.records import parse_time, transaction
from ..storage.rows import insert_row, select_all, select_one
from .acl import Credential, CredentialKind, Namespace, Scope, roots_overlap

__all__ = [
    "CredentialRecord",
    "credential_by_id",
    "delete_credential",
    "insert_credential",
    "live_login",
    "revoke_credential",
    "revoke_made_by",
    "where",
]


class CredentialRecord(BaseModel):
    """A stored broker credential: the credential itself, who made it and when, and whether it was revoked."""

    model_config = ConfigDict(frozen=True)

    credential: Credential
    label: str | None
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    @property
    def scope(self) -> Scope:
        """What the credential may do on the broker."""
        return Scope.of(self.credential)


def _record(row: dict[str, Any]) -> CredentialRecord:
    credential = Credential(
        id=row["id"],
        username=row["username"],
        kind=CredentialKind(row["kind"]),
        property_id=row["property_id"],
        client_id=row["client_id"],
        namespace=Namespace.model_validate_json(row["namespace"]),
    )
    return CredentialRecord(
        credential=credential,
        label=row["label"],
        created_at=datetime.fromisoformat(row["created_at"]),
        created_by=row["created_by"],
        revoked_at=parse_time(row["revoked_at"]),
        revoked_by=row["revoked_by"],
    )


def where(db: sqlite_utils.Database, property_id: str | None, include_revoked: bool) -> list[CredentialRecord]:
    """Credentials of one property (or of all, with None), oldest first."""
    clauses, args = [], []
    if property_id is not None:
        clauses.append("property_id = ?")
        args.append(property_id)
    if not include_revoked:
        clauses.append("revoked_at IS NULL")
    condition = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    # rowid breaks ties in creation order (two credentials made within one tick of the clock)
    rows = select_all(db, f"SELECT * FROM broker_credentials {condition} ORDER BY created_at, rowid", args)
    return [_record(r) for r in rows]


def credential_by_id(db: sqlite_utils.Database, credential_id: str) -> CredentialRecord:
    """The credential with that id; NotFound otherwise."""
    row = select_one(db, "SELECT * FROM broker_credentials WHERE id = ?", [credential_id])
    if row is None:
        raise NotFound("no such broker credential", code="broker_credential_not_found")
    return _record(row)


def live_login(db: sqlite_utils.Database, username: str) -> tuple[CredentialRecord, str] | None:
    """The live credential with that username and its password hash."""
    row = select_one(db, "SELECT * FROM broker_credentials WHERE username = ? AND revoked_at IS NULL", [username])
    return None if row is None else (_record(row), row["password_hash"])


def _clash(new: Credential, old: Credential) -> str | None:
    if new.username == old.username:
        return "username"
    if new.client_id is not None and new.client_id == old.client_id:
        return "client id"
    if set(new.namespace.node_ids) & set(old.namespace.node_ids) and (
        new.namespace.discovery_prefix == old.namespace.discovery_prefix
    ):
        return "discovery node id"
    if any(roots_overlap(a, b) for a in new.namespace.roots for b in old.namespace.roots):
        return "topic root"
    return None


def insert_credential(db: sqlite_utils.Database, record: CredentialRecord, password_hash: str) -> None:
    """Store a new credential; Conflict if its username, client id or namespace overlaps a live one's."""
    new = record.credential
    with transaction(db):
        for live in where(db, None, include_revoked=False):
            clash = _clash(new, live.credential)
            if clash is not None:
                raise Conflict(
                    f"the {clash} overlaps broker credential {live.credential.username!r}",
                    code="broker_credential_overlaps",
                    field=clash.replace(" ", "_"),
                )
        insert_row(
            db,
            "broker_credentials",
            {
                "id": new.id,
                "username": new.username,
                "kind": str(new.kind),
                "property_id": new.property_id,
                "client_id": new.client_id,
                "namespace": new.namespace.model_dump_json(),
                "password_hash": password_hash,
                "label": record.label,
                "created_at": record.created_at.isoformat(),
                "created_by": record.created_by,
                "revoked_at": None,
                "revoked_by": None,
            },
        )


def revoke_credential(db: sqlite_utils.Database, credential_id: str, now: str, actor: str | None) -> CredentialRecord:
    """Revoke a credential (once: a second revocation keeps the first's time and actor); NotFound if unknown."""
    with transaction(db):
        db.conn.execute(
            "UPDATE broker_credentials SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
            (now, actor, credential_id),
        )
        return credential_by_id(db, credential_id)


def revoke_made_by(db: sqlite_utils.Database, created_by: str, now: str, actor: str | None) -> list[CredentialRecord]:
    """Revoke every live credential ``created_by`` made, in one transaction; the revoked ones."""
    with transaction(db):
        ids = [
            row["id"]
            for row in select_all(
                db, "SELECT id FROM broker_credentials WHERE created_by = ? AND revoked_at IS NULL", [created_by]
            )
        ]
        return [revoke_credential(db, credential_id, now, actor) for credential_id in ids]


def delete_credential(db: sqlite_utils.Database, credential_id: str) -> None:
    """Delete a credential that never took effect (the broker refused it); nothing if unknown."""
    with transaction(db):
        db.conn.execute("DELETE FROM broker_credentials WHERE id = ?", (credential_id,))
