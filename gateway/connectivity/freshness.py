"""What a device's reports say about whether it is up: its expected report interval, why an entity counts as down,
and whether a device that cannot be asked for its state shows by its reports that it works."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from ..core.entity import Entity

__all__ = ["down_since", "expected_interval", "fresh_report"]


def expected_interval(entity: Entity, default: timedelta) -> timedelta:
    """How often the entity should report at least: its own ``expire_after``, else ``default``."""
    expire_after = entity.config.expire_after
    return timedelta(seconds=expire_after) if expire_after else default


def down_since(entity: Entity, now: datetime, default: timedelta) -> tuple[str, datetime] | None:
    """Why and since when the entity counts as down for connectivity and uptime, or None while it is up.

    ``offline`` (last will or availability), ``invalid_report`` (from the refused report until a valid one),
    ``never_reported`` (from discovery plus its interval), ``expired`` (past its ``expire_after``), or ``silent``
    (no availability topic, and nothing heard for ``default``).
    """
    if entity.available is False:
        return "offline", min(entity.availability_at or now, now)
    if not entity.config.state_topics():
        return None  # reports no state (an optimistic lock): only its availability can say it is down
    if entity.state_error is not None:
        return "invalid_report", min(entity.state_error.at, now)
    interval = expected_interval(entity, default)
    if entity.state_at is None:
        since = entity.discovered_at + interval
        return ("never_reported", since) if now > since else None
    if entity.config.expire_after and now - entity.state_at > interval:
        return "expired", entity.state_at + interval
    last_seen = entity.last_seen or entity.discovered_at
    if not entity.config.availability_entries() and now - last_seen > default:
        return "silent", last_seen + default
    return None


def fresh_report(entities: Sequence[Entity], now: datetime, default: timedelta) -> tuple[str | None, str]:
    """Whether a device that cannot be asked shows by its reports that it works: ``(None, how recent)``, or
    ``(reason, why not)`` with reason ``invalid_report``, ``stale_report`` or ``never_reported``.

    Its newest valid report must lie within the interval of the entity that made it (a door contact reports only
    on change, its battery or link quality more often); an entity past its own ``expire_after`` breaks the
    device's promise whatever the others say. Only the state of ``entities`` counts, not their availability.
    """
    for entity in entities:
        if entity.state_error is not None:
            return "invalid_report", f"the latest report of {entity.name} was refused ({entity.state_error.code})"
    for entity in entities:
        expire_after = entity.config.expire_after
        if expire_after and entity.state_at is not None and now - entity.state_at > timedelta(seconds=expire_after):
            return "stale_report", f"{entity.name} has said nothing within its expire_after of {expire_after} s"
    reported = [(e.state_at, e) for e in entities if e.state_at is not None]
    if not reported:
        return "never_reported", "no valid report since it was discovered"
    fresh = [(at, e) for at, e in reported if now - at <= expected_interval(e, default)]
    at, entity = max(fresh or reported, key=lambda pair: pair[0])
    age, interval = _seconds(now - at), _seconds(expected_interval(entity, default))
    if not fresh:
        return "stale_report", f"its latest valid report is {age} old, beyond the expected {interval}"
    return None, f"its latest valid report is {age} old, within the expected {interval}"


def _seconds(span: timedelta) -> str:
    return f"{max(span.total_seconds(), 0.0):g} s"
