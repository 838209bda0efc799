"""``gateway demo``: a simulated unit, a handful of commands, and what became of each."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from .api import ApiService
from .app import Gateway
from .config import AccountSettings, ApiSettings, GatewaySettings
from .services import Services
from .simulator import simulated_unit, simulator_logins

__all__ = ["run_demo"]

EXPECTED_ENTITIES = 7  # light, dimmer, lock + battery, thermostat, leak + battery


async def run_demo(
    stack: contextlib.AsyncExitStack, settings: GatewaySettings, gate: Callable[[Services], None] | None = None
) -> int:
    """Run the scripted demo; return the process exit code.

    ``gate`` (the gated embedded broker's) is handed the services before they start, so that the broker admits the
    logins they know; the simulated unit then gets a login per device. Without it the broker is the caller's and
    the simulated unit logs in as the gateway does.
    """
    operator_password = secrets.token_urlsafe(18)
    accounts = AccountSettings(bootstrap_operator="demo-operator", bootstrap_password=SecretStr(operator_password))
    services = Services(settings.model_copy(update={"accounts": accounts}))
    if gate is not None:
        gate(services)
    await stack.enter_async_context(services)
    gateway = services.gateway
    await gateway.wait_connected(10)
    b, prefix = settings.broker, settings.discovery_prefix
    logins = None if gate is None else await simulator_logins(services.broker_credentials, prefix)
    unit = await stack.enter_async_context(simulated_unit(b, prefix, command_delay=0.05, logins=logins))
    await unit.wait_online()
    async with asyncio.timeout(15):
        while not _ready(gateway):
            await asyncio.sleep(0.05)
    print(f"gateway up on {b.url}; discovered {len(gateway.registry.entities())} entities:\n")
    for entity in gateway.registry.entities():
        s = entity.summary()
        print(f"  {s['id']:<36} {s['kind']:<20} {'online' if s['available'] else 'offline':<8} {s['state']}")
    print()

    api = await stack.enter_async_context(ApiService(services, ApiSettings(port=0)))
    client = _Client(api.url + "/api/v1")
    resident = await _set_up_resident(client, gateway, operator_password)
    print(f"API on {api.url}/api/v1: property 'demo', unit 'u101' with its devices bound, resident 'dana' signed in\n")

    light, dimmer = _find(gateway, "u101-light", "light"), _find(gateway, "u101-dimmer", "light")
    lock, thermostat = _find(gateway, "u101-lock", "lock"), _find(gateway, "u101-thermostat", "thermostat")
    script: list[tuple[str, str, dict[str, Any], float | None]] = [
        ("turn the light on", light, {"on": True}, None),
        ("dim to 50 % at 2700 K", dimmer, {"brightness": 128, "color_temp_kelvin": 2700}, None),
        ("heat to 21.5 °C", thermostat, {"mode": "heat", "target_temperature": 21.5}, None),
        ("lock the front door", lock, {"action": "lock"}, None),
        ("set 35 °C (device max is 30)", thermostat, {"target_temperature": 35}, None),
        ("brightness 300 (scale is 1-255)", dimmer, {"brightness": 300}, None),
    ]
    results: list[tuple[str, int, dict[str, Any]]] = []
    for label, entity_id, command, timeout in script:
        results.append((label, *await _command(client, resident, entity_id, command, timeout)))
    unit.lock.jam_next_command()
    results.append(("unlock, but the bolt jams", *await _command(client, resident, lock, {"action": "unlock"}, None)))
    unit.light.ignore_commands = True
    results.append(("light ignores commands", *await _command(client, resident, light, {"on": False}, 1.0)))
    print(f"  {'what':<34} {'HTTP':<5} {'outcome':<10} {'code':<22}")
    for label, status, body in results:
        command = body.get("command", body) if status != 200 else body
        outcome = command.get("status", "") if isinstance(command, dict) else ""
        print(f"  {label:<34} {status:<5} {outcome:<10} {body.get('code', '') if status != 200 else '':<22}")
    print(f"\nmessages received {gateway.metrics.received}, refused {sum(gateway.metrics.rejected.values())}")
    tested = await _self_test(client, resident)
    expected = [200] * 4 + [422, 422, 409, 504]
    return 0 if [status for _, status, _ in results] == expected and tested else 1


async def _self_test(client: _Client, token: str) -> bool:
    """The resident's self-test, with the light still ignoring everything: only the light fails."""
    status, test = await client.call("POST", "/me/self-test", {}, token)
    print("\nself-test (each device asked for its state; nothing switched, locked or unlocked):")
    print(f"  broker round trip {test.get('broker', {}).get('latency_ms')} ms")
    devices = test.get("devices", [])
    for device in devices:
        latency = f"{device['latency_ms']} ms" if device.get("latency_ms") is not None else ""
        print(f"  {device['device_id']:<24} {device['status']:<8} {device.get('reason') or latency}")
    failed = sorted(d["device_id"] for d in devices if d["status"] == "failed")
    print(f"  overall: {'passed' if test.get('passed') else 'failed'} (a check that home automation works, "
          "not a security or alarm system)")  # fmt: skip
    return status == 200 and failed == ["fwsim-u101-light"]


class _Client:
    """A tiny JSON client over the standard library (the demo needs no HTTP package)."""

    def __init__(self, base: str) -> None:
        self.base = base

    async def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        return await asyncio.to_thread(self._call, method, path, body, token)

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None, token: str | None
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")


async def _set_up_resident(client: _Client, gateway: Gateway, operator_password: str) -> str:
    """Operator -> property, its contract, the agreement and a manager; manager -> unit, bindings, move-in;
    resident -> activate, sign in, accept the agreement."""

    async def ok(method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
        status, answer = await client.call(method, path, body, token)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {answer}")
        return answer

    secret = {"password": secrets.token_urlsafe(18)}
    op = (await ok("POST", "/auth/login", {"username": "demo-operator", "password": operator_password}))["token"]
    await ok("POST", "/properties", {"id": "demo", "name": "Demo Court"}, op)
    contract = {
        "starts_at": gateway.clock.now().isoformat(),
        "internet": {"provided_by": "lessor", "name": "Demo Court broadband", "contact": "support@example.invalid"},
    }
    await ok("PUT", "/operator/properties/demo/contract", contract, op)
    terms = "Demo terms: home automation for your own unit; not a security or alarm system."
    await ok("POST", "/operator/agreements", {"version": "demo-1", "text": terms}, op)
    staff = await ok("POST", "/operator/accounts", {"username": "morgan", "role": "manager", "property_id": "demo"}, op)
    await ok("POST", "/auth/activate", {"username": "morgan", "activation_code": staff["activation_code"], **secret})
    manager = (await ok("POST", "/auth/login", {"username": "morgan", **secret}))["token"]
    await ok("POST", "/properties/demo/units", {"label": "101", "id": "u101"}, manager)
    for device_id in gateway.registry.device_ids():
        if device_id.startswith("fwsim-u101-"):
            await ok("POST", "/properties/demo/units/u101/devices", {"device_id": device_id}, manager)
    moved = await ok("POST", "/properties/demo/units/u101/residents", {"username": "dana"}, manager)
    await ok("POST", "/auth/activate", {"username": "dana", "activation_code": moved["activation_code"], **secret})
    token = str((await ok("POST", "/auth/login", {"username": "dana", **secret}))["token"])
    await ok("POST", "/me/agreement/accept", {"version": "demo-1", "age_confirmed": True}, token)
    return token


async def _command(
    client: _Client, token: str, entity_id: str, command: dict[str, Any], timeout: float | None
) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"command": command}
    if timeout is not None:
        body["timeout"] = timeout
    return await client.call("POST", f"/me/entities/{entity_id.replace('/', '.')}/commands", body, token)


def _ready(gateway: Gateway) -> bool:
    entities = [e for e in gateway.registry.entities() if (e.key.node_id or "").startswith("u101-")]
    return len(entities) >= EXPECTED_ENTITIES and all(e.available and e.state is not None for e in entities)


def _find(gateway: Gateway, node_id: str, kind: str) -> str:
    return next(e.id for e in gateway.registry.entities() if e.key.node_id == node_id and e.kind == kind)
