"""First contact: OpenAPI, sign-in, a resident's devices and a command through the HTTP API."""

from __future__ import annotations

import pytest

from tests.support.api import Api, bearer, building

pytestmark = pytest.mark.parametrize("broker", ["embedded"], indirect=True)


async def test_resident_controls_own_light(api: Api) -> None:
    async with building(api) as b:
        r = await api.http.get("/me/devices", headers=bearer(b.alice))
        assert r.status_code == 200, r.text
        devices = {d["id"]: d for d in r.json()}
        assert set(devices) == {f"fwsim-u101-{n}" for n in ("light", "dimmer", "lock", "thermostat", "leak")}
        light = b.entity("a", "light", "light")
        r = await api.http.post(
            f"/me/entities/{light}/commands", json={"command": {"on": True}}, headers=bearer(b.alice)
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "confirmed"
        assert b.sims["a"].light.state.on is True
        # bob cannot touch alice's light: 404, same as a made-up id
        r = await api.http.post(
            f"/me/entities/{light}/commands", json={"command": {"on": False}}, headers=bearer(b.bob)
        )
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "entity_not_found"
        assert b.sims["a"].light.state.on is True
        r = await api.http.get(api.service.url + "/openapi.json")
        assert r.status_code == 200
        assert "/api/v1/me/entities/{entity_id}/commands" in r.json()["paths"]
