"""Outage intervals, calendar months, and downtime arithmetic over intervals."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

__all__ = [
    "GATEWAY_WIDE",
    "TEST_EVENTS",
    "Outage",
    "OutageKind",
    "add_months",
    "downtime",
    "month_window",
]


class OutageKind(StrEnum):
    """What was down."""

    BROADBAND = "broadband"  # the building's internet uplink
    BROKER = "broker"  # the gateway's own MQTT connection
    POWER = "power"  # the gateway itself was away without a clean stop (power cut or crash)
    DEVICE = "device"  # one device offline or silent
    STORM = "storm"  # a weather event the property manager declared


GATEWAY_WIDE = frozenset({OutageKind.BROADBAND, OutageKind.BROKER, OutageKind.POWER})
"""Kinds that touch every unit the gateway serves."""
TEST_EVENTS = frozenset({OutageKind.BROADBAND, OutageKind.POWER, OutageKind.STORM})
"""Events after which the agreement asks for a test at once (rule 5)."""


@dataclass(frozen=True, slots=True)
class Outage:
    """One interval during which something was down; ``ended_at`` is None while it lasts."""

    id: int
    kind: OutageKind
    started_at: datetime
    ended_at: datetime | None
    cause: str
    property_id: str | None = None
    device_id: str | None = None
    detail: str | None = None
    declared_by: str | None = None

    def duration(self, now: datetime) -> timedelta:
        """How long it lasted, or has lasted so far."""
        return (self.ended_at or now) - self.started_at

    def touches_property(self, property_id: str) -> bool:
        """Whether it affected units of that property (gateway-wide kinds affect all)."""
        return self.kind in GATEWAY_WIDE or self.property_id == property_id


def add_months(when: datetime, months: int = 1) -> datetime:
    """The same time ``months`` calendar months later, the day clamped to the month's end (Jan 31 -> Feb 28)."""
    index = when.month - 1 + months
    year, month = when.year + index // 12, index % 12 + 1
    next_month = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=when.tzinfo)
    last_day = (next_month - timedelta(days=1)).day
    return when.replace(year=year, month=month, day=min(when.day, last_day))


def month_window(month: str) -> tuple[datetime, datetime]:
    """``YYYY-MM`` as the UTC interval [first instant, first instant of the next month)."""
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    return start, add_months(start)


def downtime(outages: Iterable[Outage], start: datetime, end: datetime, now: datetime) -> timedelta:
    """The time within [start, end) covered by at least one of ``outages`` (overlaps counted once)."""
    spans = sorted(
        (max(o.started_at, start), min(o.ended_at or now, end))
        for o in outages
        if o.started_at < end and (o.ended_at or now) > start
    )
    total = timedelta()
    current_start: datetime | None = None
    current_end = start
    for span_start, span_end in spans:
        if span_end <= span_start:
            continue
        if current_start is None or span_start > current_end:
            if current_start is not None:
                total += current_end - current_start
            current_start, current_end = span_start, span_end
        else:
            current_end = max(current_end, span_end)
    if current_start is not None:
        total += current_end - current_start
    return total
