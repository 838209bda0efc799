"""Brokers that enforce broker credentials: the embedded one with its gate, Mosquitto with dynamic security."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from gateway.clock import ManualClock
from gateway.mqtt.acl import Credential, CredentialKind, Scope
from gateway.mqtt.broker import EmbeddedBroker, free_port
from gateway.mqtt.credentials import BrokerCredentials, new_broker_password
from gateway.mqtt.dynsec import DynsecClient
from gateway.storage.db import Database
from tests.support.brokers import REPO, mosquitto_binary, wait_port

__all__ = ["DYNSEC_PLUGIN", "PROPERTY", "SecuredBroker", "dynsec_missing", "embedded_secured", "mosquitto_secured"]

PROPERTY = "p1"
DYNSEC_CONF = REPO / "deploy" / "mosquitto-dynsec.conf"
DYNSEC_PLUGIN = re.search(r"^plugin (\S+)$", DYNSEC_CONF.read_text(), re.MULTILINE)[1]  # type: ignore[index]
ADMIN = "gateway-admin"
ADMIN_PASSWORD = "admin-" + new_broker_password()


class SecuredBroker(Protocol):
    """A broker that admits only credentials it was given, each within its scope."""

    host: str
    port: int
    gateway: tuple[str, str]
    """Username and password of a gateway credential (may do everything)."""

    async def issue(self, credential: Credential) -> str:
        """Give the broker ``credential``; its password."""
        ...


class _Embedded:
    def __init__(self, broker: EmbeddedBroker, credentials: BrokerCredentials) -> None:
        self.host, self.port = broker.host, broker.port
        self.broker = broker
        self.credentials = credentials
        self.gateway = ("", "")

    async def issue(self, credential: Credential) -> str:
        issued = await self.credentials.create(
            credential.username,
            credential.kind,
            property_id=credential.property_id,
            namespace=credential.namespace,
            client_id=credential.client_id,
        )
        return issued.password.get_secret_value()


class _Mosquitto:
    def __init__(self, port: int, admin: DynsecClient) -> None:
        self.host, self.port = "127.0.0.1", port
        self.admin = admin
        self.gateway = ("", "")

    async def issue(self, credential: Credential) -> str:
        password = new_broker_password()
        await self.admin.grant(Scope.of(credential), password)
        return password


def dynsec_missing() -> str | None:
    """Why Mosquitto with dynamic security cannot run here, or None."""
    if mosquitto_binary() is None or shutil.which("mosquitto_ctrl") is None:
        return "needs the mosquitto and mosquitto_ctrl binaries"
    if not Path(DYNSEC_PLUGIN).exists():
        return f"needs Mosquitto's dynamic security plugin at {DYNSEC_PLUGIN}"
    return None


async def _gateway_credential(broker: _Embedded | _Mosquitto) -> None:
    username = "gateway"
    password = await broker.issue(Credential(id="gw", username=username, kind=CredentialKind.GATEWAY))
    broker.gateway = (username, password)


@contextlib.asynccontextmanager
async def embedded_secured(workdir: Path) -> AsyncIterator[_Embedded]:
    """The embedded broker checking credentials issued into a fresh database."""
    async with Database(workdir / "credentials.sqlite3") as db:
        row = {"id": PROPERTY, "name": "Test property", "created_at": "2026-01-01T00:00:00+00:00"}
        await db.run(lambda d: d.table("properties").insert(row))
        credentials = BrokerCredentials(db, ManualClock())
        async with EmbeddedBroker(credentials=credentials.verify) as broker:
            handle = _Embedded(broker, credentials)
            await _gateway_credential(handle)
            yield handle


@contextlib.asynccontextmanager
async def mosquitto_secured(workdir: Path) -> AsyncIterator[_Mosquitto]:
    """A private Mosquitto from deploy/mosquitto-dynsec.conf, its plugin file initialised with an admin login."""
    binary = mosquitto_binary()
    assert binary is not None
    state = workdir / "dynamic-security.json"
    init = await asyncio.create_subprocess_exec(
        "mosquitto_ctrl", "dynsec", "init", str(state), ADMIN, ADMIN_PASSWORD,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await init.wait() == 0
    port = free_port()
    lines = [
        f"plugin_opt_config_file {state}" if ln.startswith("plugin_opt_config_file ") else ln
        for ln in DYNSEC_CONF.read_text().splitlines()
        if not ln.startswith("listener ")
    ]
    conf = workdir / "mosquitto-dynsec.conf"
    # Started as root, Mosquitto would drop to the mosquitto user, who cannot write the test's plugin file.
    conf.write_text("\n".join([f"listener {port} 127.0.0.1", f"user {getpass.getuser()}", *lines]) + "\n")
    proc = await asyncio.create_subprocess_exec(
        binary, "-c", str(conf), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        await wait_port("127.0.0.1", port)
        async with DynsecClient("127.0.0.1", port, ADMIN, ADMIN_PASSWORD) as admin:
            await admin.deny_by_default()
            handle = _Mosquitto(port, admin)
            await _gateway_credential(handle)
            yield handle
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
