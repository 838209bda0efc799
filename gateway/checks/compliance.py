"""When a unit's test is due (rule 5): a pure evaluation of its tests and the outage events that touched it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..connectivity import TEST_EVENTS, Outage, OutageKind, add_months
from .models import Compliance, ComplianceStatus, SelfTestResult

__all__ = ["ComplianceRules", "Requirement", "evaluate", "requirements"]

_EVENT_WORDS = {
    OutageKind.POWER: "power outage (or crash) of the gateway",
    OutageKind.BROADBAND: "broadband outage",
    OutageKind.STORM: "storm",
}


@dataclass(frozen=True, slots=True)
class ComplianceRules:
    """The testing rule's numbers."""

    month_grace: timedelta = timedelta(days=7)  # from the monthly due date to overdue
    event_grace: timedelta = timedelta(days=1)  # from the end of a power, broadband or storm event to overdue
    idle_for: timedelta = timedelta(minutes=10)  # no command for this long: an automatic test may run
    auto_retry: timedelta = timedelta(hours=6)  # at most one automatic test per unit this often
    report_outage_after: timedelta = timedelta(minutes=15)  # a gateway-wide outage this long is reported


@dataclass(frozen=True, slots=True)
class Requirement:
    """A test the unit owes: from when, by when, and why."""

    due_at: datetime
    deadline: datetime
    reason: str
    detail: str


def requirements(
    *,
    unit_created_at: datetime,
    last_passed_at: datetime | None,
    events: Iterable[Outage],
    rules: ComplianceRules,
) -> list[Requirement]:
    """Every test the unit owes, soonest deadline first; the monthly one is there even when not yet due."""
    owed: list[Requirement] = []
    if last_passed_at is None:
        owed.append(
            Requirement(
                unit_created_at,
                unit_created_at + rules.month_grace,
                "never_tested",
                "this unit has not passed a self-test yet",
            )
        )
    else:
        due = add_months(last_passed_at)
        owed.append(Requirement(due, due + rules.month_grace, "monthly", "a month has passed since the last test"))
    for event in events:
        if event.kind not in TEST_EVENTS:
            continue
        # An event still going on asks for a test from its start; once over, from its end (test again after).
        point = event.ended_at or event.started_at
        if point <= unit_created_at or (last_passed_at is not None and last_passed_at >= point):
            continue
        words = _EVENT_WORDS[event.kind]
        state = "ended" if event.ended_at else "began"
        owed.append(
            Requirement(point, point + rules.event_grace, f"after_{event.kind}", f"a {words} {state} at {point}")
        )
    return sorted(owed, key=lambda r: (r.deadline, r.due_at))


def evaluate(
    unit_id: str,
    now: datetime,
    *,
    unit_created_at: datetime,
    last_passed_at: datetime | None,
    last_test: SelfTestResult | None,
    events: Iterable[Outage],
    rules: ComplianceRules,
) -> Compliance:
    """The unit's status at ``now``: failing, overdue, due or ok, with the reason and the deadline."""
    owed = requirements(unit_created_at=unit_created_at, last_passed_at=last_passed_at, events=events, rules=rules)
    active = [r for r in owed if r.due_at <= now]
    upcoming = min(owed, key=lambda r: r.due_at)
    current = active[0] if active else None
    shown = current or upcoming
    overdue_since = shown.deadline if current is not None and now >= current.deadline else None
    failing = (
        last_test is not None
        and not last_test.passed
        and (last_passed_at is None or last_test.finished_at > last_passed_at)
    )
    if failing:
        assert last_test is not None
        status, reason = ComplianceStatus.FAILING, "self_test_failed"
        detail = "the latest self-test failed: " + "; ".join(last_test.failures())
    elif current is None:
        status, reason, detail = ComplianceStatus.OK, "tested", "the latest test passed; the next is due by the date"
    elif overdue_since is not None:
        status, reason, detail = ComplianceStatus.OVERDUE, current.reason, current.detail
    else:
        status, reason, detail = ComplianceStatus.DUE, current.reason, current.detail
    return Compliance(
        unit_id=unit_id,
        status=status,
        reason=reason,
        detail=detail,
        due_at=shown.due_at,
        deadline=shown.deadline,
        overdue_since=overdue_since,
        last_passed_at=last_passed_at,
        last_test=last_test,
    )
