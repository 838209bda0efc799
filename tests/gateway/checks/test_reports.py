"""Failure reports through the real interfaces: to whom they are addressed, when an outage earns one, and delivery
of what a previous run left undelivered, exactly once."""

from __future__ import annotations

import json
from datetime import timedelta
from functools import partial
from typing import Any

import httpx
import pytest

from gateway.clock import ManualClock
from tests.support.api import Api, bearer, problem, running_api, set_contract
from tests.support.brokers import BrokerHandle
from tests.support.checks import (
    EMBEDDED,
    LONG_SESSIONS,
    UplinkTargetServer,
    Webhook,
    checked_building,
    checks_settings,
    delivered,
    is_,
    nothing_pending,
    outages,
)
from tests.support.gateway import GatewayFactory
from tests.support.polling import until

SECOND = timedelta(seconds=1)
THRESHOLD = timedelta(minutes=15)  # report_outage_after_seconds' default


async def all_reports(api: Api, kind: str | None = None) -> list[dict[str, Any]]:
    """Every report (of one kind), newest first, as the operator sees them."""
    r = await api.http.get("/operator/reports", headers=bearer(api.operator))
    assert r.status_code == 200, r.text
    return [x for x in r.json() if kind is None or x["kind"] == kind]


async def file_report(api: Api, token: str, description: str) -> dict[str, Any]:
    """File a report by hand as a resident; the stored report."""
    r = await api.http.post("/me/reports", json={"description": description}, headers=bearer(token))
    assert r.status_code == 201, r.text
    return dict(r.json())


@EMBEDDED
async def test_a_report_goes_to_the_residents_own_provider_when_the_contract_says_so(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    async with (
        Webhook() as hook,
        checked_building(make_gateway, broker, prefix, clock, None, webhook=hook.url, automatic=False) as b,
    ):
        internet = {"provided_by": "resident", "name": "Alice's own ISP", "contact": "support@isp.example"}
        await set_contract(b.api, internet=internet)
        filed = await file_report(b.api, b.alice, "nothing answers since this morning")
        await until(partial(delivered, hook, 1), what="the report delivered")
        ((key, body),) = hook.received
        assert key == filed["idempotency_key"] and body["id"] == filed["id"]
        assert body["addressed_to"] == [{"role": "internet_provider", **internet}, {"role": "operator"}]
        assert body["kind"] == "resident" and body["unit"] == {"id": "a", "label": "u101"}


@EMBEDDED
async def test_a_broadband_outage_is_reported_only_once_it_lasts_the_threshold(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    async with (
        UplinkTargetServer() as uplink,
        checked_building(make_gateway, broker, prefix, clock, uplink, automatic=False) as b,
    ):
        api, checks = b.api, b.api.services.checks
        monitor = api.gateway.connectivity.uplink
        await uplink.close()
        await until(lambda: is_(monitor.state, "down"), what="uplink down")
        await api.gateway.connectivity.flush()
        (outage,) = await outages(api, b.manager, "broadband")
        clock.advance(THRESHOLD - SECOND)
        await checks.tick()
        assert await all_reports(api, "outage") == []
        clock.advance(2 * SECOND)
        await checks.tick()
        await checks.tick()
        (report,) = await all_reports(api, "outage")
        assert report["property_id"] == "p1" and report["body"]["details"]["outage_id"] == outage["id"]
        assert report["body"]["details"]["kind"] == "broadband" and report["body"]["details"]["ended_at"] is None
        assert report["delivered_at"] is None  # no upstream configured: it waits in the outbox


@EMBEDDED
async def test_reports_a_previous_run_left_undelivered_go_out_after_a_restart_exactly_once(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    async with Webhook(status=503) as hook:
        async with checked_building(make_gateway, broker, prefix, clock, None, webhook=hook.url) as b:
            filed = await file_report(b.api, b.alice, "the lock does not answer")

            async def attempted() -> bool:
                return any(x["id"] == filed["id"] and x["attempts"] >= 1 for x in await all_reports(b.api))

            await until(attempted, what="a failed delivery attempt")
            alice = b.alice
        assert hook.received == []
        hook.status = 200
        restart = make_gateway.using(checks=checks_settings(hook.url, automatic=False))
        async with running_api(restart, broker, prefix, clock, **LONG_SESSIONS) as api:
            await until(partial(nothing_pending, api), what="the left-over report delivered")
            assert hook.keys() == [filed["idempotency_key"]]
            r = await api.http.get("/me/reports", headers=bearer(alice))
            (mine,) = r.json()
            assert mine["id"] == filed["id"] and mine["delivered_at"] is not None
            assert mine["attempts"] >= 2 and mine["last_error"] is None
            await api.services.checks.outbox.deliver_pending()  # another pass sends nothing again
        assert hook.keys() == [filed["idempotency_key"]]


@EMBEDDED
async def test_a_retried_report_with_the_same_idempotency_key_is_the_same_report(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    async with (
        Webhook() as hook,
        checked_building(make_gateway, broker, prefix, clock, None, webhook=hook.url, automatic=False) as b,
    ):
        api = b.api

        async def post(token: str, description: str, key: str | None) -> httpx.Response:
            headers = bearer(token) | ({} if key is None else {"Idempotency-Key": key})
            return await api.http.post("/me/reports", json={"description": description}, headers=headers)

        first = await post(b.alice, "the heating does not answer", "app-7f3a")
        assert first.status_code == 201, first.text
        again = await post(b.alice, "the heating does not answer", "app-7f3a")
        assert again.status_code == 200 and again.json() == first.json()
        problem(await post(b.alice, "the lights do not answer", "app-7f3a"), 409, "idempotency_key_reused")
        # The key is the account's own: Bob's app may use the same one for his own report.
        bobs = await post(b.bob, "the heating does not answer", "app-7f3a")
        assert bobs.status_code == 201 and bobs.json()["id"] != first.json()["id"]
        # Without a key every POST is a report of its own.
        one, two = await post(b.alice, "door", None), await post(b.alice, "door", None)
        assert (one.status_code, two.status_code) == (201, 201) and one.json()["id"] != two.json()["id"]
        problem(await post(b.alice, "door", "has spaces"), 422, "validation_failed")
        mine = (await api.http.get("/me/reports", headers=bearer(b.alice))).json()
        assert sorted(x["id"] for x in mine) == sorted([first.json()["id"], one.json()["id"], two.json()["id"]])
        await until(partial(delivered, hook, 4), what="four reports delivered")
        keys = hook.keys()
        assert len(set(keys)) == 4 and first.json()["idempotency_key"] in keys
        assert b.alice_id not in json.dumps([body for _, body in hook.received if body["kind"] == "resident"])


@pytest.mark.parametrize("broker", ["mosquitto"], indirect=True)  # restarts more predictably than amqtt
async def test_a_long_broker_link_outage_is_reported_to_the_operator_alone(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    async with checked_building(make_gateway, broker, prefix, clock, None, automatic=False) as b:
        api = b.api
        await broker.stop()
        await until(lambda: is_(api.gateway.link.connected, "False"), what="the gateway's link down")
        clock.advance(THRESHOLD + SECOND)
        await broker.start()
        await api.gateway.wait_connected(15)
        for sim in b.sims.values():
            await sim.wait_online(15)
        await api.gateway.connectivity.flush()
        (outage,) = await outages(api, b.manager, "broker")
        await api.services.checks.tick()
        (report,) = await all_reports(api, "outage")
        assert report["body"]["details"] == {**report["body"]["details"], "kind": "broker", "outage_id": outage["id"]}
        # The gateway's own link to its local broker is not the internet connection: the provider is not told.
        assert report["body"]["addressed_to"] == [{"role": "operator"}]
