"""Pure tests of rule 5's building blocks: months and downtime, uplink targets and damping, compliance, and what reports
say about a device.

No MQTT broker and no gateway: the uplink monitor probes TCP and HTTP servers this file opens on 127.0.0.1 itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import gateway.connectivity.uplink as uplink_module
from devices import Component, DiscoveryKey, LockConfig, SensorConfig, SensorState
from gateway.checks import ComplianceRules, Trigger, evaluate, requirements
from gateway.checks.models import CheckStatus, Compliance, ComplianceStatus, DeviceCheck, SelfTestResult, StepCheck
from gateway.clock import Clock, ManualClock
from gateway.config import UplinkSettings, UplinkTarget
from gateway.connectivity.freshness import down_since, fresh_report
from gateway.connectivity.models import TEST_EVENTS, Outage, OutageKind, add_months, downtime, month_window
from gateway.connectivity.uplink import ProbeResult, UplinkMonitor, UplinkState, probe
from gateway.core.entity import Entity, StateError
from gateway.errors import ConfigError

T0 = datetime(2026, 3, 15, 8, 30, tzinfo=UTC)  # the last pass, unless a test says otherwise
DUE = datetime(2026, 4, 15, 8, 30, tzinfo=UTC)  # a calendar month after T0
TICK = timedelta(microseconds=1)
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
RULES = ComplianceRules()
CREATED = datetime(2026, 1, 10, 9, tzinfo=UTC)
OK, DUE_, OVERDUE, FAILING = list(ComplianceStatus)  # in the order the enum declares them


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- calendar months, outages, downtime ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "months", "expected"),
    [(utc(2027, 1, 31, 23, 59), 1, utc(2027, 2, 28, 23, 59)), (utc(2028, 1, 31, 23, 59), 1, utc(2028, 2, 29, 23, 59)),
     (utc(2026, 12, 15, 7), 1, utc(2027, 1, 15, 7)), (utc(2026, 12, 31), 2, utc(2027, 2, 28)),
     (utc(2026, 3, 31), 1, utc(2026, 4, 30)), (utc(2026, 5, 20, 1, 2), 12, utc(2027, 5, 20, 1, 2)),
     (utc(2026, 3, 31), -1, utc(2026, 2, 28)), (utc(2026, 1, 15), -1, utc(2025, 12, 15))],
)  # fmt: skip
def test_add_months_clamps_the_day_and_rolls_the_year(when: datetime, months: int, expected: datetime) -> None:
    """Calendar months, the day clamped to the month's end, time of day and zone kept."""
    assert add_months(when, months) == expected
    assert add_months(when, months).tzinfo is UTC


@settings(max_examples=200, deadline=None)
@given(
    when=st.datetimes(datetime(1990, 1, 1), datetime(2090, 12, 31), timezones=st.just(UTC)),
    months=st.integers(-60, 60),
)
def test_add_months_lands_in_the_right_month(when: datetime, months: int) -> None:
    """The target month is ``months`` later; the day is kept unless that month is shorter."""
    got = add_months(when, months)
    assert got.year * 12 + got.month == when.year * 12 + when.month + months
    start, end = month_window(f"{got.year:04d}-{got.month:02d}")
    assert got.day == min(when.day, (end - start).days)
    assert (got.hour, got.minute, got.second, got.microsecond, got.tzinfo) == (
        when.hour, when.minute, when.second, when.microsecond, when.tzinfo,
    )  # fmt: skip


def test_month_window_is_half_open_utc() -> None:
    """[first instant, first instant of the next month) in UTC; February has 28 or 29 days."""
    assert month_window("2026-12") == (utc(2026, 12, 1), utc(2027, 1, 1))
    assert month_window("2027-02") == (utc(2027, 2, 1), utc(2027, 3, 1))
    assert month_window("2028-02") == (utc(2028, 2, 1), utc(2028, 3, 1))


def _outage(kind: OutageKind, start: datetime, end: datetime | None, *, property_id: str | None = None) -> Outage:
    return Outage(1, kind, start, end, "test", property_id=property_id)


def test_outage_duration_and_which_properties_it_touches() -> None:
    """Open outages last until now; broadband/broker/power touch every property, storms and devices only theirs."""
    assert _outage(OutageKind.POWER, T0, T0 + MINUTE).duration(T0 + DAY) == MINUTE
    assert _outage(OutageKind.POWER, T0, None).duration(T0 + DAY) == DAY
    for kind in OutageKind:
        wide = kind in (OutageKind.BROADBAND, OutageKind.BROKER, OutageKind.POWER)
        assert _outage(kind, T0, None, property_id="p1").touches_property("p1")
        assert _outage(kind, T0, None, property_id="p2").touches_property("p1") is wide
        assert _outage(kind, T0, None).touches_property("p1") is wide


@settings(max_examples=200, deadline=None)
@given(
    spans=st.lists(st.tuples(st.integers(0, 40), st.one_of(st.none(), st.integers(0, 40))), max_size=6),
    window=st.tuples(st.integers(0, 40), st.integers(0, 40)),
    now=st.integers(0, 45),
)
@example(spans=[(0, 5), (3, 7), (10, None)], window=(2, 15), now=12)  # clipped, overlapping, open till now
@example(spans=[(0, 5), (3, 7), (10, None)], window=(7, 10), now=20)  # touching edges cover nothing
def test_downtime_matches_counting_covered_minutes(
    spans: list[tuple[int, int | None]], window: tuple[int, int], now: int
) -> None:
    """On whole minutes, downtime is the number of minutes of the window that some outage (open: till now) covers."""
    start, end = window
    expected = sum(1 for m in range(start, end) if any(s <= m < (now if e is None else e) for s, e in spans))
    outages = [_outage(OutageKind.DEVICE, T0 + s * MINUTE, None if e is None else T0 + e * MINUTE) for s, e in spans]
    args = (T0 + start * MINUTE, T0 + end * MINUTE, T0 + now * MINUTE)
    assert downtime(outages, *args) == expected * MINUTE
    assert downtime(reversed(outages), *args) == expected * MINUTE


# --- uplink targets ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "host", "port", "url"),
    [("example.net:443", "example.net", 443, None), ("10.0.0.1:53", "10.0.0.1", 53, None),
     ("[::1]:8080", "::1", 8080, None), ("  1.1.1.1:80 ", "1.1.1.1", 80, None),
     ("http://example.net/health", "example.net", 80, "http://example.net/health"),
     ("https://example.net/health", "example.net", 443, "https://example.net/health"),
     ("http://example.net:8080/", "example.net", 8080, "http://example.net:8080/"),
     ("https://[::1]:8443/x", "::1", 8443, "https://[::1]:8443/x")],
)  # fmt: skip
def test_uplink_target_parses_host_port_and_urls(value: str, host: str, port: int, url: str | None) -> None:
    """``host:port``, ``[v6]:port`` and http(s) URLs with their default ports; the URL is kept; str() parses back."""
    target = UplinkTarget.parse(value)
    assert (target.host, target.port, target.url) == (host, port, url)
    assert str(target) == value.strip()
    assert UplinkTarget.parse(str(target)) == target


@pytest.mark.parametrize(
    "value",
    ["ftp://x", "host", "host:abc", ":80", "http://", "", "mqtt://broker:1883", "[::1]", "host:0", "host:70000",
     "[::1]:0", "http://h:99999/", "http://example.net:0/"],
)  # fmt: skip
def test_uplink_target_refuses_other_text_with_a_config_error(value: str) -> None:
    """Anything else, out-of-range and explicit :0 ports included, is a ConfigError on the ``uplink`` field."""
    with pytest.raises(ConfigError) as caught:
        UplinkTarget.parse(value)
    assert (caught.value.code, caught.value.field) == ("config_invalid", "uplink")


# --- the uplink monitor, against real local sockets ---------------------------------------------------------


async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


class Port:
    """A port on 127.0.0.1: listening (and hanging up at once) while open, refusing connects while closed."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def target(self) -> UplinkTarget:
        return UplinkTarget.parse(f"127.0.0.1:{self.port}")

    async def open(self) -> None:
        if self._server is None:  # bound to the same port number again after a close()
            self._server = await asyncio.start_server(_hang_up, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()


@pytest.fixture
async def port() -> AsyncIterator[Port]:
    """An open local port, closed after the test."""
    handle = Port()
    await handle.open()
    yield handle
    await handle.close()


@contextlib.asynccontextmanager
async def http_server(reply: bytes | None) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A local HTTP server answering each request with ``reply`` (None: never); yields its URL and the requests."""
    requests: list[bytes] = []
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            requests.append(await reader.readuntil(b"\r\n\r\n"))
            if reply is None:
                await reader.read()  # until the client gives up (or the teardown hangs up)
            writer.write(reply or b"")
            await writer.drain()
        await _hang_up(reader, writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/health", requests
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


Seen = list[tuple[UplinkState, bool, datetime]]


def _watched(target: UplinkTarget, clock: Clock, **options: int) -> tuple[UplinkMonitor, Seen]:
    monitor = UplinkMonitor(UplinkSettings(target=target, timeout_seconds=2.0, **options), clock)
    seen: Seen = []
    monitor.on_transition(lambda state, result, since: seen.append((state, result.ok, since)))
    return monitor, seen


async def test_probe_connects_over_tcp_and_reports_a_refused_port(port: Port) -> None:
    """Connect succeeds while listening; a closed port is a failure naming the target; ``at`` is the clock's."""
    clock = ManualClock(T0)
    up = await probe(port.target, 2.0, clock)
    assert (up.ok, up.at, up.error) == (True, T0, None)
    assert up.latency_ms >= 0
    await port.close()
    down = await probe(port.target, 2.0, clock)
    assert not down.ok
    assert (down.error or "").startswith(f"127.0.0.1:{port.port}: ")


@pytest.mark.parametrize("status", [b"204 No Content", b"503 Service Unavailable"])
async def test_a_url_target_is_up_on_any_http_answer_to_a_head(status: bytes) -> None:
    """The monitor sends HEAD to the URL; even a 503 proves the uplink carries traffic."""
    reply = b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    async with http_server(reply) as (url, requests):
        monitor, seen = _watched(UplinkTarget.parse(url), ManualClock(T0))
        results = [await monitor.check(), await monitor.check()]
    assert [(r.ok, r.error) if r else None for r in results] == [(True, None), (True, None)]
    assert (monitor.state, seen) == (UplinkState.UP, [])
    assert [r.split(b"\r\n")[0] for r in requests] == [b"HEAD /health HTTP/1.1"] * 2


async def test_probe_of_a_url_fails_when_unanswered_or_refused() -> None:
    """A silent server runs into the timeout; a refused URL is named in the error."""
    async with http_server(None) as (url, _):
        silent = await probe(UplinkTarget.parse(url), 0.1, ManualClock(T0))
    assert (silent.ok, silent.error) == (False, f"no answer from {url} within 0.1 s")
    refused = await probe(UplinkTarget.parse(url), 2.0, ManualClock(T0))  # the server is gone now
    assert not refused.ok
    assert (refused.error or "").startswith(f"{url}: ")


async def test_monitor_without_a_target_is_not_configured() -> None:
    """The default settings: no target (so NOT_CONFIGURED, checks do nothing, never down), thresholds 3 and 2."""
    defaults = UplinkSettings()
    assert (defaults.target, defaults.fail_threshold, defaults.recover_threshold) == (None, 3, 2)
    monitor = UplinkMonitor(defaults, ManualClock(T0))
    assert (monitor.state, monitor.configured, monitor.is_down()) == (UplinkState.NOT_CONFIGURED, False, False)
    assert await monitor.check() is None
    await monitor.run()
    async with asyncio.timeout(1):
        await monitor.wait_not_down()


async def test_monitor_damps_real_probes_and_dates_each_change_from_its_streak(port: Port) -> None:
    """Flapping changes nothing; 3 refusals in a row: DOWN since the first; 2 connects in a row: UP since the first."""
    clock = ManualClock(T0)
    monitor, seen = _watched(port.target, clock)
    assert monitor.state is UplinkState.UNKNOWN

    async def check(ok: bool, state: UplinkState) -> datetime:
        await (port.open() if ok else port.close())
        clock.advance(MINUTE)
        result = await monitor.check()
        assert result is not None
        assert (result.ok, result.at, monitor.last, monitor.state) == (ok, clock.now(), result, state)
        return clock.now()

    for ok in (True, False, True, False, True):  # flapping: no verdict yet
        await check(ok, UplinkState.UNKNOWN)
    await check(True, UplinkState.UP)
    for ok in (False, True, False, False, True):  # flapping, and two failures are not an outage
        await check(ok, UplinkState.UP)
    assert seen == []  # the first verdict (UP) is not told: nothing was down
    first_failure = await check(False, UplinkState.UP)
    await check(False, UplinkState.UP)
    await check(False, UplinkState.DOWN)
    assert seen == [(UplinkState.DOWN, False, first_failure)]
    assert monitor.is_down()
    for ok in (False, True, False, True, False):  # one lucky probe is not a recovery
        await check(ok, UplinkState.DOWN)
    first_success = await check(True, UplinkState.DOWN)
    await check(True, UplinkState.UP)
    assert seen[1:] == [(UplinkState.UP, True, first_success)]
    assert not monitor.is_down()


async def test_wait_not_down_returns_at_once_unless_down_then_waits_for_recovery(port: Port) -> None:
    """Not down (unknown or up): no wait. Down: waits until the damped state is UP again."""
    monitor, _ = _watched(port.target, ManualClock(T0), fail_threshold=1, recover_threshold=2)
    async with asyncio.timeout(1):
        await monitor.wait_not_down()  # UNKNOWN
    await port.close()
    await monitor.check()
    assert monitor.is_down()
    waiter = asyncio.create_task(monitor.wait_not_down())
    await port.open()
    await monitor.check()
    await asyncio.sleep(0)
    assert not waiter.done()  # still down after one success
    await monitor.check()
    async with asyncio.timeout(1):
        await waiter
    assert monitor.state is UplinkState.UP
    async with asyncio.timeout(1):
        await monitor.wait_not_down()  # UP


def _scripted(outcomes: Iterable[bool]) -> Callable[[UplinkTarget, float, Clock], Awaitable[ProbeResult]]:
    results = iter(outcomes)

    async def fake_probe(target: UplinkTarget, timeout: float, clock: Clock) -> ProbeResult:
        return ProbeResult(next(results), clock.now(), 0.0)

    return fake_probe


@settings(max_examples=200, deadline=None)
@given(outcomes=st.lists(st.booleans(), max_size=20), fail=st.integers(1, 4), recover=st.integers(1, 4))
async def test_damping_follows_the_streak_rule(outcomes: list[bool], fail: int, recover: int) -> None:
    """After each probe, a trailing run at its threshold decides the state; changes but the first UP are told."""
    clock = ManualClock(T0)
    monitor, seen = _watched(UplinkTarget.parse("127.0.0.1:9"), clock, fail_threshold=fail, recover_threshold=recover)
    state, expected, times = UplinkState.UNKNOWN, [], []
    with patch.object(uplink_module, "probe", _scripted(outcomes)):
        for i, ok in enumerate(outcomes):
            clock.advance(MINUTE)
            times.append(clock.now())
            await monitor.check()
            run = next((k for k in range(i + 1) if outcomes[i - k] is not ok), i + 1)
            new = UplinkState.UP if ok else UplinkState.DOWN
            if run >= (recover if ok else fail) and new is not state:
                if not (state is UplinkState.UNKNOWN and new is UplinkState.UP):
                    expected.append((new, ok, times[i - run + 1]))
                state = new
            assert monitor.state is state
    assert seen == expected


# --- compliance (rule 5) ------------------------------------------------------------------------------------


def _test_result(finished_at: datetime, *, passed: bool) -> SelfTestResult:
    ok, skipped = StepCheck(status=CheckStatus.PASSED, latency_ms=3.0), StepCheck(status=CheckStatus.SKIPPED)
    failed = StepCheck(status=CheckStatus.FAILED, reason="uplink_unreachable")
    devices = (
        DeviceCheck(device_id="lock1", name="Front door", kind="lock", status=CheckStatus.FAILED, reason="no_answer"),
        DeviceCheck(device_id="light1", name="Light", kind="light", status=CheckStatus.PASSED, latency_ms=12.0),
        DeviceCheck(device_id="leak1", name="Leak", kind=None, status=CheckStatus.SKIPPED, reason="not_supported"),
    )
    return SelfTestResult(
        id="t1", unit_id="u1", property_id="p1", trigger=Trigger.RESIDENT, actor_id="acc-1",
        started_at=finished_at - MINUTE, finished_at=finished_at, passed=passed,
        uplink=ok if passed else failed, broker=skipped if passed else ok, devices=() if passed else devices,
    )  # fmt: skip


def test_self_test_failures_lists_failed_steps_only() -> None:
    """Failed uplink, broker and device steps, with reasons; passed and skipped steps are not failures."""
    assert _test_result(T0, passed=False).failures() == ["uplink: uplink_unreachable", "device lock1: no_answer"]
    assert _test_result(T0, passed=True).failures() == []
    bad_broker = StepCheck(status=CheckStatus.FAILED, reason="no_echo")
    assert _test_result(T0, passed=True).model_copy(update={"broker": bad_broker}).failures() == ["broker: no_echo"]


def _status(
    now: datetime, *, passed: datetime | None = T0, last: SelfTestResult | None = None, events: Iterable[Outage] = ()
) -> Compliance:
    return evaluate(
        "u1", now, unit_created_at=CREATED, last_passed_at=passed, last_test=last, events=events, rules=RULES
    )


def _check(result: Compliance, status: ComplianceStatus, reason: str, due_at: datetime, deadline: datetime) -> None:
    assert (result.status, result.reason, result.due_at, result.deadline) == (status, reason, due_at, deadline)
    assert result.overdue_since == (deadline if status is OVERDUE else None)


def test_never_tested_is_due_at_creation_and_overdue_after_the_month_grace() -> None:
    """No pass yet: due from the unit's creation, overdue a week later; events over before it existed don't count."""
    deadline = CREATED + 7 * DAY
    events = [_outage(OutageKind.POWER, CREATED - DAY, CREATED), _outage(OutageKind.STORM, CREATED - 2 * DAY, None)]
    for now, status in [(CREATED, DUE_), (deadline - TICK, DUE_), (deadline, OVERDUE)]:
        _check(_status(now, passed=None), status, "never_tested", CREATED, deadline)
        assert _status(now, passed=None, events=events) == _status(now, passed=None)


def test_monthly_test_boundaries() -> None:
    """OK until a calendar month after the pass, due from that instant, overdue from due + 7 days."""
    deadline = DUE + 7 * DAY
    for now, status, reason in [(T0, OK, "tested"), (DUE - TICK, OK, "tested"), (DUE, DUE_, "monthly"),
                                (deadline - TICK, DUE_, "monthly"), (deadline, OVERDUE, "monthly")]:  # fmt: skip
        result = _status(now)
        _check(result, status, reason, DUE, deadline)
        assert (result.unit_id, result.last_passed_at) == ("u1", T0)


@pytest.mark.parametrize(("year", "day"), [(2027, 28), (2028, 29)])
def test_a_pass_on_january_31_is_due_on_the_last_day_of_february(year: int, day: int) -> None:
    """Jan 31 -> Feb 28 in 2027, Feb 29 in the leap year 2028."""
    passed, due = utc(year, 1, 31, 18), utc(year, 2, day, 18)
    _check(_status(due - TICK, passed=passed), OK, "tested", due, due + 7 * DAY)
    _check(_status(due, passed=passed), DUE_, "monthly", due, due + 7 * DAY)


@pytest.mark.parametrize("kind", sorted(TEST_EVENTS))
def test_an_event_after_the_last_pass_makes_a_test_due_from_its_end(kind: OutageKind) -> None:
    """Power, broadband, storm: due at once when it ends, overdue a day later."""
    end = T0 + 3 * DAY
    events = [_outage(kind, T0 + 2 * DAY, end)]
    _check(_status(end - TICK, events=events), OK, "tested", end, end + DAY)
    for now, status in [(end, DUE_), (end + DAY - TICK, DUE_), (end + DAY, OVERDUE)]:
        result = _status(now, events=events)
        _check(result, status, f"after_{kind}", end, end + DAY)
        assert "ended" in result.detail


def test_an_open_event_is_due_from_its_start_and_one_the_pass_fell_within_from_its_end() -> None:
    """A storm still going on since after the last pass; a power cut that began before it and ended after."""
    start, end = T0 + 2 * DAY, T0 + DAY
    still = _status(start, events=[_outage(OutageKind.STORM, start, None, property_id="p1")])
    _check(still, DUE_, "after_storm", start, start + DAY)
    assert "began" in still.detail
    _check(_status(end, events=[_outage(OutageKind.POWER, T0 - DAY, end)]), DUE_, "after_power", end, end + DAY)


def test_a_failed_latest_test_wins_over_due_and_overdue() -> None:
    """Failing, with the failures in the detail, even when overdue; a failure before the last pass is history."""
    failed = _test_result(T0 + DAY, passed=False)
    for now in (T0 + 2 * DAY, DUE, DUE + 7 * DAY):
        result = _status(now, last=failed)
        assert (result.status, result.reason, result.last_test) == (FAILING, "self_test_failed", failed)
        assert result.detail == "the latest self-test failed: uplink: uplink_unreachable; device lock1: no_answer"
    assert _status(CREATED, passed=None, last=failed).status is FAILING
    assert _status(T0 + DAY, last=_test_result(T0 - DAY, passed=False)).status is OK
    assert _status(T0 + DAY, last=_test_result(T0, passed=False)).status is OK
    assert _status(T0 + DAY, last=_test_result(T0, passed=True)).status is OK


def test_requirements_lists_the_monthly_one_even_when_not_due_soonest_deadline_first() -> None:
    """Every owed test, sorted by deadline."""
    end = T0 + 3 * DAY
    events = [_outage(OutageKind.BROADBAND, T0 + DAY, end), _outage(OutageKind.DEVICE, T0, end)]
    owed = requirements(unit_created_at=CREATED, last_passed_at=T0, events=events, rules=RULES)
    assert [(r.reason, r.due_at, r.deadline) for r in owed] == [
        ("after_broadband", end, end + DAY),
        ("monthly", DUE, DUE + 7 * DAY),
    ]


@settings(max_examples=200, deadline=None)
@given(
    passed=st.datetimes(datetime(2026, 1, 11), datetime(2030, 12, 31), timezones=st.just(UTC)),
    later=st.timedeltas(timedelta(), timedelta(days=80)),
)
def test_monthly_status_is_ok_then_due_then_overdue(passed: datetime, later: timedelta) -> None:
    """With no events and no failure, add_months(pass) and the week of grace alone decide the status."""
    now, due = passed + later, add_months(passed)
    assert 28 * DAY <= due - passed <= 31 * DAY
    expected = OK if now < due else DUE_ if now < due + 7 * DAY else OVERDUE
    result = _status(now, passed=passed)
    assert (result.status, result.due_at, result.deadline) == (expected, due, due + 7 * DAY)


_event = st.tuples(
    st.sampled_from(list(OutageKind)),
    st.integers(-3 * 24 * 60, 40 * 24 * 60).map(lambda m: T0 + m * MINUTE),
    st.one_of(st.none(), st.integers(1, 10_000)),
)


@settings(max_examples=200, deadline=None)
@given(spans=st.lists(_event, max_size=5), later=st.timedeltas(timedelta(), timedelta(days=60)))
@example(spans=[(OutageKind.DEVICE, T0 + DAY, 60), (OutageKind.BROKER, T0 + DAY, None)], later=3 * DAY)
@example(spans=[(OutageKind.POWER, T0 - DAY, 1440), (OutageKind.BROADBAND, T0 - DAY, None)], later=40 * DAY)
def test_events_that_do_not_ask_for_a_test_change_nothing(
    spans: list[tuple[OutageKind, datetime, int | None]], later: timedelta
) -> None:
    """Device/broker outages and events over (or open) by the last pass leave the evaluation as it was."""
    events = [_outage(kind, start, None if n is None else start + n * MINUTE) for kind, start, n in spans]
    ignored = [e for e in events if e.kind not in TEST_EVENTS or (e.ended_at or e.started_at) <= T0]
    assert _status(T0 + later, events=ignored) == _status(T0 + later)
    counted = [e for e in events if e not in ignored]
    if any((e.ended_at or e.started_at) <= T0 + later for e in counted):
        assert _status(T0 + later, events=events).status in (DUE_, OVERDUE)


# --- what reports say: down for connectivity, fresh enough for the self-test ---------------------------------------


def _entity(*, availability: bool = False, expire_after: int | None = None, reported: datetime | None = T0) -> Entity:
    """A temperature sensor discovered a day before T0 that last reported at ``reported`` (None: never)."""
    config = SensorConfig(
        state_topic="u1/temp", expire_after=expire_after, availability_topic="u1/status" if availability else None
    )
    state = None if reported is None else SensorState(value=20.5, unit=None)
    return Entity(
        key=DiscoveryKey(Component.SENSOR, "u1", "temp"), device_id="u1", config=config, raw_config="{}",
        discovered_at=T0 - DAY, state=state, state_at=reported, last_seen=reported,
        available=True if availability else None,
    )  # fmt: skip


def test_a_device_is_down_when_offline_refused_silent_expired_or_never_heard_from() -> None:
    """Each cause from the moment it began; a device that reports nothing (no state topic) is judged by its will."""
    silence = DAY
    assert down_since(_entity(), T0 + DAY, silence) is None
    assert down_since(_entity(), T0 + DAY + TICK, silence) == ("silent", T0 + DAY)
    assert down_since(_entity(availability=True), T0 + 30 * DAY, silence) is None  # its last will speaks for it
    assert down_since(_entity(expire_after=600), T0 + 601 * SECOND, silence) == ("expired", T0 + 600 * SECOND)
    never = _entity(reported=None)
    assert down_since(never, T0, silence) is None  # discovered a day ago: exactly its interval
    assert down_since(never, T0 + TICK, silence) == ("never_reported", T0)
    assert down_since(_entity(reported=None, expire_after=60), T0 - DAY + 61 * SECOND, silence) == (
        "never_reported",
        T0 - DAY + 60 * SECOND,
    )
    refused = _entity(availability=True)
    refused.state_error = StateError("payload_out_of_range", "reading 900.0 out of range", T0 + MINUTE)
    assert down_since(refused, T0 + 2 * MINUTE, silence) == ("invalid_report", T0 + MINUTE)
    offline = _entity(availability=True)
    offline.available, offline.availability_at = False, T0 + MINUTE
    assert down_since(offline, T0 + 2 * MINUTE, silence) == ("offline", T0 + MINUTE)
    optimistic = _entity()
    optimistic.config = LockConfig(command_topic="u1/lock/set")
    assert down_since(optimistic, T0 + 90 * DAY, silence) is None


def test_a_device_that_cannot_be_asked_passes_by_a_recent_valid_report() -> None:
    """Its newest valid report within the interval of the entity that made it; refused or expired ones fail it."""
    door, battery = _entity(reported=T0 - 3 * DAY), _entity(reported=T0 - MINUTE)
    assert fresh_report([door, battery], T0, DAY) == (
        None,
        "its latest valid report is 60 s old, within the expected 86400 s",
    )
    reason, detail = fresh_report([door], T0, DAY)
    assert reason == "stale_report" and "259200 s old, beyond the expected 86400 s" in detail
    assert fresh_report([_entity(reported=None)], T0, DAY)[0] == "never_reported"
    assert fresh_report([_entity(expire_after=600, reported=T0 - 601 * SECOND), battery], T0, DAY)[0] == "stale_report"
    battery.state_error = StateError("payload_not_json", "not JSON", T0)
    assert fresh_report([door, battery], T0, DAY)[0] == "invalid_report"
