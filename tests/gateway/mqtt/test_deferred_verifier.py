"""A broker that starts before the credential store is open (as ``gateway run`` starts its embedded broker) admits
nobody until it is bound to the store, and nobody while the store cannot answer: it never fails open."""

from __future__ import annotations

from pathlib import Path

import aiomqtt
import pytest

from gateway.clock import ManualClock
from gateway.mqtt.acl import CredentialKind
from gateway.mqtt.broker import EmbeddedBroker
from gateway.mqtt.broker_auth import DeferredVerifier
from gateway.mqtt.credentials import BrokerCredentials
from gateway.storage import Database


async def connects(broker: EmbeddedBroker, username: str, password: str) -> bool:
    try:
        async with aiomqtt.Client(
            broker.host, broker.port, username=username, password=password, identifier=username, timeout=5
        ):
            return True
    except aiomqtt.MqttCodeError as exc:
        assert str(exc.rc) == "Not authorized"
        return False


async def test_nobody_gets_in_before_the_store_is_bound_nor_after_it_closed(tmp_path: Path) -> None:
    async with Database(tmp_path / "gw.sqlite3") as db:
        credentials = BrokerCredentials(db, ManualClock())
        issued = await credentials.create("gateway", CredentialKind.GATEWAY, property_id=None)
        other = await credentials.create("other", CredentialKind.GATEWAY, property_id=None)
    password = issued.password.get_secret_value()
    verifier = DeferredVerifier()
    async with EmbeddedBroker(credentials=verifier) as broker:
        assert not await connects(broker, "gateway", password)  # not bound yet
        db = Database(tmp_path / "gw.sqlite3")
        verifier.bind(BrokerCredentials(db, ManualClock()).verify)
        assert not await connects(broker, "gateway", password)  # bound, the store not open yet
        async with db:
            assert await connects(broker, "gateway", password)
            assert not await connects(broker, "gateway", password + "x")
        # The store closed (a stop under way): a login it never verified is refused, without an error.
        assert not await connects(broker, "other", other.password.get_secret_value())


async def test_a_store_failing_otherwise_is_not_hidden() -> None:
    async def broken(username: str, password: str) -> None:
        raise RuntimeError("a bug, not a closed store")

    verifier = DeferredVerifier()
    verifier.bind(broken)
    with pytest.raises(RuntimeError):
        await verifier("gateway", "secret")
