"""Parameters are typed and bounded at the edge (422 naming the field, never a 500), and a command sent while the
broker link is down is answered 503 broker_unavailable, whatever the device's last known availability."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Api, bearer, building, command, problem
from tests.support.brokers import BrokerHandle
from tests.support.polling import eventually

EMBEDDED = pytest.mark.parametrize("broker", ["embedded"], indirect=True)


def _field_error(r: Any, field: str) -> None:
    assert r.status_code == 422, r.text
    assert field in r.text, r.text


@EMBEDDED
async def test_out_of_range_query_and_path_parameters_answer_422_after_the_role_check(api: Api) -> None:
    async with building(api) as b:
        for month in ("0000-01", "9999-12", "1969-12", "2024-13", "2024-1"):
            for path, token in (
                ("/properties/p1/uptime", b.manager),
                ("/properties/p1/outages", b.manager),
                ("/properties/p2/outages", b.installer),  # not their property: still the field, not a 500
                ("/me/uptime", b.alice),
            ):
                _field_error(await api.http.get(path, params={"month": month}, headers=bearer(token)), "month")
        # the bounds are inside what the handlers take
        for month in ("1970-01", "2999-12"):
            r = await api.http.get("/properties/p1/outages", params={"month": month}, headers=bearer(b.manager))
            assert r.status_code == 200, r.text
        for storm_id in (10**30, 2**63, 0):
            r = await api.http.post(f"/properties/p1/storms/{storm_id}/end", json={}, headers=bearer(b.manager))
            _field_error(r, "storm_id")
        r = await api.http.post(f"/properties/p1/storms/{2**62}/end", json={}, headers=bearer(b.manager))
        assert r.status_code == 404, r.text
        r = await api.http.get("/me/notifications", params={"after": 10**30}, headers=bearer(b.alice))
        _field_error(r, "after")
        # the role check comes first, as for every other operation
        assert (await api.http.get("/properties/p1/uptime", params={"month": "0000-01"})).status_code == 401
        r = await api.http.get("/properties/p1/uptime", params={"month": "0000-01"}, headers=bearer(b.alice))
        assert r.status_code == 403, r.text


@pytest.mark.parametrize("broker", ["embedded", "mosquitto"], indirect=True)
async def test_commands_answer_broker_unavailable_while_the_link_is_down(api: Api, broker: BrokerHandle) -> None:
    async with building(api) as b:
        light, dimmer = b.entity("a", "light", "light"), b.entity("a", "dimmer", "light")
        # one device known offline before the broker goes: the broker, not the device, is why nothing can go out
        await b.sims["a"].dimmer.drop_offline()
        await eventually(
            lambda: not any(e.available for e in api.gateway.registry.entities_of_device("fwsim-u101-dimmer")),
            what="the dimmer offline",
        )
        await broker.stop()
        await eventually(lambda: not api.gateway.link.connected, what="the gateway's link down")
        for entity in (light, dimmer):
            body = problem(await command(api, b.alice, entity, {"on": True}), 503, "broker_unavailable")
            assert body["command"]["status"] == "failed"
            assert body["command"]["reason"] == "broker_unavailable"
        # and again once the broker is back
        await broker.start()
        await api.gateway.wait_connected(15)
        await b.sims["a"].light.wait_online(15)
        await eventually(
            lambda: all(e.available for e in api.gateway.registry.entities_of_device("fwsim-u101-light")),
            what="the light online",
        )
        r = await command(api, b.alice, light, {"on": True})
        assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text
