"""A running gateway with its HTTP API, a property with two simulated units, and helpers to act as each role."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from argon2 import PasswordHasher
from fwsim import BrokerAddress, UnitSim
from pydantic import SecretStr

from gateway.accounts import Passwords
from gateway.api import ApiService
from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.config import AccountSettings, ApiSettings
from gateway.services import Services
from tests.support.brokers import BrokerHandle
from tests.support.gateway import GatewayFactory
from tests.support.polling import eventually

PASSWORD = "correct horse battery staple"
OPERATOR = "root-operator"
# argon2 at its cheapest, so a test can sign in dozens of times; production uses argon2-cffi's defaults.
FAST_PASSWORDS = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
DEVICES = ("light", "dimmer", "lock", "thermostat", "leak")


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert ``r`` is a problem+json with that status and code; return its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    assert body["status"] == status
    return body


async def command(
    api: Api, token: str, entity_id: str, cmd: dict[str, Any], *, headers: dict[str, str] | None = None, **extra: Any
) -> httpx.Response:
    """POST a command for an entity as a resident (``extra``: more body fields, e.g. ``wait``)."""
    return await api.http.post(
        f"/me/entities/{entity_id}/commands",
        json={"command": cmd, **extra},
        headers={**bearer(token), **(headers or {})},
    )


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}


class Sse:
    """Reads Server-Sent Events from a streaming response."""

    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        self._lines: AsyncIterator[str] = response.aiter_lines()
        self.keepalives = 0

    async def next(self, timeout: float = 5.0) -> tuple[str, dict[str, Any]] | None:
        """The next event as (name, data), or None once the server has ended the stream."""
        name: str | None = None
        data: list[str] = []
        async with asyncio.timeout(timeout):
            while True:
                try:
                    line = await anext(self._lines)
                except StopAsyncIteration:
                    return None
                if line.startswith(":"):
                    self.keepalives += 1
                elif line == "":
                    if name is not None or data:
                        return name or "message", json.loads("\n".join(data))
                else:
                    key, _, value = line.partition(":")
                    if key == "event":
                        name = value.strip()
                    elif key == "data":
                        data.append(value.removeprefix(" "))

    async def until(
        self, name: str, entity_id: str, ok: Callable[[dict[str, Any]], bool] = lambda _: True
    ) -> list[tuple[str, dict[str, Any]]]:
        """Read until an event ``name`` about ``entity_id`` satisfying ``ok``; return every event read, it last."""
        seen: list[tuple[str, dict[str, Any]]] = []
        while True:
            event = await self.next()
            assert event is not None, f"stream ended while waiting for {name} of {entity_id}; saw {seen}"
            seen.append(event)
            if event[0] == name and event[1].get("id") == entity_id and ok(event[1]):
                return seen

    async def ended(self, timeout: float = 2.0) -> list[tuple[str, dict[str, Any]]]:
        """Read what is left until the server ends the stream (within ``timeout`` seconds)."""
        rest: list[tuple[str, dict[str, Any]]] = []
        async with asyncio.timeout(timeout):
            while (event := await self.next(timeout)) is not None:
                rest.append(event)
        return rest


@dataclass
class Api:
    """The running API, the services under it, and a client for it."""

    gateway: Gateway
    service: ApiService
    http: httpx.AsyncClient
    clock: ManualClock
    broker: BrokerHandle
    prefix: str
    services: Services
    operator: str = ""
    tokens: dict[str, str] = field(default_factory=dict)

    async def login(self, username: str, password: str = PASSWORD, client: str | None = None) -> str:
        """Sign in and return the token (fails the test otherwise)."""
        body: dict[str, Any] = {"username": username, "password": password}
        if client is not None:
            body["client"] = client
        r = await self.http.post("/auth/login", json=body)
        assert r.status_code == 200, r.text
        return str(r.json()["token"])

    async def activate(self, username: str, code: str, password: str = PASSWORD) -> None:
        """Set the first password with an activation code."""
        r = await self.http.post(
            "/auth/activate", json={"username": username, "activation_code": code, "password": password}
        )
        assert r.status_code == 200, r.text

    async def staff(self, username: str, role: str, property_id: str | None) -> str:
        """Create (as the operator), activate and sign in a staff account; return its token."""
        body: dict[str, Any] = {"username": username, "role": role}
        if property_id is not None:
            body["property_id"] = property_id
        r = await self.http.post("/operator/accounts", json=body, headers=bearer(self.operator))
        assert r.status_code == 201, r.text
        await self.activate(username, r.json()["activation_code"])
        return await self.login(username)

    async def move_in(self, manager: str, property_id: str, unit_id: str, username: str) -> tuple[str, str]:
        """Move a resident in, activate and sign in; return (account id, token)."""
        r = await self.http.post(
            f"/properties/{property_id}/units/{unit_id}/residents",
            json={"username": username, "display_name": username.title()},
            headers=bearer(manager),
        )
        assert r.status_code == 201, r.text
        await self.activate(username, r.json()["activation_code"])
        return str(r.json()["account"]["id"]), await self.login(username)


ApiFactory = Callable[..., contextlib.AbstractAsyncContextManager[Api]]


@contextlib.asynccontextmanager
async def running_api(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock, **settings: Any
) -> AsyncIterator[Api]:
    """The gateway with its API on a free port and a signed-in bootstrap operator (``settings``: the API's and the
    sign-in settings, by name)."""
    values: dict[str, Any] = {
        "port": 0,
        "bootstrap_operator": OPERATOR,
        "bootstrap_password": SecretStr(PASSWORD),
        "stream_keepalive_seconds": 0.5,
    }
    values.update(settings)
    accounts = AccountSettings(**{k: v for k, v in values.items() if k in AccountSettings.model_fields})
    http_only = ApiSettings(**{k: v for k, v in values.items() if k not in AccountSettings.model_fields})
    async with (
        make_gateway.services(FAST_PASSWORDS, accounts=accounts) as services,
        ApiService(services, http_only) as service,
        httpx.AsyncClient(base_url=service.url + "/api/v1", timeout=10) as http,
    ):
        api = Api(services.gateway, service, http, clock, broker, prefix, services)
        api.operator = await api.login(OPERATOR)
        yield api


@dataclass
class Building:
    """Property ``p1`` with units ``a`` (resident alice) and ``b`` (resident bob), each with a simulated unit bound."""

    api: Api
    manager: str
    installer: str
    alice: str
    alice_id: str
    bob: str
    bob_id: str
    sims: dict[str, UnitSim]

    def entity(self, unit: str, device: str, component: str, obj: str | None = None) -> str:
        """The API id of a simulated entity, e.g. ``light.u101-light.light``."""
        sim = self.sims[unit].unit
        return f"{component}.{sim}-{device}.{obj or component}"


def sim_unit(broker: BrokerHandle, prefix: str, unit: str) -> UnitSim:
    """A quick simulated unit on the test's broker."""
    return UnitSim(
        BrokerAddress(host=broker.host, port=broker.port),
        unit=unit,
        discovery_prefix=prefix,
        base_topic=f"{prefix}-sim",
        command_delay=0.02,
        drift_interval=3600,
    )


AGREEMENT = "2026-01"


def contract_body(api: Api, **changes: Any) -> dict[str, Any]:
    """An active contract from a day ago, open-ended, lessor-provided internet; ``plan`` and fields may change."""
    plan = changes.pop("plan", {})
    body: dict[str, Any] = {
        "status": "active",
        "starts_at": (api.clock.now() - timedelta(days=1)).isoformat(),
        "ends_at": None,
        "offers_service": True,
        "internet": {"provided_by": "lessor", "name": "Elm Court Fibre", "contact": "+1 555 0100"},
        "plan": plan,
    }
    body.update(changes)
    return body


async def set_contract(api: Api, property_id: str = "p1", **changes: Any) -> dict[str, Any]:
    """Record the property's contract as the operator; return the response body."""
    r = await api.http.put(
        f"/operator/properties/{property_id}/contract",
        json=contract_body(api, **changes),
        headers=bearer(api.operator),
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def publish(api: Api, version: str, effective_at: datetime | None = None, text: str = "Terms.") -> None:
    """Publish an agreement version as the operator."""
    body: dict[str, Any] = {"version": version, "text": text}
    if effective_at is not None:
        body["effective_at"] = effective_at.isoformat()
    r = await api.http.post("/operator/agreements", json=body, headers=bearer(api.operator))
    assert r.status_code == 201, r.text


async def accept(api: Api, token: str, version: str = AGREEMENT) -> httpx.Response:
    """Accept an agreement version as a resident, stating they are 18 or older."""
    return await api.http.post(
        "/me/agreement/accept", json={"version": version, "age_confirmed": True}, headers=bearer(token)
    )


@contextlib.asynccontextmanager
async def building(api: Api, plan: dict[str, Any] | None = None, *, agreement: bool = True) -> AsyncIterator[Building]:
    """Set up property p1 (an active contract with ``plan``, agreement version AGREEMENT in effect) with two bound,
    simulated units and a resident in each who has accepted the agreement (``agreement`` False: no version is
    published, so nobody has accepted one)."""
    r = await api.http.post("/properties", json={"id": "p1", "name": "Elm Court"}, headers=bearer(api.operator))
    assert r.status_code == 201, r.text
    await set_contract(api, plan=plan or {})
    if agreement and not any(
        v["version"] == AGREEMENT
        for v in (await api.http.get("/operator/agreements", headers=bearer(api.operator))).json()
    ):
        await publish(api, AGREEMENT)
    manager = await api.staff("maria.manager", "manager", "p1")
    installer = await api.staff("ivan.installer", "installer", "p1")
    async with sim_unit(api.broker, api.prefix, "u101") as a, sim_unit(api.broker, api.prefix, "u102") as b:
        await a.wait_online()
        await b.wait_online()
        sims = {"a": a, "b": b}
        for unit_id, sim in sims.items():
            r = await api.http.post(
                "/properties/p1/units", json={"label": sim.unit, "id": unit_id}, headers=bearer(manager)
            )
            assert r.status_code == 201, r.text
            for name in DEVICES:
                device_id = f"fwsim-{sim.unit}-{name}"
                await eventually(_discovered(api.gateway, device_id), what=f"{device_id} discovered")
                r = await api.http.post(
                    f"/properties/p1/units/{unit_id}/devices", json={"device_id": device_id}, headers=bearer(installer)
                )
                assert r.status_code == 201, r.text
        await eventually(
            lambda: all(
                e.state is not None and e.available
                for s in sims.values()
                for n in DEVICES
                for e in api.gateway.registry.entities_of_device(f"fwsim-{s.unit}-{n}")
            ),
            what="every simulated entity online with a state",
        )
        alice_id, alice = await api.move_in(manager, "p1", "a", "alice")
        bob_id, bob = await api.move_in(manager, "p1", "b", "bob")
        for token in (alice, bob) if agreement else ():
            r = await accept(api, token)
            assert r.status_code == 200, r.text
        yield Building(api, manager, installer, alice, alice_id, bob, bob_id, sims)


def _discovered(gateway: Gateway, device_id: str) -> Callable[[], bool]:
    return lambda: bool(gateway.registry.entities_of_device(device_id))


def new_username() -> str:
    """A fresh username."""
    return f"user-{uuid.uuid4().hex[:8]}"


@dataclass
class Resident:
    """Property p1, its manager, unit ``a`` and a signed-in resident alice."""

    manager: str
    account_id: str
    token: str
    username: str = "alice"


async def resident(api: Api) -> Resident:
    """Set up a property, a manager, a unit and a resident (no devices: these tests are about accounts; the plan
    allows several app devices, as sessions here are about expiry and revocation, not the single-device licence)."""
    r = await api.http.post("/properties", json={"id": "p1", "name": "Elm Court"}, headers=bearer(api.operator))
    assert r.status_code == 201, r.text
    await set_contract(api, plan={"app_devices_per_account": 5})
    manager = await api.staff("maria.manager", "manager", "p1")
    r = await api.http.post("/properties/p1/units", json={"label": "u101", "id": "a"}, headers=bearer(manager))
    assert r.status_code == 201, r.text
    account_id, token = await api.move_in(manager, "p1", "a", "alice")
    return Resident(manager, account_id, token)
