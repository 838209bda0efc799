"""The chain of permissions through the HTTP API, with real simulators: each link failing alone, the contract
ending by the clock, new agreement versions, the arbitration opt-out window, and the console's view."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aiomqtt
import pytest

from devices import LockStatus
from gateway.clock import ManualClock
from gateway.core.commands import CommandResult, CommandStatus
from gateway.core.typed_command import type_command
from gateway.errors import PolicyRefused
from gateway.policy import MAX_DECISION_AGE, Allowed, AppVersionCheck
from tests.support.api import (
    AGREEMENT,
    Api,
    ApiFactory,
    Building,
    accept,
    bearer,
    building,
    command,
    problem,
    publish,
    set_contract,
)

# The contract-end test (a lock left as it was) runs on every broker; the others on the embedded one.
EMBEDDED = pytest.mark.parametrize("broker", ["embedded"], indirect=True)

# These tests move the clock by weeks; sessions here must outlive that (their expiry is tested elsewhere).
LONG_SESSIONS = {"idle_timeout_seconds": 400 * 86400, "session_ttl_seconds": 400 * 86400}
UNLOCK = {"action": "unlock"}


async def command_rows(api: Api) -> int:
    """How many commands the gateway has recorded."""
    return int(await api.gateway.db.run(lambda db: db.execute("SELECT count(*) FROM commands").fetchone()[0]))


class Spy:
    """Every command message the gateway publishes to the simulators (topics ending in /set), in order."""

    def __init__(self) -> None:
        self.topics: list[str] = []

    def saw(self, device: str) -> bool:
        """Whether a command for the simulated device (e.g. ``lock``) went out."""
        return any(t.split("/")[-2] == device for t in self.topics)


@contextlib.asynccontextmanager
async def spying(api: Api) -> AsyncIterator[Spy]:
    """Subscribe to the simulators' command topics for the block."""
    spy = Spy()
    async with aiomqtt.Client(api.broker.host, api.broker.port, identifier=f"spy-{api.prefix}") as client:
        await client.subscribe(f"{api.prefix}-sim/#", qos=1)

        async def collect() -> None:
            async for message in client.messages:
                if str(message.topic).endswith("/set"):
                    spy.topics.append(str(message.topic))

        async with asyncio.TaskGroup() as tasks:
            task = tasks.create_task(collect(), name="spy")
            try:
                yield spy
            finally:
                task.cancel()


async def assert_lock_untouched(api: Api, b: Building, spy: Spy) -> None:
    """No command reached unit a's lock since the spy was last cleared; proven by a later command that goes out.

    Messages from the gateway's one connection arrive in order, so once the light's command has reached the spy,
    a lock command published before it would have too.
    """
    sentinel = b.entity("a", "light", "light")
    on = not b.sims["a"].light.state.on
    r = await command(api, b.alice, sentinel, {"on": on})
    assert r.status_code == 200, r.text
    async with asyncio.timeout(5):
        while not spy.saw("light"):
            await asyncio.sleep(0.01)
    assert not spy.saw("lock"), spy.topics
    assert b.sims["a"].lock.state.status is LockStatus.LOCKED
    spy.topics.clear()


# --- each link on its own ------------------------------------------------------------------------


@EMBEDDED
async def test_each_link_failing_alone_gives_its_own_code_and_actuates_nothing(
    clock: ManualClock, start_api: ApiFactory
) -> None:
    async with (
        start_api(**LONG_SESSIONS) as api,
        building(api) as b,
        spying(api) as spy,
    ):
        lock = b.entity("a", "lock", "lock")
        op = bearer(api.operator)

        async def refused(status: int, code: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
            before = await command_rows(api)
            body = problem(await command(api, b.alice, lock, UNLOCK, headers=headers), status, code)
            assert await command_rows(api) == before  # not even recorded as attempted
            return body

        # (1) the lessor's contract, each way it can lapse; restored after each
        for changes, reason in (
            ({"status": "suspended", "status_reason": "unpaid invoices"}, "suspended"),
            ({"status": "terminated"}, "terminated"),
            ({"offers_service": False}, "service_withdrawn"),
            ({"starts_at": (clock.now() + timedelta(days=3)).isoformat()}, "not_started"),
            ({"ends_at": clock.now().isoformat()}, "ended"),
        ):
            await set_contract(api, **changes)
            body = await refused(403, "lessor_contract_inactive")
            assert body["reason"] == reason and body["link"] == "contract", body
            await set_contract(api)
            await assert_lock_untouched(api, b, spy)

        # (1) the plan's entitlements
        await set_contract(api, plan={"device_kinds": ["light", "thermostat", "leak_sensor", "battery_sensor"]})
        body = await refused(403, "plan_excludes_device_kind")
        assert body["kind"] == "lock" and body["link"] == "plan"
        await set_contract(api)
        await assert_lock_untouched(api, b, spy)

        # (2) the agreement: a new version in effect
        await publish(api, "2026-02")
        body = await refused(403, "agreement_not_accepted")
        assert body["version"] == "2026-02" and body["link"] == "agreement"
        assert (await accept(api, b.alice, "2026-02")).status_code == 200
        await assert_lock_untouched(api, b, spy)

        # (5) app updates
        r = await api.http.put("/operator/app-version", json={"minimum_app_version": "2.4.0"}, headers=op)
        assert r.status_code == 200 and r.json() == {"minimum_app_version": "2.4.0"}, r.text
        body = await refused(403, "app_update_required", {"X-App-Version": "2.3.9"})
        assert body["minimum_version"] == "2.4.0" and body["your_version"] == "2.3.9" and body["link"] == "app"
        r = await api.http.put("/operator/app-version", json={"minimum_app_version": None}, headers=op)
        assert r.status_code == 200, r.text
        await assert_lock_untouched(api, b, spy)

        # (4) a single credential revoked by the operator: that session only
        sessions = (await api.http.get(f"/operator/accounts/{b.alice_id}/sessions", headers=op)).json()
        live = [s["id"] for s in sessions if s["revoked_at"] is None]
        assert len(live) == 1
        r = await api.http.post(
            f"/operator/accounts/{b.alice_id}/sessions/{live[0]}/revoke", json={"reason": "leaked token"}, headers=op
        )
        assert r.status_code == 204, r.text
        body = await refused(401, "session_revoked")
        assert "leaked token" in body["detail"]
        b.alice = await api.login("alice")
        await assert_lock_untouched(api, b, spy)

        # (3) the account, disabled by the operator: effective on the very next request
        r = await api.http.post(f"/operator/accounts/{b.alice_id}/disable", json={"reason": "chargeback"}, headers=op)
        assert r.status_code == 200, r.text
        assert (await refused(401, "account_disabled"))["reason"] == "chargeback"  # the resident learns why
        r = await api.http.post(f"/operator/accounts/{b.alice_id}/enable", headers=op)
        assert r.status_code == 200, r.text
        b.alice = await api.login("alice")
        await assert_lock_untouched(api, b, spy)

        # every link holds again: the same command goes out and confirms
        r = await command(api, b.alice, lock, UNLOCK)
        assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text
        assert b.sims["a"].lock.state.status is LockStatus.UNLOCKED


@EMBEDDED
async def test_resident_service_status_names_the_failing_link(start_api: ApiFactory) -> None:
    async with start_api(**LONG_SESSIONS) as api, building(api) as b:
        r = await api.http.get("/me/service", headers=bearer(b.alice))
        assert r.status_code == 200, r.text
        assert r.json() == {
            "can_control": True,
            "refusal": None,
            "contract_in_force": True,
            "contract_lapse": None,
            "contract_ends_at": None,
            "agreement_version": AGREEMENT,
            "agreement_accepted": True,
            "minimum_app_version": None,
        }
        await set_contract(api, offers_service=False)
        status = (await api.http.get("/me/service", headers=bearer(b.alice))).json()
        assert status["can_control"] is False and status["contract_lapse"] == "service_withdrawn"
        assert status["refusal"]["code"] == "lessor_contract_inactive" and status["refusal"]["link"] == "contract"
        # the resident's own records stay reachable while the service is off; device control and state do not
        assert (await api.http.get("/me/agreement", headers=bearer(b.alice))).status_code == 200
        assert (await api.http.get("/me/events", headers=bearer(b.alice))).status_code == 200
        problem(await api.http.get("/me/devices", headers=bearer(b.alice)), 403, "lessor_contract_inactive")
        problem(await api.http.get("/me/stream", headers=bearer(b.alice)), 403, "lessor_contract_inactive")


# --- the contract ends by the clock ----------------------------------------------------------------


async def test_contract_end_date_ends_control_without_restart_and_the_lock_stays_as_it_was(
    clock: ManualClock, start_api: ApiFactory
) -> None:
    async with (
        start_api(**LONG_SESSIONS) as api,
        building(api) as b,
        spying(api) as spy,
    ):
        lock = b.entity("a", "lock", "lock")
        ends = clock.now() + timedelta(days=30)
        body = await set_contract(api, ends_at=ends.isoformat())
        assert body["in_force"] is True and body["lapse"] is None
        r = await command(api, b.alice, lock, {"action": "lock"})
        assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text
        bobs_lock = b.entity("b", "lock", "lock")
        r = await command(api, b.bob, bobs_lock, UNLOCK)  # bob's door is left unlocked
        assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text

        async with api.http.stream("GET", "/me/stream", headers=bearer(b.alice)) as stream:
            assert stream.status_code == 200
            clock.set(ends - timedelta(microseconds=1))
            r = await command(api, b.alice, b.entity("a", "light", "light"), {"on": True})
            assert r.status_code == 200, r.text
            clock.set(ends)  # nobody acts: the date passes
            before = await command_rows(api)
            body = problem(await command(api, b.alice, lock, UNLOCK), 403, "lessor_contract_inactive")
            assert body["reason"] == "ended" and datetime.fromisoformat(body["ends_at"]) == ends
            problem(await command(api, b.bob, bobs_lock, {"action": "lock"}), 403, "lessor_contract_inactive")
            # the open stream ends at its next keepalive
            async with asyncio.timeout(5):
                async for _ in stream.aiter_lines():
                    pass
        assert await command_rows(api) == before
        spy.topics.clear()
        await asyncio.sleep(0.2)  # nothing is scheduled to go out; give a stray publish the chance to show
        assert spy.topics == []
        # each lock stays in its last state: nothing locks or unlocks because the service ended
        assert b.sims["a"].lock.state.status is LockStatus.LOCKED
        assert b.sims["b"].lock.state.status is LockStatus.UNLOCKED
        assert api.gateway.registry.get("lock/u101-lock/lock") is not None

        # the manager's console shows why
        r = await api.http.get("/properties/p1/contract", headers=bearer(b.manager))
        assert r.status_code == 200, r.text
        assert (r.json()["in_force"], r.json()["lapse"]) == (False, "ended")
        assert r.json()["internet"] == {"provided_by": "lessor", "name": "Elm Court Fibre", "contact": "+1 555 0100"}

        # renewed: control comes back, again with no restart
        await set_contract(api, ends_at=(ends + timedelta(days=365)).isoformat())
        r = await command(api, b.alice, lock, UNLOCK)
        assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text


@EMBEDDED
async def test_no_contract_on_record_refuses_control_over_http(start_api: ApiFactory) -> None:
    """The API cannot remove a contract; a gateway whose record is gone (restored from an older backup, say) starts
    with none, and residents are told so."""
    async with start_api(**LONG_SESSIONS) as api, building(api) as b:
        alice = b.alice
        await api.gateway.db.run(lambda db: db.conn.execute("DELETE FROM contracts WHERE property_id = 'p1'"))
    async with start_api(**LONG_SESSIONS) as api:
        before = await command_rows(api)
        body = problem(await command(api, alice, "lock.u101-lock.lock", UNLOCK), 403, "lessor_contract_inactive")
        assert (body["reason"], body["link"]) == ("no_contract", "contract")
        assert await command_rows(api) == before
        status = (await api.http.get("/me/service", headers=bearer(alice))).json()
        assert (status["can_control"], status["contract_lapse"]) == (False, "no_contract")


@EMBEDDED
async def test_no_agreement_in_effect_refuses_control_until_one_is_published_and_accepted(
    start_api: ApiFactory,
) -> None:
    async with (
        start_api(**LONG_SESSIONS) as api,
        building(api, agreement=False) as b,
        spying(api) as spy,
    ):
        lock = b.entity("a", "lock", "lock")
        body = problem(await command(api, b.alice, lock, UNLOCK), 403, "agreement_unavailable")
        assert body["link"] == "agreement"
        status = (await api.http.get("/me/service", headers=bearer(b.alice))).json()
        assert status["refusal"]["code"] == "agreement_unavailable" and status["agreement_version"] is None
        assert (await api.http.get("/me/agreement", headers=bearer(b.alice))).json()["current"] is None
        assert await command_rows(api) == 0

        await publish(api, AGREEMENT)
        problem(await command(api, b.alice, lock, UNLOCK), 403, "agreement_not_accepted")
        assert (await accept(api, b.alice)).status_code == 200
        await assert_lock_untouched(api, b, spy)  # nothing went out while refused
        r = await command(api, b.alice, lock, UNLOCK)
        assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text


# --- agreement versions and the arbitration opt-out -------------------------------------------------


@EMBEDDED
async def test_new_agreement_version_blocks_until_accepted_again(clock: ManualClock, start_api: ApiFactory) -> None:
    async with start_api(**LONG_SESSIONS) as api, building(api) as b:
        light = b.entity("a", "light", "light")
        takes_effect = clock.now() + timedelta(days=14)
        await publish(api, "2026-02", effective_at=takes_effect, text="Version two.")
        mine = (await api.http.get("/me/agreement", headers=bearer(b.alice))).json()
        assert mine["current"]["version"] == AGREEMENT and mine["accepted_current"] is True
        assert [v["version"] for v in mine["upcoming"]] == ["2026-02"]
        assert (await command(api, b.alice, light, {"on": True})).status_code == 200

        clock.set(takes_effect)
        body = problem(await command(api, b.alice, light, {"on": False}), 403, "agreement_not_accepted")
        assert body["version"] == "2026-02" and "new version" in body["detail"]
        problem(await accept(api, b.alice, AGREEMENT), 409, "agreement_version_not_current")
        r = await api.http.post(
            "/me/agreement/accept", json={"version": "2026-02", "age_confirmed": False}, headers=bearer(b.alice)
        )
        assert problem(r, 422, "age_confirmation_required")["field"] == "age_confirmed"
        problem(await command(api, b.alice, light, {"on": False}), 403, "agreement_not_accepted")

        r = await accept(api, b.alice, "2026-02")
        assert r.status_code == 200, r.text
        mine = r.json()
        assert mine["accepted_current"] is True
        assert [a["version"] for a in mine["acceptances"]] == [AGREEMENT, "2026-02"]
        assert "session" in mine["acceptances"][-1]["client"]
        assert datetime.fromisoformat(mine["acceptances"][-1]["accepted_at"]) == takes_effect
        assert (await command(api, b.alice, light, {"on": False})).status_code == 200
        problem(await command(api, b.bob, b.entity("b", "light", "light"), {"on": True}), 403, "agreement_not_accepted")

        # the console: per unit, who accepted which version
        r = await api.http.get("/properties/p1/agreements", headers=bearer(b.manager))
        assert r.status_code == 200, r.text
        console = r.json()
        assert console["current_version"] == "2026-02"
        residents = {u["unit_id"]: u["residents"] for u in console["units"]}
        assert [(x["username"], x["accepted_version"], x["up_to_date"]) for x in residents["a"]] == [
            ("alice", "2026-02", True)
        ]
        assert [(x["username"], x["accepted_version"], x["up_to_date"]) for x in residents["b"]] == [
            ("bob", AGREEMENT, False)
        ]
        problem(await api.http.get("/properties/p1/agreements", headers=bearer(b.installer)), 403, "role_forbidden")
        audit = (await api.http.get("/operator/audit", headers=bearer(api.operator))).json()
        assert any(e["action"] == "property.read_agreements" for e in audit["entries"])

        # publishing rules: unique versions, in order, never in the past
        op = bearer(api.operator)
        r = await api.http.post("/operator/agreements", json={"version": "2026-02", "text": "x"}, headers=op)
        problem(r, 409, "agreement_version_exists")
        past = (clock.now() - timedelta(days=1)).isoformat()
        r = await api.http.post(
            "/operator/agreements", json={"version": "old", "text": "x", "effective_at": past}, headers=op
        )
        problem(r, 422, "effective_at_in_past")


@EMBEDDED
async def test_arbitration_opt_out_day_30_accepted_day_31_refused_and_records_survive_the_account(
    clock: ManualClock, start_api: ApiFactory
) -> None:
    async with start_api(**LONG_SESSIONS) as api, building(api) as b:
        first = clock.now()  # alice and bob both accepted in the building's set-up
        carol_id, carol = await api.move_in(b.manager, "p1", "a", "carol")
        problem(
            await api.http.post("/me/agreement/arbitration-opt-out", headers=bearer(carol)),
            409,
            "agreement_not_accepted",
        )

        clock.set(first + timedelta(days=30))  # day 30: the last moment
        r = await api.http.post("/me/agreement/arbitration-opt-out", headers=bearer(b.alice))
        assert r.status_code == 201, r.text
        assert datetime.fromisoformat(r.json()["recorded_at"]) == first + timedelta(days=30)
        again = await api.http.post("/me/agreement/arbitration-opt-out", headers=bearer(b.alice))
        assert again.status_code == 200 and again.json() == r.json()

        clock.set(first + timedelta(days=31))  # day 31: too late, and the error says until when
        body = problem(
            await api.http.post("/me/agreement/arbitration-opt-out", headers=bearer(b.bob)),
            403,
            "opt_out_window_closed",
        )
        assert datetime.fromisoformat(body["deadline"]) == first + timedelta(days=30)
        mine = (await api.http.get("/me/agreement", headers=bearer(b.bob))).json()
        assert mine["may_opt_out"] is False and mine["arbitration_opt_out_at"] is None

        # the election carries over to later versions
        await publish(api, "2026-03")
        assert (await accept(api, b.alice, "2026-03")).status_code == 200
        mine = (await api.http.get("/me/agreement", headers=bearer(b.alice))).json()
        assert datetime.fromisoformat(mine["arbitration_opt_out_at"]) == first + timedelta(days=30)
        assert datetime.fromisoformat(mine["opt_out_deadline"]) == first + timedelta(days=30)

        # records survive the end of the account
        r = await api.http.post(
            f"/properties/p1/units/a/residents/{b.alice_id}/move-out",
            json={"reason": "moved"},
            headers=bearer(b.manager),
        )
        assert r.status_code == 200, r.text
        r = await api.http.get(f"/operator/accounts/{b.alice_id}/agreement", headers=bearer(api.operator))
        assert r.status_code == 200, r.text
        record = r.json()
        assert [a["version"] for a in record["acceptances"]] == [AGREEMENT, "2026-03"]
        assert datetime.fromisoformat(record["arbitration_opt_out_at"]) == first + timedelta(days=30)
        problem(
            await api.http.get(f"/operator/accounts/{carol_id}/agreement", headers=bearer(carol)), 403, "role_forbidden"
        )


@EMBEDDED
async def test_rules_survive_a_restart(clock: ManualClock, start_api: ApiFactory) -> None:
    async with start_api(**LONG_SESSIONS) as api, building(api) as b:
        await set_contract(api, ends_at=(clock.now() + timedelta(days=10)).isoformat(), plan={"devices_per_unit": 7})
        await api.http.put("/operator/app-version", json={"minimum_app_version": "3.1"}, headers=bearer(api.operator))
        alice_id = b.alice_id
    async with start_api(**LONG_SESSIONS) as api:
        contract = (await api.http.get("/operator/properties/p1/contract", headers=bearer(api.operator))).json()
        assert contract["plan"]["devices_per_unit"] == 7 and contract["in_force"] is True
        assert (await api.http.get("/app/requirements")).json() == {"minimum_app_version": "3.1"}
        record = (await api.http.get(f"/operator/accounts/{alice_id}/agreement", headers=bearer(api.operator))).json()
        assert [a["version"] for a in record["acceptances"]] == [AGREEMENT]
        versions = (await api.http.get("/operator/agreements", headers=bearer(api.operator))).json()
        assert [v["version"] for v in versions] == [AGREEMENT]


@EMBEDDED
async def test_a_scheduler_acting_for_a_resident_sends_only_through_a_decision(
    clock: ManualClock, start_api: ApiFactory
) -> None:
    """A schedule has no app session; it decides with PolicyService.authorize and hands the decision to the same
    CommandGate the API uses. Each link failing alone publishes nothing; once all hold, the command goes out."""
    async with (
        start_api(**LONG_SESSIONS) as api,
        building(api) as b,
        spying(api) as spy,
    ):
        policy, accounts, runner = api.services.policy, api.services.accounts, api.services.gate
        lock, op = "lock/u101-lock/lock", bearer(api.operator)

        async def decide_for_alice(entity_id: str = lock) -> Allowed:
            alice = await accounts.get(b.alice_id)
            entity = api.gateway.registry.get(entity_id)
            assert entity is not None
            return await policy.authorize(alice, None, AppVersionCheck(), type_command(entity, UNLOCK))

        async def scheduled(entity_id: str = lock) -> CommandResult:
            _, outcome = runner.submit(await decide_for_alice(entity_id), timeout=5)
            return await outcome

        async def refused(code: str, link: str, entity_id: str = lock) -> PolicyRefused:
            before = await command_rows(api)
            with pytest.raises(PolicyRefused) as caught:
                await scheduled(entity_id)
            assert (caught.value.code, caught.value.link) == (code, link)
            assert await command_rows(api) == before
            return caught.value

        await set_contract(api, status="suspended")
        await refused("lessor_contract_inactive", "contract")
        await set_contract(api)
        await assert_lock_untouched(api, b, spy)

        await set_contract(api, plan={"device_kinds": ["light", "thermostat", "leak_sensor", "battery_sensor"]})
        await refused("plan_excludes_device_kind", "plan")
        await set_contract(api)
        await assert_lock_untouched(api, b, spy)

        await publish(api, "2026-02")
        await refused("agreement_not_accepted", "agreement")
        assert (await accept(api, b.alice, "2026-02")).status_code == 200
        await assert_lock_untouched(api, b, spy)

        await refused("device_not_in_unit", "device", "lock/u102-lock/lock")  # bob's lock
        await assert_lock_untouched(api, b, spy)
        assert b.sims["b"].lock.state.status is LockStatus.LOCKED

        r = await api.http.post(f"/operator/accounts/{b.alice_id}/disable", json={"reason": "moved abroad"}, headers=op)
        assert r.status_code == 200, r.text
        assert "moved abroad" in str(await refused("account_disabled", "account"))
        assert (await api.http.post(f"/operator/accounts/{b.alice_id}/enable", headers=op)).status_code == 200
        b.alice = await api.login("alice")
        await assert_lock_untouched(api, b, spy)

        # a decision goes stale: the chain may have changed since (here the contract ended in between)
        allowed = await decide_for_alice()
        assert allowed.request.device.unit_id == "a" and allowed.at == clock.now()
        await set_contract(api, ends_at=(clock.now() + MAX_DECISION_AGE).isoformat())
        clock.advance(MAX_DECISION_AGE + timedelta(microseconds=1))
        with pytest.raises(PolicyRefused) as stale:
            runner.submit(allowed, timeout=5)
        assert stale.value.code == "decision_stale"
        await set_contract(api)
        with pytest.raises(TypeError, match="authorize"):
            runner.submit(allowed.request, timeout=5)  # type: ignore[arg-type]
        await assert_lock_untouched(api, b, spy)

        # every link holds: the schedule's unlock goes out (so the spy would have seen any of the above), once
        allowed = await decide_for_alice()
        _, outcome = runner.submit(allowed, timeout=5)
        result = await outcome
        assert result.status is CommandStatus.CONFIRMED and result.actor == f"account:{b.alice_id}"
        assert spy.saw("lock") and b.sims["a"].lock.state.status is LockStatus.UNLOCKED
        with pytest.raises(PolicyRefused) as spent:
            runner.submit(allowed, timeout=5)
        assert spent.value.code == "decision_spent"


@EMBEDDED
async def test_a_command_the_device_cannot_take_is_answered_before_the_rules_are_asked(
    start_api: ApiFactory,
) -> None:
    """The body is typed for the device at the edge: out of range is 422 naming the field, even for a resident
    whose agreement is not accepted (the chain would say 403), and nothing is published."""
    async with (
        start_api(**LONG_SESSIONS) as api,
        building(api) as b,
        spying(api) as spy,
    ):
        dimmer, lock = b.entity("a", "dimmer", "light"), b.entity("a", "lock", "lock")
        await publish(api, "2026-02")  # alice has not accepted it: every valid command is refused by the chain
        problem(await command(api, b.alice, dimmer, {"on": True}), 403, "agreement_not_accepted")

        body = problem(await command(api, b.alice, dimmer, {"color_temp_kelvin": 9000}), 422, "out_of_range")
        assert body["field"] == "color_temp_kelvin" and body["command"]["status"] == "rejected", body
        body = problem(await command(api, b.alice, lock, {"action": "open"}), 422, "command_invalid")
        assert body["field"] == "action", body
        # a refused body never reaches a device, whether or not the rules would have allowed it
        assert (await accept(api, b.alice, "2026-02")).status_code == 200
        problem(await command(api, b.alice, dimmer, {"color_temp_kelvin": 9000}), 422, "out_of_range")
        # proven by a command that does go out after them: the spy sees it, and nothing before it
        r = await command(api, b.alice, dimmer, {"on": True, "color_temp_kelvin": 3000})
        assert r.status_code == 200 and r.json()["status"] == "confirmed", r.text
        async with asyncio.timeout(5):
            while not spy.saw("dimmer"):
                await asyncio.sleep(0.01)
        assert len(spy.topics) == 1 and not spy.saw("lock"), spy.topics
