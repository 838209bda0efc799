"""Per-device token buckets: a device flooding its topics is throttled without touching any other device."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateLimiter"]


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    dropped: int = 0  # since the last time this bucket was reported
    reported_at: float = float("-inf")


class RateLimiter:
    """``rate`` messages per second per key on average, bursts up to ``burst``; monotonic time, not the wall clock."""

    def __init__(self, rate: float, burst: int, now: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._now = now
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, key: str) -> bool:
        """Take one token for ``key``; False (and counted) when it has none left."""
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        bucket.dropped += 1
        return False

    def report_due(self, key: str, every: float) -> int:
        """Messages of ``key`` dropped since the last report, if ``every`` seconds have passed since it (else 0)."""
        bucket = self._buckets.get(key)
        now = self._now()
        if bucket is None or not bucket.dropped or now - bucket.reported_at < every:
            return 0
        dropped, bucket.dropped, bucket.reported_at = bucket.dropped, 0, now
        return dropped
