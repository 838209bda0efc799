"""Counters of what the gateway received, refused and did (exposed by status commands and the API)."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Metrics", "Rejection"]


@dataclass(frozen=True, slots=True)
class Rejection:
    """One refused inbound message: where, why (stable code) and a truncated excerpt."""

    at: datetime
    topic: str
    reason: str
    detail: str


class Metrics:
    """In-process counters; cheap enough for the message hot path."""

    def __init__(self, keep_recent: int = 100) -> None:
        self.received = 0
        self.accepted = Counter[str]()
        self.rejected = Counter[str]()
        self.recent_rejections: deque[Rejection] = deque(maxlen=keep_recent)
        # Resyncs (subscribing again so the broker re-sends what is retained) by why, and what they brought back:
        # "states" and "availability" count changes first learned from a retained copy (missed live).
        self.resyncs = Counter[str]()
        self.recovered = Counter[str]()
        self.last_resync: tuple[datetime, str] | None = None
        # Messages the broker said it dropped (its $SYS counter), split by whether the gateway was behind meanwhile
        # (then they are taken as its own loss, and resynced for).
        self.broker_dropped = Counter[str]()

    def resynced(self, at: datetime, reason: str, kind: str) -> None:
        """Count a resync of ``kind`` (a stable word: gap, drop, reconnect, periodic) and remember the latest."""
        self.resyncs[kind] += 1
        self.last_resync = (at, reason)

    def reject(self, rejection: Rejection) -> None:
        """Count a refusal by its reason code and remember it."""
        self.rejected[rejection.reason] += 1
        self.recent_rejections.append(rejection)

    def snapshot(self) -> dict[str, object]:
        """Plain values for logs and status output."""
        return {
            "received": self.received,
            "accepted": dict(self.accepted),
            "rejected": dict(self.rejected),
            "rejected_total": sum(self.rejected.values()),
            "resyncs": dict(self.resyncs),
            "recovered": dict(self.recovered),
            "broker_dropped": dict(self.broker_dropped),
        }
