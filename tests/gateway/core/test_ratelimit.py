"""The per-device token bucket that keeps a flooding device from starving the others."""

from __future__ import annotations

import pytest

from gateway.core.ratelimit import RateLimiter


class Time:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_rate_holds_per_device() -> None:
    time = Time()
    limiter = RateLimiter(rate=10, burst=5, now=time)
    assert [limiter.allow("flood") for _ in range(7)] == [True] * 5 + [False] * 2
    assert limiter.allow("quiet"), "another device has its own bucket"
    time.now += 0.1  # one token back at 10/s
    assert limiter.allow("flood") and not limiter.allow("flood")
    time.now += 60  # refills to the burst, never beyond
    assert sum(limiter.allow("flood") for _ in range(20)) == 5


def test_drops_are_reported_at_most_every_period() -> None:
    time = Time()
    limiter = RateLimiter(rate=1, burst=1, now=time)
    assert limiter.report_due("flood", 10) == 0  # nothing dropped yet
    for _ in range(4):
        limiter.allow("flood")
    assert limiter.report_due("flood", 10) == 3
    limiter.allow("flood")
    assert limiter.report_due("flood", 10) == 0  # reported less than 10 s ago
    time.now += 10
    limiter.allow("flood")
    assert limiter.report_due("flood", 10) == 1  # the one dropped at once; the refill let the next one through


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_nonsense_settings_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate must be positive"):
        RateLimiter(rate, burst)
