"""Capped exponential backoff: the one pace of every retry loop in the gateway (broker link, report outbox,
storage writers)."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff, jittered between half and all of the capped delay."""

    initial: float = 0.1
    factor: float = 2.0
    cap: float = 5.0

    def ceiling(self, attempt: int) -> float:
        """The capped delay before attempt number ``attempt`` (0-based), without jitter."""
        return min(self.cap, self.initial * self.factor ** min(attempt, 32))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before reconnect attempt number ``attempt`` (0-based)."""
        ceiling = self.ceiling(attempt)
        return (rng or random).uniform(ceiling / 2, ceiling)
