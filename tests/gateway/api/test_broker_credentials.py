"""Broker credentials through the API, used by real MQTT clients on a gated embedded broker: issued once, scoped to
their own topics, listed without secrets, revoked with the connection cut; who may do it; audited; never stored."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import httpx
import pytest

from gateway.mqtt.acl import CredentialKind
from gateway.mqtt.broker import EmbeddedBroker
from gateway.mqtt.credential_service import DropOnWithdraw
from tests.support.api import Api, bearer, problem, resident

pytestmark = pytest.mark.parametrize("broker", ["embedded"], indirect=True)

U101, U102 = "fwsim/u101/lock", "fwsim/u102/lock"
PATH = "/properties/{}/broker-credentials"


def lock_body(root: str, node: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "device",
        "label": f"Door lock {node}",
        "node_ids": [node],
        "state_roots": [root],
        "command_roots": [root],
    }
    body.update(changes)
    return body


@contextlib.asynccontextmanager
async def gated(api: Api) -> AsyncIterator[tuple[EmbeddedBroker, tuple[str, str]]]:
    """A gated embedded broker over the API's credentials, attached so revocations cut connections; and a gateway
    login on it (username, password) to observe everything."""
    async with EmbeddedBroker(credentials=api.services.broker_credentials.verify) as broker:
        api.services.device_credentials.attach(DropOnWithdraw(broker))
        issued = await api.services.broker_credentials.create("observer", CredentialKind.GATEWAY, property_id=None)
        try:
            yield broker, ("observer", issued.password.get_secret_value())
        finally:
            api.services.device_credentials.attach(None)


def mqtt_client(broker: EmbeddedBroker, username: str, password: str, client_id: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        broker.host, broker.port, username=username, password=password, identifier=client_id, timeout=5
    )


async def until_fence(observer: aiomqtt.Client, fence: str) -> list[str]:
    """Topics the observer gets before the fence message arrives (what the device sent before it)."""
    got: list[str] = []
    async with asyncio.timeout(10):
        async for message in observer.messages:
            if str(message.topic) == fence:
                return got
            got.append(str(message.topic))
    return got


async def create(api: Api, token: str, body: dict[str, Any], property_id: str = "p1") -> httpx.Response:
    return await api.http.post(PATH.format(property_id), json=body, headers=bearer(token))


async def test_a_credential_is_shown_once_used_by_a_real_device_and_cut_off_when_revoked(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await resident(api)
    installer = await api.staff("ivan.installer", "installer", "p1")
    manager = await api.staff("mona.manager", "manager", "p1")
    async with gated(api) as (broker, observer_login):
        r = await create(api, installer, lock_body(U101, "u101-lock", username="lock-u101"))
        assert r.status_code == 201, r.text
        assert r.headers["cache-control"] == "no-store"
        issued = r.json()
        login, credential = issued["login"], issued["credential"]
        password = login["password"]
        assert len(password) >= 32 and "once" in issued["note"]
        assert (login["username"], login["client_id"]) == ("lock-u101", "lock-u101")
        assert login["broker_url"] == api.services.settings.broker.url
        assert credential["property_id"] == "p1" and credential["kind"] == "device"
        assert f"{U101}/#" in credential["publish"] and f"{api.prefix}/+/u101-lock/#" in credential["publish"]
        assert credential["subscribe"] == [f"{U101}/#", f"{api.prefix}/status"]
        other = await create(api, manager, lock_body(U102, "u102-lock"))  # a username made from the label
        assert other.status_code == 201, other.text
        other_login = other.json()["login"]
        assert other_login["username"].startswith("door-lock-u102-lock-")

        # the device logs in and publishes its own state; another device's command topic never receives anything
        fence = f"{U101}/fence"
        async with (
            mqtt_client(broker, *observer_login, "observer") as observer,
            mqtt_client(broker, login["username"], password, login["client_id"]) as device,
        ):
            await observer.subscribe("fwsim/#", qos=1)
            await device.publish(f"{U101}/state", b"LOCKED", qos=1)
            await device.publish(f"{U102}/set", b"UNLOCK", qos=1)
            await device.publish(f"{U102}/state", b"LOCKED", qos=1)
            await device.publish(fence, b"", qos=1)
            assert await until_fence(observer, fence) == [f"{U101}/state"]

            # listing shows both, never a password
            r = await api.http.get(PATH.format("p1"), headers=bearer(installer))
            assert r.status_code == 200, r.text
            assert [c["username"] for c in r.json()] == ["lock-u101", other_login["username"]]
            assert password not in r.text and other_login["password"] not in r.text and "password" not in r.text

            # revoked: the live connection is cut at once
            r = await api.http.delete(f"{PATH.format('p1')}/{credential['id']}", headers=bearer(installer))
            assert r.status_code == 200, r.text
            assert r.json()["revoked_at"] is not None and r.json()["revoked_by"] is not None
            with pytest.raises(aiomqtt.MqttError):
                async with asyncio.timeout(5):
                    async for _ in device.messages:
                        pass
        # ... and it cannot log in again; the other credential still can
        with pytest.raises(aiomqtt.MqttError):
            async with mqtt_client(broker, login["username"], password, login["client_id"]):
                pass
        async with mqtt_client(broker, other_login["username"], other_login["password"], other_login["client_id"]):
            pass

    # a revoked credential is listed only when asked for
    live = (await api.http.get(PATH.format("p1"), headers=bearer(installer))).json()
    assert [c["username"] for c in live] == [other_login["username"]]
    every = await api.http.get(PATH.format("p1"), params={"include_revoked": "true"}, headers=bearer(installer))
    assert [c["username"] for c in every.json()] == ["lock-u101", other_login["username"]]

    # audited by the use case, who and which topics, never the password
    r = await api.http.get("/operator/audit", headers=bearer(api.operator))
    entries = [e for e in r.json()["entries"] if e["action"].startswith("broker_credential.")]
    assert [(e["action"], e["actor_role"], e["property_id"]) for e in reversed(entries)] == [
        ("broker_credential.create", "installer", "p1"),
        ("broker_credential.create", "manager", "p1"),
        ("broker_credential.revoke", "installer", "p1"),
    ]
    assert entries[0]["target"] == credential["id"] and entries[0]["detail"]["username"] == "lock-u101"
    assert password not in r.text

    # the passwords exist nowhere: not in the database file, its write-ahead log, nor the logs
    await api.gateway.db.run(lambda db: db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall())
    database = api.services.settings.database
    stored = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert b"lock-u101" in stored  # the scan reads the right files
    for secret in (password, other_login["password"]):
        assert secret.encode() not in stored
        assert secret not in caplog.text


async def test_who_may_issue_list_and_revoke(api: Api) -> None:
    res = await resident(api)
    installer = await api.staff("ivan.installer", "installer", "p1")
    r = await api.http.post("/properties", json={"id": "p2", "name": "Oak Row"}, headers=bearer(api.operator))
    assert r.status_code == 201, r.text
    other_manager = await api.staff("oscar.manager", "manager", "p2")

    r = await create(api, installer, lock_body(U101, "u101-lock"))
    assert r.status_code == 201, r.text
    own_id = r.json()["credential"]["id"]
    # the operator, for any property
    r = await create(api, api.operator, lock_body("zigbee2mqtt", "0x00158d0001", kind="bridge", label="Z2M"), "p2")
    assert r.status_code == 201, r.text
    p2_id = r.json()["credential"]["id"]
    r = await api.http.get(PATH.format("p1"), headers=bearer(api.operator))
    assert [c["id"] for c in r.json()] == [own_id]

    # a resident: the role is refused before any id is looked at
    for request in (
        api.http.get(PATH.format("p1"), headers=bearer(res.token)),
        create(api, res.token, lock_body("x/y", "n1")),
        api.http.delete(f"{PATH.format('p1')}/{own_id}", headers=bearer(res.token)),
    ):
        problem(await request, 403, "role_forbidden")
    problem(await api.http.get(PATH.format("p1")), 401, "unauthenticated")

    # another property's manager: p1 answers as a property that does not exist
    for pid in ("p1", "nope"):
        problem(await api.http.get(PATH.format(pid), headers=bearer(other_manager)), 404, "property_not_found")
        problem(await create(api, other_manager, lock_body("a/b", "n2"), pid), 404, "property_not_found")
    # ... and p1's credential under their own property answers exactly as an unknown id
    answers = [
        problem(
            await api.http.delete(f"{PATH.format('p2')}/{cid}", headers=bearer(other_manager)),
            404,
            "broker_credential_not_found",
        )
        for cid in (own_id, "no-such-id")
    ]
    assert answers[0]["detail"] == answers[1]["detail"]
    r = await api.http.delete(f"{PATH.format('p1')}/{p2_id}", headers=bearer(installer))
    problem(r, 404, "broker_credential_not_found")
    r = await api.http.get(PATH.format("p2"), headers=bearer(other_manager))
    assert [c["id"] for c in r.json()] == [p2_id]  # still live

    # refusals with stable codes
    problem(await create(api, installer, lock_body(U101, "u101-other")), 409, "broker_credential_overlaps")
    problem(await create(api, installer, lock_body(f"{U101}/sub", "n3")), 409, "broker_credential_overlaps")
    problem(await create(api, installer, lock_body(api.prefix, "n4")), 422, "broker_credential_invalid")
    problem(await create(api, installer, lock_body("aptgateway/x", "n5")), 422, "broker_credential_invalid")
    nine = [f"n{i}" for i in range(9)]
    problem(await create(api, installer, lock_body("nine", "n6", node_ids=nine)), 422, "broker_credential_invalid")
    problem(await create(api, installer, lock_body("a/+", "n7")), 422, "validation_failed")
    problem(await create(api, installer, lock_body("a/b", "n8", password="mine")), 422, "validation_failed")
    problem(await create(api, installer, lock_body("a", "n9", kind="gateway")), 422, "validation_failed")
    empty = {"kind": "device", "label": "nothing"}
    problem(await create(api, installer, empty), 422, "validation_failed")

    # revoking twice keeps the first revocation; it is audited once
    first = await api.http.delete(f"{PATH.format('p1')}/{own_id}", headers=bearer(installer))
    again = await api.http.delete(f"{PATH.format('p1')}/{own_id}", headers=bearer(api.operator))
    assert first.status_code == again.status_code == 200
    assert first.json()["revoked_at"] == again.json()["revoked_at"]
    assert first.json()["revoked_by"] == again.json()["revoked_by"]
    audit = (await api.http.get("/operator/audit", headers=bearer(api.operator))).json()["entries"]
    assert [e["target"] for e in audit if e["action"] == "broker_credential.revoke"] == [own_id]
