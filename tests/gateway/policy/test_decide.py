"""Unit tests for the control decision (gateway.policy.decide) and the policy models it reads."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import Component, DeviceKind, DiscoveryKey, parse_config
from gateway.accounts import Account, AccountStatus, Role, Session
from gateway.core.entity import Entity
from gateway.core.typed_command import type_command
from gateway.policy import (
    OPT_OUT_WINDOW,
    AgreementRecord,
    AgreementState,
    AgreementVersion,
    Allowed,
    AppVersion,
    AppVersionCheck,
    ConnectionProvider,
    Contract,
    ContractStatus,
    ControlCommand,
    ControlRequest,
    ControlTarget,
    Decision,
    InternetProvider,
    Link,
    Plan,
    Refusal,
    RefusalCode,
    admission_refusal,
    binding_refusal,
    decide,
    opt_out_deadline,
    opt_out_refusal,
    service_refusal,
)

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)
ORDER = (Link.ACCOUNT, Link.SESSION, Link.APP, Link.DEVICE, Link.CONTRACT, Link.PLAN, Link.AGREEMENT)
V1 = AgreementVersion("v1", NOW - DAY)

Breaker = Callable[[ControlRequest], ControlRequest]
_CONFIGS = {
    Component.LIGHT: b'{"schema":"json","command_topic":"home/light/set","state_topic":"home/light"}',
    Component.LOCK: b'{"command_topic":"home/lock/set","state_topic":"home/lock"}',
}


def _command(component: Component, body: dict[str, object]) -> ControlCommand:
    """A command typed for an entity of that component, as the edge types it."""
    config = _CONFIGS[component]
    key = DiscoveryKey(component, None, "dev_1")
    entity = Entity(key, "dev-1", parse_config(component, config), config.decode(), NOW)
    return ControlCommand(type_command(entity, body))


def _baseline() -> ControlRequest:
    """A request where every link holds at NOW."""
    account = Account(
        id="acc-1", username="resident1", display_name="Resident One", role=Role.RESIDENT, property_id="p1",
        unit_id="a", status=AccountStatus.ACTIVE, status_reason=None, created_at=NOW - 10 * DAY,
        activated_at=NOW - 9 * DAY, ended_at=None,
    )  # fmt: skip
    session = Session(
        id="s-1", account_id="acc-1", client="app", created_at=NOW - DAY, last_used_at=NOW - TICK,
        expires_at=NOW + DAY, revoked_at=None, revoked_reason=None,
    )  # fmt: skip
    plan = Plan()
    contract = Contract(
        property_id="p1", status=ContractStatus.ACTIVE, starts_at=NOW - DAY, ends_at=None, offers_service=True,
        internet=InternetProvider(ConnectionProvider.LESSOR, "NetCo", "support@example.net"), plan=plan,
    )  # fmt: skip
    record = AgreementRecord(accepted={"v1": NOW - DAY}, first_accepted_at=NOW - DAY)
    return ControlRequest(
        contract=contract,
        plan=plan,
        agreement=AgreementState((V1,), record),
        account=account,
        session=session,
        app=AppVersionCheck(AppVersion.parse("2.4.0"), AppVersion.parse("2.4.1")),
        device=ControlTarget("dev-1", "a"),
        command=_command(Component.LIGHT, {"on": True}),
    )


BASE = _baseline()


def _account(r: ControlRequest, **changes: object) -> ControlRequest:
    return replace(r, account=replace(r.account, **changes))  # type: ignore[arg-type]


def _session(r: ControlRequest, **changes: object) -> ControlRequest:
    assert r.session is not None
    return replace(r, session=replace(r.session, **changes))  # type: ignore[arg-type]


def _contract(r: ControlRequest, **changes: object) -> ControlRequest:
    assert r.contract is not None
    return replace(r, contract=replace(r.contract, **changes))  # type: ignore[arg-type]


def _agreement(r: ControlRequest, versions: tuple[AgreementVersion, ...], *accepted: str) -> ControlRequest:
    record = AgreementRecord({v: NOW - DAY for v in accepted}, NOW - DAY if accepted else None)
    return replace(r, agreement=AgreementState(versions, record))


def _app(r: ControlRequest, minimum: str | None, reported: str | None) -> ControlRequest:
    def parse(text: str | None) -> AppVersion | None:
        return None if text is None else AppVersion.parse(text)

    return replace(r, app=AppVersionCheck(parse(minimum), parse(reported)))


# One way to break each link alone; none of them disturbs another link.
BREAKERS: dict[Link, Breaker] = {
    Link.ACCOUNT: lambda r: _account(r, status=AccountStatus.SUSPENDED, status_reason="unpaid"),
    Link.SESSION: lambda r: _session(r, revoked_at=NOW - TICK, revoked_reason="signed out"),
    Link.APP: lambda r: _app(r, "2.4.0", "2.3.9"),
    Link.DEVICE: lambda r: replace(r, device=ControlTarget("dev-1", "b")),
    Link.CONTRACT: lambda r: _contract(r, status=ContractStatus.SUSPENDED),
    Link.PLAN: lambda r: replace(r, plan=Plan(device_kinds=frozenset({DeviceKind.SENSOR}))),
    Link.AGREEMENT: lambda r: _agreement(r, (V1,)),
}


def _breaking(links: set[Link]) -> ControlRequest:
    return functools.reduce(lambda r, link: BREAKERS[link](r), [k for k in ORDER if k in links], BASE)


def _refused(decision: Decision) -> Refusal:
    assert isinstance(decision, Refusal), decision
    return decision


def _check(request: ControlRequest, link: Link, code: RefusalCode) -> Refusal:
    refusal = _refused(decide(request, NOW))
    assert (refusal.link, refusal.code) == (link, code)
    return refusal


# --- every link holds -----------------------------------------------------------------------------------------------


def _allowed(decision: Decision) -> Allowed:
    assert isinstance(decision, Allowed), decision
    assert decision.request is BASE and decision.at == NOW
    return decision


def test_baseline_is_allowed() -> None:
    _allowed(decide(BASE, NOW))


def test_an_allowed_is_made_by_decide_only_and_spent_once() -> None:
    with pytest.raises(TypeError, match="decide"):
        Allowed(BASE, NOW, key=object())
    allowed = _allowed(decide(BASE, NOW))
    with pytest.raises(AttributeError):
        allowed.request = replace(BASE, command=_command(Component.LOCK, {"action": "lock"}))  # type: ignore[misc]
    assert allowed.spend() is True
    assert allowed.spend() is False  # a second command on the same decision is refused by the runner
    assert decide(BASE, NOW) is not decide(BASE, NOW)  # every decision is a ticket of its own


def test_breakers_cover_every_link_in_order() -> None:
    assert tuple(Link) == ORDER
    assert set(BREAKERS) == set(Link)
    assert RefusalCode.NOT_A_RESIDENT.value == "role_forbidden"


# --- each link failing alone ----------------------------------------------------------------------------------------


def test_account_suspended_names_the_reason() -> None:
    refusal = _check(BREAKERS[Link.ACCOUNT](BASE), Link.ACCOUNT, RefusalCode.ACCOUNT_DISABLED)
    assert "unpaid" in refusal.detail
    assert refusal.extra == {"reason": "unpaid"}
    plain = _check(_account(BASE, status=AccountStatus.SUSPENDED), Link.ACCOUNT, RefusalCode.ACCOUNT_DISABLED)
    assert (plain.detail, plain.extra) == ("the account is disabled", {"reason": None})


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"status": AccountStatus.TERMINATED, "ended_at": NOW - DAY}, RefusalCode.ACCOUNT_TERMINATED),
        ({"status": AccountStatus.PENDING, "activated_at": None}, RefusalCode.ACCOUNT_NOT_ACTIVE),
        ({"role": Role.MANAGER}, RefusalCode.NOT_A_RESIDENT),
        ({"role": Role.INSTALLER}, RefusalCode.NOT_A_RESIDENT),
        ({"role": Role.OPERATOR, "unit_id": None}, RefusalCode.NOT_A_RESIDENT),
        ({"unit_id": None}, RefusalCode.NOT_A_RESIDENT),
    ],
)
def test_account_refusals(changes: dict[str, object], code: RefusalCode) -> None:
    assert _check(_account(BASE, **changes), Link.ACCOUNT, code).extra == {}


@pytest.mark.parametrize(
    "request_",
    [
        BREAKERS[Link.SESSION](BASE),
        _session(BASE, account_id="acc-2"),
        _session(BASE, account_id="acc-2", expires_at=NOW - DAY),  # revoked wins over expired
    ],
)
def test_session_revoked(request_: ControlRequest) -> None:
    _check(request_, Link.SESSION, RefusalCode.SESSION_REVOKED)


@pytest.mark.parametrize("expires_at", [NOW, NOW - TICK, NOW - DAY])
def test_session_expired(expires_at: datetime) -> None:
    _check(_session(BASE, expires_at=expires_at), Link.SESSION, RefusalCode.SESSION_EXPIRED)


def test_session_just_before_expiry_and_no_session_are_allowed() -> None:
    assert isinstance(decide(_session(BASE, expires_at=NOW + TICK), NOW), Allowed)
    assert isinstance(decide(replace(BASE, session=None), NOW), Allowed)


@pytest.mark.parametrize(
    ("minimum", "reported"), [("2.4.0", "2.3.9"), ("2.4.0", "2.3"), ("2.10", "2.9.99"), ("3", "2.99.99.99")]
)
def test_app_below_minimum(minimum: str, reported: str) -> None:
    refusal = _check(_app(BASE, minimum, reported), Link.APP, RefusalCode.APP_UPDATE_REQUIRED)
    assert refusal.extra == {"minimum_version": minimum, "your_version": reported}


def test_app_without_version_is_refused_when_a_minimum_is_set() -> None:
    refusal = _check(_app(BASE, "2.4", None), Link.APP, RefusalCode.APP_UPDATE_REQUIRED)
    assert refusal.extra == {"minimum_version": "2.4", "your_version": None}
    assert "no version" in refusal.detail


@pytest.mark.parametrize(("minimum", "reported"), [(None, None), (None, "0.1"), ("2.4", "2.4.0.0"), ("2.4.0", "2.4")])
def test_app_allowed(minimum: str | None, reported: str | None) -> None:
    assert isinstance(decide(_app(BASE, minimum, reported), NOW), Allowed)


@pytest.mark.parametrize("unit_id", [None, "b", "A", ""])
def test_device_not_in_unit(unit_id: str | None) -> None:
    refusal = _check(replace(BASE, device=ControlTarget("dev-9", unit_id)), Link.DEVICE, RefusalCode.DEVICE_NOT_IN_UNIT)
    assert "dev-9" in refusal.detail
    assert refusal.extra == {}


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (replace(BASE, contract=None), "no_contract"),
        (_contract(BASE, status=ContractStatus.SUSPENDED), "suspended"),
        (_contract(BASE, status=ContractStatus.TERMINATED, ends_at=NOW + DAY), "terminated"),
        (_contract(BASE, offers_service=False), "service_withdrawn"),
    ],
)
def test_contract_lapses(request_: ControlRequest, reason: str) -> None:
    refusal = _check(request_, Link.CONTRACT, RefusalCode.LESSOR_CONTRACT_INACTIVE)
    assert refusal.extra == {"reason": reason}
    assert refusal.detail.endswith("; devices stay as they are")


@pytest.mark.parametrize("ends_at", [None, NOW + 30 * DAY])
def test_contract_not_started(ends_at: datetime | None) -> None:
    starts = NOW + TICK
    request = _contract(BASE, starts_at=starts, ends_at=ends_at)
    refusal = _check(request, Link.CONTRACT, RefusalCode.LESSOR_CONTRACT_INACTIVE)
    ends = None if ends_at is None else ends_at.isoformat()
    assert refusal.extra == {"reason": "not_started", "starts_at": starts.isoformat(), "ends_at": ends}


def test_contract_starting_exactly_now_is_allowed() -> None:
    assert isinstance(decide(_contract(BASE, starts_at=NOW), NOW), Allowed)


@pytest.mark.parametrize("ends_at", [NOW, NOW - TICK])
def test_contract_ended(ends_at: datetime) -> None:
    refusal = _check(_contract(BASE, ends_at=ends_at), Link.CONTRACT, RefusalCode.LESSOR_CONTRACT_INACTIVE)
    assert refusal.extra == {"reason": "ended", "starts_at": (NOW - DAY).isoformat(), "ends_at": ends_at.isoformat()}
    assert isinstance(decide(_contract(BASE, ends_at=ends_at), ends_at - TICK), Allowed)


def test_plan_excludes_kind_and_no_plan_allows() -> None:
    refusal = _check(BREAKERS[Link.PLAN](BASE), Link.PLAN, RefusalCode.PLAN_EXCLUDES_DEVICE_KIND)
    assert refusal.extra == {"kind": "light"}
    assert isinstance(decide(replace(BASE, plan=None), NOW), Allowed)
    lock_only = replace(BASE, plan=Plan(device_kinds=frozenset({DeviceKind.LOCK})))
    lock = replace(lock_only, command=_command(Component.LOCK, {"action": "lock"}))
    assert isinstance(decide(lock, NOW), Allowed)
    empty = replace(BASE, plan=Plan(device_kinds=frozenset()))
    assert _check(empty, Link.PLAN, RefusalCode.PLAN_EXCLUDES_DEVICE_KIND).extra == {"kind": "light"}


@pytest.mark.parametrize("versions", [(), (AgreementVersion("v1", NOW + TICK),)])
def test_agreement_unavailable(versions: tuple[AgreementVersion, ...]) -> None:
    refusal = _check(_agreement(BASE, versions, "v1"), Link.AGREEMENT, RefusalCode.AGREEMENT_UNAVAILABLE)
    assert refusal.extra == {}


def test_agreement_not_accepted() -> None:
    refusal = _check(_agreement(BASE, (V1,)), Link.AGREEMENT, RefusalCode.AGREEMENT_NOT_ACCEPTED)
    assert refusal.extra == {"version": "v1"}
    assert "new version" not in refusal.detail
    assert "18" in refusal.detail


def test_new_agreement_version_needs_acceptance() -> None:
    request = _agreement(BASE, (AgreementVersion("v2", NOW), V1), "v1")
    refusal = _check(request, Link.AGREEMENT, RefusalCode.AGREEMENT_NOT_ACCEPTED)
    assert refusal.extra == {"version": "v2"}
    assert "new version" in refusal.detail
    assert isinstance(decide(request, NOW - TICK), Allowed)  # v1 still current a moment before


def test_accepting_a_future_version_does_not_cover_the_current_one() -> None:
    v2_at = NOW + timedelta(hours=1)
    request = _agreement(BASE, (V1, AgreementVersion("v2", v2_at)), "v2")
    assert _check(request, Link.AGREEMENT, RefusalCode.AGREEMENT_NOT_ACCEPTED).extra == {"version": "v1"}
    assert isinstance(decide(request, v2_at), Allowed)


# --- precedence -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("first", range(len(ORDER)))
def test_first_failing_link_in_order_is_reported(first: int) -> None:
    """Links ORDER[first:] all fail: ORDER[first] is reported, with the same refusal as when it fails alone."""
    refusal = _refused(decide(_breaking(set(ORDER[first:])), NOW))
    assert refusal.link is ORDER[first]
    assert refusal == decide(BREAKERS[ORDER[first]](BASE), NOW)


@pytest.mark.parametrize(("a", "b"), list(itertools.combinations(ORDER, 2)))
def test_each_pair_reports_the_earlier_link(a: Link, b: Link) -> None:
    assert _refused(decide(_breaking({a, b}), NOW)).link is a


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({link: st.booleans() for link in ORDER}))
def test_decide_reports_first_failing_link(flags: dict[Link, bool]) -> None:
    failing = {link for link, fails in flags.items() if fails}
    decision = decide(_breaking(failing), NOW)
    if not failing:
        _allowed(decision)
        return
    first = next(link for link in ORDER if link in failing)
    assert _refused(decision).link is first
    assert decision == decide(BREAKERS[first](BASE), NOW)


# --- service_refusal ------------------------------------------------------------------------------------------------


def _service(r: ControlRequest) -> Refusal | None:
    return service_refusal(r.account, r.session, r.app, r.contract, r.agreement, NOW)


@pytest.mark.parametrize("link", [None, Link.ACCOUNT, Link.SESSION, Link.APP, Link.CONTRACT, Link.AGREEMENT])
def test_service_refusal_agrees_with_decide(link: Link | None) -> None:
    request = BASE if link is None else BREAKERS[link](BASE)
    decision = decide(request, NOW)
    assert _service(request) == (None if isinstance(decision, Allowed) else decision)
    assert (_service(request) is None) == (link is None)


def test_service_refusal_ignores_device_and_plan() -> None:
    assert _service(_breaking({Link.DEVICE, Link.PLAN})) is None
    assert _service(_breaking({Link.DEVICE, Link.PLAN, Link.CONTRACT})) == decide(BREAKERS[Link.CONTRACT](BASE), NOW)


# --- AppVersion -----------------------------------------------------------------------------------------------------


def test_app_version_ordering() -> None:
    parse = AppVersion.parse
    assert parse("2.10") > parse("2.9")
    assert parse("2.4") == parse("2.4.0") == parse("2.4.0.0")
    assert not parse("2.4") < parse("2.4.0.0")
    assert parse("3") > parse("2.99.99")
    assert parse("2.4.0.1") > parse("2.4")
    assert parse("1.2.3.4").parts == (1, 2, 3, 4)
    assert parse("007").parts == (7, 0, 0, 0)
    assert parse("999999.0").parts == (999999, 0, 0, 0)


@pytest.mark.parametrize("text", ["", "2.x", "v2", "1.2.3.4.5", "1..2", " 2", "2 ", "2.", ".2", "-1", "1234567", "2,4"])
def test_app_version_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="app version"):
        AppVersion.parse(text)


def test_app_version_rejects_trailing_newline_and_non_ascii_digits() -> None:
    for text in ("2.4\n", "\u0662.\u0664"):  # a newline after the version; Arabic-Indic digits
        with pytest.raises(ValueError, match="app version"):
            AppVersion.parse(text)


@pytest.mark.parametrize("text", ["2", "2.4", "2.4.0", "02.04", "1.2.3.4"])
def test_app_version_str_keeps_text(text: str) -> None:
    assert str(AppVersion.parse(text)) == text


# --- AgreementState.current and the opt-out deadline ----------------------------------------------------------------


def test_agreement_current_ignores_tuple_order() -> None:
    old, mid, future = V1, AgreementVersion("v2", NOW - TICK), AgreementVersion("v3", NOW + DAY)
    for versions in itertools.permutations((old, mid, future)):
        state = AgreementState(versions, AgreementRecord())
        assert state.current(NOW) == mid
        assert state.current(NOW + DAY) == future  # effective at that very moment
        assert state.current(NOW - DAY) == old
        assert state.current(NOW - DAY - TICK) is None


def test_opt_out_deadline() -> None:
    assert timedelta(days=30) == OPT_OUT_WINDOW
    assert opt_out_deadline(AgreementRecord()) is None
    first = NOW - 3 * DAY
    record = AgreementRecord({"v1": first, "v2": NOW}, first_accepted_at=first, opted_out_at=None)
    assert opt_out_deadline(record) == first + OPT_OUT_WINDOW == datetime(2026, 5, 28, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("after", "closed"),
    [(OPT_OUT_WINDOW - TICK, False), (OPT_OUT_WINDOW, False), (OPT_OUT_WINDOW + TICK, True), (31 * DAY, True)],
)
def test_opt_out_window_closes_one_microsecond_after_the_deadline(after: timedelta, closed: bool) -> None:
    first = NOW - 40 * DAY
    record = AgreementRecord({"v1": first}, first_accepted_at=first)
    refusal = opt_out_refusal(record, first + after)
    if not closed:
        assert refusal is None
        return
    assert refusal is not None
    assert (refusal.link, refusal.code) == (Link.AGREEMENT, RefusalCode.OPT_OUT_WINDOW_CLOSED)
    assert refusal.extra == {"deadline": (first + OPT_OUT_WINDOW).isoformat()}


def test_opt_out_before_any_acceptance_has_no_window_to_close() -> None:
    assert opt_out_refusal(AgreementRecord(), NOW) is None  # the caller answers agreement_not_accepted


# --- plan limits on binding and move-in -----------------------------------------------------------------------------


def test_binding_within_the_plan() -> None:
    plan = Plan(device_kinds=frozenset({DeviceKind.LIGHT, DeviceKind.LOCK}), devices_per_unit=2)
    assert binding_refusal(plan, DeviceKind.LIGHT, 1, rebinding=False) is None
    assert binding_refusal(plan, DeviceKind.LIGHT, 2, rebinding=True) is None  # already one of the two
    assert binding_refusal(plan, None, 0, rebinding=False) is None  # no entities known: nothing to judge
    full = binding_refusal(plan, DeviceKind.LIGHT, 2, rebinding=False)
    assert full is not None and (full.code, full.extra) == (RefusalCode.PLAN_LIMIT_DEVICES_PER_UNIT, {"limit": 2})
    kind = binding_refusal(plan, DeviceKind.THERMOSTAT, 0, rebinding=False)
    assert kind is not None and kind.code is RefusalCode.PLAN_LIMIT_DEVICE_KINDS
    assert kind.extra == {"kind": "thermostat", "allowed": ["light", "lock"]}
    # the kind is judged first: a device the plan does not cover is refused even by a full unit
    assert binding_refusal(plan, DeviceKind.THERMOSTAT, 2, rebinding=False) == kind


def test_admission_within_the_plan() -> None:
    plan = Plan(accounts_per_unit=2)
    assert admission_refusal(plan, 1) is None
    refusal = admission_refusal(plan, 2)
    assert refusal is not None and refusal.link is Link.PLAN
    assert (refusal.code, refusal.extra) == (RefusalCode.PLAN_LIMIT_ACCOUNTS_PER_UNIT, {"limit": 2})
