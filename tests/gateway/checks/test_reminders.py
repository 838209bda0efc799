"""Rule 5's reminders through the real interfaces: queued for the app at the right clock times, never before, worded
as a check of the home automation (not a security or alarm system), and pushed on the resident's live stream."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from gateway.clock import ManualClock
from tests.support.api import Api, Sse, bearer
from tests.support.brokers import BrokerHandle
from tests.support.checks import EMBEDDED, checked_building, my_status, self_test
from tests.support.gateway import GatewayFactory

SECOND = timedelta(seconds=1)


async def reminders(api: Api, token: str, after: int = 0) -> list[dict[str, Any]]:
    """The resident's queued reminders after the cursor ``after``, oldest first."""
    r = await api.http.get("/me/notifications", params={"after": after}, headers=bearer(token))
    assert r.status_code == 200, r.text
    return list(r.json())


async def next_reminder(stream: Sse) -> dict[str, Any]:
    """The next ``notification`` event on the stream (state and availability events are skipped)."""
    while True:
        event = await stream.next()
        assert event is not None, "the stream ended"
        if event[0] == "notification":
            return event[1]


def assert_worded_as_a_check(note: dict[str, Any]) -> None:
    """A reminder says what the test is: a check that the home automation works, not a security or alarm system."""
    message = note["message"]
    assert "home automation" in message and "not a security or alarm system" in message, message
    assert "nobody is alerted and nothing is monitored" in message, message


@EMBEDDED
async def test_due_and_overdue_reminders_reach_the_app_at_their_times_and_not_before(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    # Automatic tests off: a test run by the pass itself would clear the very status this is about.
    async with checked_building(make_gateway, broker, prefix, clock, None, automatic=False) as b:
        api, checks = b.api, b.api.services.checks
        assert (await self_test(api, b.alice))["passed"] is True
        status = await my_status(api, b.alice)
        due_at, deadline = (datetime.fromisoformat(status[k]) for k in ("due_at", "deadline"))
        assert due_at == datetime.fromisoformat(status["last_passed_at"]).replace(month=2)  # 2026-01-01 + a month
        async with api.http.stream("GET", "/me/stream", headers=bearer(b.alice)) as response:
            stream = Sse(response)
            assert (await stream.next()) == ("ready", {"unit_id": "a"})
            # A second before the due date: nothing, however often the pass runs.
            clock.set(due_at - SECOND)
            await checks.tick()
            assert await reminders(api, b.alice) == []
            # Just after it: one "due" reminder, with the reason and the deadline, on both channels.
            clock.set(due_at + SECOND)
            await checks.tick()
            await checks.tick()
            (due,) = await reminders(api, b.alice)
            assert due["kind"] == "self_test_due" and due["unit_id"] == "a"
            assert due["data"] == {"status": "due", "reason": "monthly", "deadline": deadline.isoformat()}
            assert "Time to test your home automation" in due["message"]
            assert f"Please test by {deadline:%Y-%m-%d %H:%M} UTC" in due["message"]
            assert_worded_as_a_check(due)
            assert await next_reminder(stream) == due
            # Until the deadline it stays due: no second reminder.
            clock.set(deadline - SECOND)
            await checks.tick()
            assert await reminders(api, b.alice, after=due["id"]) == []
            # Past the deadline: one "overdue" reminder.
            clock.set(deadline + SECOND)
            await checks.tick()
            await checks.tick()
            (overdue,) = await reminders(api, b.alice, after=due["id"])
            assert overdue["kind"] == "self_test_overdue" and overdue["data"]["status"] == "overdue"
            assert overdue["data"]["reason"] == "monthly"
            assert "Your home automation test is overdue" in overdue["message"]
            assert_worded_as_a_check(overdue)
            assert await next_reminder(stream) == overdue
        # Bob sees his own unit's reminders (never tested), never Alice's.
        bobs = await reminders(api, b.bob)
        assert bobs and {n["unit_id"] for n in bobs} == {"b"}
        assert {n["data"]["reason"] for n in bobs} == {"never_tested"}
        # A passing test ends it: the next pass queues nothing more for Alice.
        assert (await self_test(api, b.alice))["passed"] is True
        await checks.tick()
        assert await reminders(api, b.alice, after=overdue["id"]) == []


@EMBEDDED
async def test_a_failed_test_reminds_at_once_on_the_stream(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    async with checked_building(make_gateway, broker, prefix, clock, None, automatic=False) as b:
        api = b.api
        b.sims["a"].dimmer.ignore_commands = True
        async with api.http.stream("GET", "/me/stream", headers=bearer(b.alice)) as response:
            stream = Sse(response)
            assert (await stream.next()) == ("ready", {"unit_id": "a"})
            assert (await self_test(api, b.alice))["passed"] is False
            failing = await next_reminder(stream)
        assert failing["kind"] == "self_test_failing" and failing["data"]["reason"] == "self_test_failed"
        assert "Your last home automation test failed" in failing["message"]
        assert "fwsim-u101-dimmer: no_answer" in failing["message"]
        assert_worded_as_a_check(failing)
        assert await reminders(api, b.alice) == [failing]
