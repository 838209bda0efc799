"""Through the HTTP API, everything a resident needs before a command: as in ``gateway demo`` and the curl session.

Operator: property, the lessor's contract, the agreement, a manager. Manager: a unit, the devices bound to it,
a resident moved in. Resident: activate, sign in, accept the agreement.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from .process import TCP_NODELAY, BenchError

__all__ = ["PROPERTY", "UNIT", "http_client", "set_up_resident"]

PROPERTY = "bench"
UNIT = "u001"
AGREEMENT = "bench-1"


def http_client(api: str) -> httpx.AsyncClient:
    """A keep-alive client for ``api`` with TCP_NODELAY on its socket."""
    transport = httpx.AsyncHTTPTransport(socket_options=[TCP_NODELAY])
    return httpx.AsyncClient(base_url=api, transport=transport, timeout=30.0)


async def _ok(client: httpx.AsyncClient, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.request(method, path, json=body, headers=headers)
    if response.status_code >= 300:
        raise BenchError(f"{method} {path}: {response.status_code} {response.text[:300]}")
    return response.json() if response.content else None


async def set_up_resident(
    client: httpx.AsyncClient, operator: str, operator_password: str, device_ids: list[str]
) -> str:
    """Create the property, contract, agreement, manager, unit, bindings and resident; return the resident's token."""
    secret = {"password": secrets.token_urlsafe(18)}
    op = (await _ok(client, "POST", "/auth/login", {"username": operator, "password": operator_password}))["token"]
    await _ok(client, "POST", "/properties", {"id": PROPERTY, "name": "Bench Court"}, op)
    contract = {
        "starts_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "internet": {"provided_by": "lessor", "name": "Bench broadband", "contact": "support@example.invalid"},
    }
    await _ok(client, "PUT", f"/operator/properties/{PROPERTY}/contract", contract, op)
    terms = "Bench terms: home automation for your own unit; not a security or alarm system."
    await _ok(client, "POST", "/operator/agreements", {"version": AGREEMENT, "text": terms}, op)
    staff = {"username": "bench-manager", "role": "manager", "property_id": PROPERTY}
    created = await _ok(client, "POST", "/operator/accounts", staff, op)
    activation = {"username": "bench-manager", "activation_code": created["activation_code"], **secret}
    await _ok(client, "POST", "/auth/activate", activation)
    manager = (await _ok(client, "POST", "/auth/login", {"username": "bench-manager", **secret}))["token"]
    await _ok(client, "POST", f"/properties/{PROPERTY}/units", {"label": "101", "id": UNIT}, manager)
    for device_id in device_ids:
        await _ok(client, "POST", f"/properties/{PROPERTY}/units/{UNIT}/devices", {"device_id": device_id}, manager)
    moved = await _ok(client, "POST", f"/properties/{PROPERTY}/units/{UNIT}/residents", {"username": "dana"}, manager)
    activation = {"username": "dana", "activation_code": moved["activation_code"], **secret}
    await _ok(client, "POST", "/auth/activate", activation)
    login = {"username": "dana", **secret, "client": "bench"}
    token = str((await _ok(client, "POST", "/auth/login", login))["token"])
    await _ok(client, "POST", "/me/agreement/accept", {"version": AGREEMENT, "age_confirmed": True}, token)
    return token
