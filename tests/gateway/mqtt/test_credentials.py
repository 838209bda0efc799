"""Broker credentials: generated passwords shown once, argon2 hashes only, overlaps refused, revocation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.errors import Conflict, InvalidRequest, NotFound, StorageError
from gateway.mqtt.acl import CredentialKind, Namespace
from gateway.mqtt.credentials import BrokerCredentials
from gateway.storage.db import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with Database(tmp_path / "gw.sqlite3") as database:
        rows = [{"id": pid, "name": pid, "created_at": "2026-01-01"} for pid in ("p1", "p2")]
        await database.run(lambda d: d.table("properties").insert_all(rows))
        yield database


@pytest.fixture
def credentials(db: Database, clock: ManualClock) -> BrokerCredentials:
    return BrokerCredentials(db, clock)


def lock(root: str = "fwsim/u101/lock", node: str = "u101-lock") -> Namespace:
    return Namespace(node_ids=(node,), state_roots=(root,), command_roots=(root,))


async def test_a_generated_password_is_shown_once_and_only_its_argon2_hash_is_stored(
    credentials: BrokerCredentials, db: Database, tmp_path: Path
) -> None:
    issued = await credentials.create("lock-u101", CredentialKind.DEVICE, property_id="p1", namespace=lock())
    password = issued.password.get_secret_value()
    assert len(password) >= 22 and password not in repr(issued)  # >= 128 bits of token_urlsafe; SecretStr hides it
    assert issued.record.credential.client_id == "lock-u101"  # a device's client id defaults to its username
    stored = await db.run(lambda d: d.execute("SELECT password_hash FROM broker_credentials").fetchone()[0])
    assert stored.startswith("$argon2id$")
    await db.run(lambda d: d.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
    files = await asyncio.to_thread(lambda: b"".join(p.read_bytes() for p in tmp_path.glob("gw.sqlite3*")))
    assert password.encode() not in files
    other = await credentials.create(
        "lock-u102", CredentialKind.DEVICE, property_id="p1", namespace=lock("x/u102", "n2")
    )
    assert other.password.get_secret_value() != password


async def test_verify_gives_the_scope_for_the_right_password_only(credentials: BrokerCredentials) -> None:
    issued = await credentials.create("lock-u101", CredentialKind.DEVICE, property_id="p1", namespace=lock())
    password = issued.password.get_secret_value()
    scope = await credentials.verify("lock-u101", password)
    assert scope is not None and scope == issued.record.scope and scope.client_id == "lock-u101"
    assert await credentials.verify("lock-u101", password) == scope  # remembered: same answer
    assert await credentials.verify("lock-u101", password + "x") is None
    assert await credentials.verify("lock-u101", "") is None
    assert await credentials.verify("nobody", password) is None
    assert await credentials.verify("lock-u101", "x" * 10_000) is None


async def test_a_revoked_credential_logs_in_no_more_even_after_a_remembered_login(
    credentials: BrokerCredentials, clock: ManualClock
) -> None:
    issued = await credentials.create("lock-u101", CredentialKind.DEVICE, property_id="p1", namespace=lock())
    password = issued.password.get_secret_value()
    assert await credentials.verify("lock-u101", password) is not None
    clock.advance(timedelta(minutes=5))
    revoked = await credentials.revoke(issued.record.credential.id, revoked_by="installer-1")
    assert revoked.revoked_at == clock.now() and revoked.revoked_by == "installer-1"
    assert await credentials.verify("lock-u101", password) is None
    again = await credentials.revoke(issued.record.credential.id, revoked_by="someone-else")
    assert again.revoked_at == revoked.revoked_at and again.revoked_by == "installer-1"  # the first one stands
    with pytest.raises(NotFound):
        await credentials.revoke("no-such-id")


@pytest.mark.parametrize(
    ("username", "client_id", "namespace", "field"),
    [
        ("lock-u101", "other-id", lock("q/1", "q1"), "username"),
        ("other", "lock-u101", lock("q/1", "q1"), "client_id"),
        ("other", None, lock("q/1", "u101-lock"), "discovery_node_id"),
        ("other", None, lock("fwsim/u101", "q1"), "topic_root"),  # above the existing root
        ("other", None, lock("fwsim/u101/lock/sub", "q1"), "topic_root"),  # below it
    ],
)
async def test_a_credential_overlapping_a_live_one_is_refused(
    credentials: BrokerCredentials, username: str, client_id: str | None, namespace: Namespace, field: str
) -> None:
    first = await credentials.create("lock-u101", CredentialKind.DEVICE, property_id="p1", namespace=lock())
    with pytest.raises(Conflict) as refused:
        await credentials.create(
            username, CredentialKind.DEVICE, property_id="p2", namespace=namespace, client_id=client_id
        )
    assert refused.value.code == "broker_credential_overlaps" and refused.value.field == field
    await credentials.revoke(first.record.credential.id)
    await credentials.create(
        username, CredentialKind.DEVICE, property_id="p2", namespace=namespace, client_id=client_id
    )


async def test_malformed_credentials_and_unknown_properties_are_refused(credentials: BrokerCredentials) -> None:
    with pytest.raises(InvalidRequest):
        await credentials.create("has space", CredentialKind.DEVICE, property_id="p1", namespace=lock())
    with pytest.raises(InvalidRequest):
        await credentials.create("bridge", CredentialKind.BRIDGE, property_id=None, namespace=lock())
    with pytest.raises(InvalidRequest):
        await credentials.create("gw", CredentialKind.GATEWAY, property_id=None, namespace=lock())
    with pytest.raises(StorageError):
        await credentials.create("dev", CredentialKind.DEVICE, property_id="no-such-property", namespace=lock())


async def test_listing_by_property_with_and_without_revoked(credentials: BrokerCredentials) -> None:
    a = await credentials.create("a", CredentialKind.DEVICE, property_id="p1", namespace=lock("r/a", "na"))
    b = await credentials.create("b", CredentialKind.BRIDGE, property_id="p2", namespace=lock("r/b", "nb"))
    gw = await credentials.create("gateway", CredentialKind.GATEWAY, property_id=None)
    assert gw.record.credential.client_id is None and gw.record.scope.everything
    await credentials.revoke(a.record.credential.id)
    assert [r.credential.username for r in await credentials.find("p1")] == []
    assert [r.credential.username for r in await credentials.find("p1", include_revoked=True)] == ["a"]
    assert {r.credential.username for r in await credentials.find()} == {"b", "gateway"}
    assert (await credentials.get(b.record.credential.id)).credential.namespace == lock("r/b", "nb")


async def test_the_credentials_one_maker_made_are_revoked_together_and_log_in_no_more(
    credentials: BrokerCredentials,
) -> None:
    # What ``gateway run`` does at each start with the logins its previous start made (passwords never stored).
    own = await credentials.create(
        "fwsim-u101-lock", CredentialKind.DEVICE, property_id=None, namespace=lock(), created_by="gateway:start"
    )
    gateway = await credentials.create("gw", CredentialKind.GATEWAY, property_id=None, created_by="gateway:start")
    staff = await credentials.create(
        "lock-u102", CredentialKind.DEVICE, property_id="p1", namespace=lock("x/u102", "n2"), created_by="maria"
    )
    assert await credentials.verify("fwsim-u101-lock", own.password.get_secret_value()) is not None  # remembered
    revoked = await credentials.revoke_made_by("gateway:start", revoked_by="gateway:start")
    assert {r.credential.username for r in revoked} == {"fwsim-u101-lock", "gw"}
    assert all(r.revoked_by == "gateway:start" and r.revoked_at is not None for r in revoked)
    assert await credentials.verify("fwsim-u101-lock", own.password.get_secret_value()) is None
    assert await credentials.verify("gw", gateway.password.get_secret_value()) is None
    assert await credentials.verify("lock-u102", staff.password.get_secret_value()) is not None
    assert await credentials.revoke_made_by("gateway:start") == []
    # The same namespace and usernames may be issued again at once.
    await credentials.create("fwsim-u101-lock", CredentialKind.DEVICE, property_id=None, namespace=lock())
