"""Mosquitto kept in step: with ``dynsec`` the gateway, logged in as a dynamic-security admin, creates a client
for each credential issued through the API and deletes it on revocation, and at start removes what the database
says is revoked. Skipped where Mosquitto's dynamic security plugin is not installed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from gateway.config import BrokerSettings
from tests.support.api import Api, bearer, problem, resident, running_api
from tests.support.brokers import BrokerHandle
from tests.support.gateway import GatewayFactory
from tests.support.secure_brokers import ADMIN, ADMIN_PASSWORD, dynsec_missing, mosquitto_secured

pytestmark = [pytest.mark.mosquitto, pytest.mark.parametrize("broker", ["embedded"], indirect=True)]

PATH = "/properties/p1/broker-credentials"


def body(root: str, node: str) -> dict[str, Any]:
    return {
        "kind": "device",
        "label": f"lock {node}",
        "node_ids": [node],
        "state_roots": [root],
        "command_roots": [root],
    }


def login_of(issued: dict[str, Any]) -> tuple[str, str, str]:
    login = issued["login"]
    return login["username"], login["password"], login["client_id"]


async def connects(port: int, username: str, password: str, client_id: str) -> bool:
    try:
        async with aiomqtt.Client("127.0.0.1", port, username=username, password=password, identifier=client_id):
            return True
    except aiomqtt.MqttError:
        return False


async def test_credentials_issued_and_revoked_through_the_api_reach_mosquitto(
    tmp_path: Path, make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str
) -> None:
    missing = dynsec_missing()
    if missing is not None:
        pytest.skip(missing)
    (tmp_path / "mosquitto").mkdir()
    async with mosquitto_secured(tmp_path / "mosquitto") as mosquitto:
        port = mosquitto.port
        # The gateway's own login is the dynsec admin; with dynsec it may also publish anywhere.
        gateway = make_gateway.using(
            broker=BrokerSettings(host="127.0.0.1", port=port, username=ADMIN, password=ADMIN_PASSWORD), dynsec=True
        )
        async with running_api(gateway, broker, prefix, make_gateway.clock) as api:
            await resident(api)
            installer = await api.staff("ivan.installer", "installer", "p1")
            keep, drop, later = [await _create(api, installer, f"fwsim/u10{i}/lock", f"u10{i}-lock") for i in (1, 2, 3)]
            for issued in (keep, drop, later):
                assert await connects(port, *login_of(issued))

            # the device reaches only its own topics on Mosquitto too; the gateway (admin) reads and commands
            username, password, client_id = login_of(keep)
            async with (
                aiomqtt.Client("127.0.0.1", port, username=ADMIN, password=ADMIN_PASSWORD, identifier="obs") as obs,
                aiomqtt.Client("127.0.0.1", port, username=username, password=password, identifier=client_id) as dev,
            ):
                await obs.subscribe("fwsim/#", qos=1)
                await dev.subscribe("fwsim/u101/lock/#", qos=1)
                await dev.publish("fwsim/u102/lock/set", b"UNLOCK", qos=1)
                await dev.publish("fwsim/u101/lock/fence", b"", qos=1)
                async with asyncio.timeout(5):
                    got = [str((await anext(obs.messages)).topic)]
                assert got == ["fwsim/u101/lock/fence"]
                await obs.publish("fwsim/u101/lock/set", b"LOCK", qos=1)  # the gateway publishes commands
                async with asyncio.timeout(5):
                    heard = [str(m.topic) async for m in _take(dev.messages, 2)]
                assert "fwsim/u101/lock/set" in heard

            # a login Mosquitto already has (the test's gateway client), or the gateway's own: refused, nothing kept
            for taken in (mosquitto.gateway[0], ADMIN):
                r = await api.http.post(
                    PATH, json={**body("fwsim/u109/lock", "u109-lock"), "username": taken}, headers=bearer(installer)
                )
                problem(r, 409, "broker_credential_overlaps")
            listed = (await api.http.get(PATH, params={"include_revoked": "true"}, headers=bearer(installer))).json()
            assert len(listed) == 3
            assert await connects(port, *mosquitto.gateway, "aptgateway-test")

            # revoked through the API: the Mosquitto client is gone
            r = await api.http.delete(f"{PATH}/{drop['credential']['id']}", headers=bearer(installer))
            assert r.status_code == 200, r.text
            assert not await connects(port, *login_of(drop))
            # revoked behind the gateway's back (no broker told): Mosquitto still admits it until the next start
            await api.services.broker_credentials.revoke(later["credential"]["id"])
            assert await connects(port, *login_of(later))

        async with running_api(gateway, broker, prefix, make_gateway.clock):
            assert not await connects(port, *login_of(later))
            assert await connects(port, *login_of(keep))


async def _create(api: Api, token: str, root: str, node: str) -> dict[str, Any]:
    r = await api.http.post(PATH, json=body(root, node), headers=bearer(token))
    assert r.status_code == 201, r.text
    issued: dict[str, Any] = r.json()
    return issued


async def _take(messages: Any, count: int) -> Any:
    async for message in messages:
        yield message
        count -= 1
        if count == 0:
            return
