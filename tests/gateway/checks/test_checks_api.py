"""Rule 5 through the real interfaces: connectivity intervals, the self-test, compliance, reminders and reports."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import aiomqtt
import pytest

from devices import LockStatus
from gateway.checks import selftest as selftest_module
from gateway.clock import ManualClock
from gateway.errors import StorageError
from tests.support.api import Api, Building, bearer, problem
from tests.support.brokers import BrokerHandle
from tests.support.checks import (
    EMBEDDED,
    UplinkTargetServer,
    Webhook,
    asked,
    checked_building,
    delivered,
    is_,
    listening,
    my_status,
    nothing_pending,
    outages,
    self_test,
    status_is,
)
from tests.support.gateway import GatewayFactory
from tests.support.polling import until

# --- the self-test --------------------------------------------------------------------------------


@pytest.mark.parametrize("broker", ["embedded", "mosquitto"], indirect=True)
async def test_self_test_passes_with_every_simulator_and_actuates_nothing(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    async with UplinkTargetServer() as uplink, checked_building(make_gateway, broker, prefix, clock, uplink) as b:
        api = b.api
        before = await my_status(api, b.alice)
        assert (before["status"], before["reason"]) == ("due", "never_tested")
        async with listening(api) as wire:
            result = await self_test(api, b.alice)
            # The spy's copy of the request may trail the device's answer; it does arrive.
            await until(partial(asked, wire, "lock"), what="the lock asked for its state")
        assert result["passed"] is True, result
        assert result["trigger"] == "resident" and result["unit_id"] == "a"
        assert "not a security or alarm system" in result["note"]
        assert result["uplink"]["status"] == "passed" and result["uplink"]["latency_ms"] >= 0
        assert result["broker"]["status"] == "passed" and result["broker"]["latency_ms"] >= 0
        devices = {d["device_id"]: d for d in result["devices"]}
        assert sorted(devices) == sorted(f"fwsim-u101-{n}" for n in ("dimmer", "leak", "light", "lock", "thermostat"))
        assert all(d["status"] == "passed" and d["latency_ms"] > 0 for d in devices.values()), devices
        assert devices["fwsim-u101-lock"]["kind"] == "lock"
        # Nothing was actuated: no command topic saw a message; the lock is as it was.
        assert wire.commands() == []
        assert b.sims["a"].lock.state.status is LockStatus.LOCKED
        after = await my_status(api, b.alice)
        assert after["status"] == "ok" and after["last_passed_at"] == result["finished_at"]
        assert after["due_at"].startswith("2026-02-01T00:00:00")  # one calendar month after 2026-01-01
        # History: newest first; the other unit is untouched by unit a's test.
        r = await api.http.get("/me/self-tests", headers=bearer(b.alice))
        assert [t["id"] for t in r.json()] == [result["id"]]
        r = await api.http.get("/me/self-tests", headers=bearer(b.bob))
        assert r.json() == []


@EMBEDDED
async def test_unresponsive_device_fails_the_test_files_a_report_and_the_lock_is_never_actuated(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    async with (
        UplinkTargetServer() as uplink,
        Webhook() as hook,
        checked_building(make_gateway, broker, prefix, clock, uplink, webhook=hook.url) as b,
    ):
        api = b.api
        b.sims["a"].lock.ignore_commands = True  # connected, but answers nothing
        async with listening(api) as wire:
            result = await self_test(api, b.alice)
            await until(partial(asked, wire, "lock"), what="the lock asked for its state")
        assert result["passed"] is False
        devices = {d["device_id"]: d for d in result["devices"]}
        lock = devices["fwsim-u101-lock"]
        assert (lock["status"], lock["reason"]) == ("failed", "no_answer"), lock
        assert "no state report" in lock["detail"]
        assert all(d["status"] == "passed" for k, d in devices.items() if k != "fwsim-u101-lock"), devices
        assert wire.commands() == []
        assert b.sims["a"].lock.state.status is LockStatus.LOCKED
        # The resident sees "failing", with what failed.
        status = await my_status(api, b.alice)
        assert (status["status"], status["reason"]) == ("failing", "self_test_failed")
        assert "fwsim-u101-lock: no_answer" in status["detail"]
        # A report went to the internet provider named in the contract and to the operator, exactly once.
        await until(lambda: delivered(hook, 1), what="the failure report delivered")
        key, body = hook.received[0]
        assert body["kind"] == "self_test_failed" and body["idempotency_key"] == key
        assert body["addressed_to"] == [
            {"role": "internet_provider", "provided_by": "lessor", "name": "Elm Court Fibre", "contact": "+1 555 0100"},
            {"role": "operator"},
        ]
        assert body["unit"] == {"id": "a", "label": "u101"} and "not a security or alarm system" in body["note"]
        r = await api.http.get("/me/reports", headers=bearer(b.alice))
        (report,) = r.json()
        assert report["delivered_at"] is not None and report["attempts"] == 1
        assert (await api.http.get("/me/reports", headers=bearer(b.bob))).json() == []
        # A reminder is queued for the app.
        r = await api.http.get("/me/notifications", headers=bearer(b.alice))
        kinds = [n["kind"] for n in r.json()]
        assert "self_test_failing" in kinds, r.json()
        assert (await api.http.get("/me/notifications", headers=bearer(b.bob))).json() == []
        # The device answers again: the next test passes and the unit is ok.
        b.sims["a"].lock.ignore_commands = False
        assert (await self_test(api, b.alice))["passed"] is True
        assert (await my_status(api, b.alice))["status"] == "ok"
        assert hook.keys() == [key]


# --- compliance -----------------------------------------------------------------------------------


@EMBEDDED
async def test_due_a_calendar_month_after_the_last_pass_then_overdue_in_the_report(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    clock.set(datetime(2027, 1, 31, 12, 0, tzinfo=UTC))
    async with checked_building(make_gateway, broker, prefix, clock, None) as b:
        api = b.api
        result = await self_test(api, b.alice)
        assert result["passed"] is True
        assert (result["uplink"]["status"], result["uplink"]["reason"]) == ("skipped", "not_configured")
        status = await my_status(api, b.alice)
        assert status["status"] == "ok"
        assert status["due_at"].startswith("2027-02-28T12:00:00")  # a calendar month, clamped to February's end
        clock.set(datetime(2027, 2, 28, 11, 59, 59, tzinfo=UTC))
        assert (await my_status(api, b.alice))["status"] == "ok"
        clock.set(datetime(2027, 2, 28, 12, 0, 0, 1, tzinfo=UTC))
        status = await my_status(api, b.alice)
        assert (status["status"], status["reason"]) == ("due", "monthly")
        assert status["deadline"].startswith("2027-03-07T12:00:00")
        clock.set(datetime(2027, 3, 8, tzinfo=UTC))
        status = await my_status(api, b.alice)
        assert status["status"] == "overdue" and status["overdue_since"].startswith("2027-03-07T12:00:00")
        # The manager's report: unit a overdue since the deadline; unit b never tested, overdue longer: first.
        r = await api.http.get("/properties/p1/compliance", headers=bearer(b.manager))
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["counts"]["overdue"] == 2 and report["counts"]["ok"] == 0
        assert [(u["unit_id"], u["status"], u["reason"]) for u in report["units"]] == [
            ("b", "overdue", "never_tested"),
            ("a", "overdue", "monthly"),
        ]
        assert report["units"][1]["last_passed_at"] == result["finished_at"]
        # Only the manager of the property gets the report.
        problem(await api.http.get("/properties/p1/compliance", headers=bearer(b.alice)), 403, "role_forbidden")
        problem(await api.http.get("/properties/p1/compliance", headers=bearer(b.installer)), 403, "role_forbidden")
        # The periodic pass queues the overdue reminder once, then tests the idle unit automatically (it passes).
        await api.services.checks.tick()
        await api.services.checks.tick()
        notes = (await api.http.get("/me/notifications", headers=bearer(b.alice))).json()
        assert [(n["kind"], n["data"]["reason"]) for n in notes] == [("self_test_overdue", "monthly")], notes
        assert "not a security or alarm system" in notes[0]["message"]
        tests = (await api.http.get("/me/self-tests", headers=bearer(b.alice))).json()
        assert tests[0]["trigger"] == "automatic" and tests[0]["passed"] is True
        assert (await my_status(api, b.alice))["status"] == "ok"
        r = await api.http.get("/me/notifications", params={"after": notes[-1]["id"]}, headers=bearer(b.alice))
        assert r.status_code == 200 and r.json() == []


@EMBEDDED
async def test_broadband_outage_opens_closes_and_makes_the_test_due_at_once(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    # Automatic tests off: this is about the due date alone (the report test has them on).
    async with (
        UplinkTargetServer() as uplink,
        checked_building(make_gateway, broker, prefix, clock, uplink, automatic=False) as b,
    ):
        api = b.api
        assert (await self_test(api, b.alice))["passed"] is True
        assert await outages(api, b.manager, "broadband") == []
        monitor = api.gateway.connectivity.uplink
        clock.advance(timedelta(hours=1))
        down_at = clock.now()
        await uplink.close()
        await until(lambda: is_(monitor.state, "down"), what="uplink down")
        clock.advance(timedelta(minutes=30))
        await api.gateway.connectivity.flush()
        (opened,) = await outages(api, b.manager, "broadband")
        assert opened["ended_at"] is None and opened["cause"] == "uplink_unreachable"
        assert datetime.fromisoformat(opened["started_at"]) == down_at  # the first failed check of the streak
        r = await api.http.get("/operator/connectivity", headers=bearer(api.operator))
        assert r.json()["uplink_state"] == "down" and r.json()["open_outages"][0]["kind"] == "broadband"
        status = await my_status(api, b.alice)
        assert (status["status"], status["reason"]) == ("due", "after_broadband")
        await uplink.open()
        await until(lambda: is_(monitor.state, "up"), what="uplink up")
        await api.gateway.connectivity.flush()
        (closed,) = await outages(api, b.manager, "broadband")
        assert closed["id"] == opened["id"] and closed["ended_at"] is not None
        status = await my_status(api, b.alice)
        assert (status["status"], status["reason"]) == ("due", "after_broadband")
        assert status["due_at"] == closed["ended_at"]
        assert (await self_test(api, b.alice))["passed"] is True
        assert (await my_status(api, b.alice))["status"] == "ok"
        # The month's uptime: broadband down for the 30 minutes the clock moved while it was away.
        r = await api.http.get("/me/uptime", headers=bearer(b.alice))
        assert r.status_code == 200, r.text
        assert r.json()["broadband"]["down_seconds"] == pytest.approx(1800, abs=1)


@EMBEDDED
async def test_a_declared_storm_makes_every_unit_due_once_it_is_over(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    async with checked_building(make_gateway, broker, prefix, clock, None, automatic=False) as b:
        api = b.api
        assert (await self_test(api, b.alice))["passed"] is True
        clock.advance(timedelta(days=3))
        r = await api.http.post("/properties/p1/storms", json={"description": "hail"}, headers=bearer(b.manager))
        assert r.status_code == 201, r.text
        storm = r.json()
        assert storm["kind"] == "storm" and storm["ended_at"] is None
        status = await my_status(api, b.alice)
        assert (status["status"], status["reason"]) == ("due", "after_storm")
        assert (await self_test(api, b.alice))["passed"] is True  # tested during the storm
        clock.advance(timedelta(hours=5))
        r = await api.http.post(f"/properties/p1/storms/{storm['id']}/end", json={}, headers=bearer(b.manager))
        assert r.status_code == 200, r.text
        status = await my_status(api, b.alice)
        assert (status["status"], status["reason"]) == ("due", "after_storm")  # and again once it is over
        clock.advance(timedelta(days=1, seconds=1))
        assert (await my_status(api, b.alice))["status"] == "overdue"
        problem(
            await api.http.post(f"/properties/p1/storms/{storm['id']}/end", json={}, headers=bearer(b.manager)),
            409,
            "storm_already_ended",
        )
        problem(
            await api.http.post("/properties/p1/storms/999/end", json={}, headers=bearer(b.manager)),
            404,
            "storm_not_found",
        )
        start = clock.now().isoformat()
        problem(
            await api.http.post(
                "/properties/p1/storms",
                json={"started_at": start, "ended_at": (clock.now() - timedelta(hours=1)).isoformat()},
                headers=bearer(b.manager),
            ),
            422,
            "storm_ends_before_start",
        )
        problem(await api.http.post("/properties/p1/storms", json={}, headers=bearer(b.alice)), 403, "role_forbidden")
        problem(
            await api.http.post("/properties/p2/storms", json={}, headers=bearer(b.manager)), 404, "property_not_found"
        )
        r = await api.http.get("/operator/audit", headers=bearer(api.operator))
        actions = [e["action"] for e in r.json()["entries"]] if r.status_code == 200 else []
        assert "storm.declare" in actions and "storm.end" in actions


# --- failure reports ------------------------------------------------------------------------------


@EMBEDDED
async def test_a_report_is_held_while_the_uplink_is_down_and_delivered_exactly_once_when_it_returns(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    async with (
        UplinkTargetServer() as uplink,
        Webhook() as hook,
        checked_building(make_gateway, broker, prefix, clock, uplink, webhook=hook.url) as b,
    ):
        api = b.api
        monitor = api.gateway.connectivity.uplink
        await uplink.close()
        await until(lambda: is_(monitor.state, "down"), what="uplink down")
        r = await api.http.post(
            "/me/reports", json={"description": "the hall light does not answer"}, headers=bearer(b.alice)
        )
        assert r.status_code == 201, r.text
        filed = r.json()
        assert filed["delivered_at"] is None and filed["body"]["details"] == {
            "description": "the hall light does not answer"
        }
        clock.advance(timedelta(minutes=20))  # over the outage-report threshold (15 min)
        await api.services.checks.tick()
        await monitor.wait_checks(10)  # many broadband checks later, still down: nothing went out
        assert hook.received == []
        r = await api.http.get("/operator/connectivity", headers=bearer(api.operator))
        assert r.json()["reports_pending"] >= 1 and r.json()["report_upstream"].startswith("http://127.0.0.1")
        # Meanwhile the idle units were tested automatically (the outage made a test due) and failed on the uplink.
        tests = (await api.http.get("/me/self-tests", headers=bearer(b.alice))).json()
        assert tests[0]["trigger"] == "automatic" and tests[0]["uplink"]["reason"] == "uplink_unreachable"
        assert (await my_status(api, b.alice))["status"] == "failing"
        await uplink.open()
        await until(partial(nothing_pending, api), what="every report delivered once the uplink is back")
        await monitor.wait_checks(10)
        await api.services.checks.tick()  # the outage's report is filed once, however often the pass runs
        await until(partial(nothing_pending, api), what="nothing left to deliver")
        keys = hook.keys()
        assert len(keys) == len(set(keys)), keys
        kinds = sorted(body["kind"] for _, body in hook.received)
        assert kinds.count("resident") == 1 and kinds.count("outage") == 1, kinds
        assert kinds.count("self_test_failed") == 2, kinds  # units a and b, each tested once during the outage
        # Once the outage is over, the automatic test runs again (a new reason to test) and passes.
        await until(partial(status_is, api, b.alice, "ok"), what="unit a tested again after the outage")
        outage_body = next(body for _, body in hook.received if body["kind"] == "outage")
        assert outage_body["details"]["kind"] == "broadband"
        r = await api.http.get("/me/reports", headers=bearer(b.alice))
        mine = next(x for x in r.json() if x["id"] == filed["id"])
        assert mine["delivered_at"] is not None and mine["attempts"] == 1
        assert f"{mine['idempotency_key']}" in keys


@EMBEDDED
async def test_failed_deliveries_are_retried_and_recorded(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    async with (
        Webhook(status=503) as hook,
        checked_building(make_gateway, broker, prefix, clock, None, webhook=hook.url) as b,
    ):
        api = b.api
        r = await api.http.post("/me/reports", json={"description": "thermostat ignores me"}, headers=bearer(b.alice))
        report_id = r.json()["id"]

        async def attempts(n: int) -> bool:
            rows = (await api.http.get("/properties/p1/reports", headers=bearer(b.manager))).json()
            return any(x["id"] == report_id and x["attempts"] >= n for x in rows)

        await until(partial(attempts, 3), what="three failed attempts")
        rows = (await api.http.get("/operator/reports", headers=bearer(api.operator))).json()
        row = next(x for x in rows if x["id"] == report_id)
        assert row["delivered_at"] is None and "503" in row["last_error"]
        hook.status = 200
        await until(lambda: delivered(hook, 1), what="delivery once the upstream answers")
        assert hook.keys() == [row["idempotency_key"]]


@EMBEDDED
async def test_reports_go_to_an_upstream_mqtt_topic(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    topic = f"{prefix}-upstream/reports"
    received: list[dict[str, Any]] = []
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"upstream-{prefix}") as upstream:
        await upstream.subscribe(topic, qos=1)

        async def collect() -> None:
            async for message in upstream.messages:
                assert isinstance(message.payload, bytes)
                received.append(json.loads(message.payload))

        async with asyncio.TaskGroup() as tasks:
            task = tasks.create_task(collect(), name="upstream")
            url = f"mqtt://{broker.host}:{broker.port}/{topic}"
            async with checked_building(make_gateway, broker, prefix, clock, None, mqtt=url) as b:
                r = await b.api.http.post("/me/reports", json={"description": "no answer"}, headers=bearer(b.alice))
                assert r.status_code == 201
                await until(lambda: is_(len(received), "1"), what="the report on the upstream topic")
                assert received[0]["kind"] == "resident" and received[0]["id"] == r.json()["id"]
                assert received[0]["idempotency_key"] == r.json()["idempotency_key"]
            task.cancel()


# --- power and devices ----------------------------------------------------------------------------


@EMBEDDED
async def test_device_offline_period_is_an_interval_and_counts_against_uptime(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    async with checked_building(make_gateway, broker, prefix, clock, None) as b:
        api = b.api
        clock.advance(timedelta(hours=1))
        await b.sims["a"].light.drop_offline()  # the broker publishes its last will
        await until(partial(_device_outages, api, b, 1, open_=True), what="the light's outage opened")
        clock.advance(timedelta(minutes=10))
        await b.sims["a"].light.come_back()
        await until(partial(_device_outages, api, b, 1, open_=False), what="the light's outage closed")
        (light,) = await outages(api, b.manager, "device")
        assert light["device_id"] == "fwsim-u101-light" and light["cause"] == "offline"
        r = await api.http.get("/properties/p1/uptime", headers=bearer(b.manager))
        assert r.status_code == 200, r.text
        units = {u["unit_id"]: u for u in r.json()["units"]}
        devices = {d["device_id"]: d for d in units["a"]["devices"]}
        assert devices["fwsim-u101-light"]["down_seconds"] == pytest.approx(600, abs=1)
        assert devices["fwsim-u101-lock"]["down_seconds"] == 0
        assert units["a"]["down_seconds"] == pytest.approx(600, abs=1) and units["b"]["down_seconds"] == 0
        assert 0 < units["a"]["uptime"] < 1 and units["b"]["uptime"] == 1
        # A device outage alone does not make the test due (only power, broadband or a storm do).
        assert (await my_status(api, b.alice))["reason"] == "never_tested"


async def _device_outages(api: Api, b: Building, count: int, *, open_: bool) -> bool:
    found = await outages(api, b.manager, "device")
    return len(found) == count and all((o["ended_at"] is None) is open_ for o in found)


@EMBEDDED
async def test_move_out_removes_the_resident_from_their_tests_and_reports(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    async with checked_building(make_gateway, broker, prefix, clock, None, automatic=False) as b:
        api = b.api
        b.sims["a"].light.ignore_commands = True
        failed = await self_test(api, b.alice)
        assert failed["passed"] is False and failed["actor_id"] == f"account:{b.alice_id}"
        r = await api.http.post("/me/reports", json={"description": "Alice here, light dead"}, headers=bearer(b.alice))
        assert r.status_code == 201 and r.json()["created_by"] == f"account:{b.alice_id}"
        r = await api.http.post(
            f"/properties/p1/units/a/residents/{b.alice_id}/move-out",
            json={"reason": "moved"},
            headers=bearer(b.manager),
        )
        assert r.status_code == 200, r.text
        reports = (await api.http.get("/properties/p1/reports", headers=bearer(b.manager))).json()
        assert {x["kind"] for x in reports} == {"resident", "self_test_failed"}
        assert all(x["created_by"] == "former-resident" for x in reports), reports
        assert b.alice_id not in json.dumps(reports)
        resident = next(x for x in reports if x["kind"] == "resident")
        assert resident["body"]["details"]["description"] == "[removed at move-out]"
        report = (await api.http.get("/properties/p1/compliance", headers=bearer(b.manager))).json()
        unit_a = next(u for u in report["units"] if u["unit_id"] == "a")
        assert unit_a["status"] == "failing" and unit_a["last_test"]["actor_id"] == "former-resident"


@EMBEDDED
async def test_a_broker_outage_is_an_interval_and_a_self_test_meanwhile_fails_fast(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    async with checked_building(make_gateway, broker, prefix, clock, None, automatic=False) as b:
        api = b.api
        clock.advance(timedelta(hours=2))
        stopped_at = clock.now()
        await broker.stop()
        await until(partial(_link_down, api), what="the gateway's link down")
        result = await self_test(api, b.alice)
        assert result["passed"] is False
        assert (result["broker"]["status"], result["broker"]["reason"]) == ("failed", "broker_unavailable")
        assert {d["reason"] for d in result["devices"]} == {"broker_unavailable"}
        clock.advance(timedelta(minutes=5))
        await broker.start()
        await api.gateway.wait_connected(15)
        await api.gateway.connectivity.flush()
        (outage,) = await outages(api, b.manager, "broker")
        assert outage["cause"] == "connection_lost"
        assert datetime.fromisoformat(outage["started_at"]) == stopped_at
        assert datetime.fromisoformat(outage["ended_at"]) == stopped_at + timedelta(minutes=5)
        for sim in b.sims.values():
            await sim.wait_online(15)
        assert (await self_test(api, b.alice))["passed"] is True


async def _link_down(api: Api) -> bool:
    return not api.gateway.link.connected


@EMBEDDED
async def test_a_self_test_that_cannot_be_stored_says_so_and_the_next_one_works(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with checked_building(make_gateway, broker, prefix, clock, None, automatic=False) as b:
        api = b.api

        def disk_full(db: Any, result: Any) -> None:
            raise StorageError("database or disk is full", code="storage_io")

        monkeypatch.setattr(selftest_module, "insert_self_test", disk_full)  # where the runner looks it up
        problem(await api.http.post("/me/self-test", headers=bearer(b.alice)), 503, "storage_io")
        assert (await api.http.get("/me/self-tests", headers=bearer(b.alice))).json() == []
        monkeypatch.undo()
        assert (await self_test(api, b.alice))["passed"] is True  # the runner is still there
        assert (await self_test(api, b.bob))["passed"] is True
