"""Capped exponential reconnect backoff with jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before reconnect attempt ``n``: ``initial * factor**n`` capped at ``cap``, jittered to half..full."""

    initial: float = 0.1
    factor: float = 2.0
    cap: float = 3.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before reconnect attempt number ``attempt`` (0-based)."""
        ceiling = min(self.cap, self.initial * self.factor ** min(max(attempt, 0), 32))
        return (rng or random).uniform(ceiling / 2, ceiling)
