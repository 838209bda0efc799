"""Staging: a small first stage (the canary), then bounded stages, a building's locks spread across them."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .models import RolloutRules

__all__ = ["LOCK", "stages"]

LOCK = "lock"


def stages(devices: Sequence[tuple[str, str | None]], rules: RolloutRules) -> list[list[str]]:
    """Device ids (given with their main kind) in stages: the canary first (a device other than a lock when there
    is one), then stages of at most ``stage_size``, none with more than ``lock_share`` of the locks (at least one),
    so that never every lock of a building updates at once."""
    locks = [d for d, kind in devices if kind == LOCK]
    others = [d for d, kind in devices if kind != LOCK]
    lock_cap = max(1, math.floor(len(locks) * rules.lock_share))
    size = max(1, rules.stage_size)
    lock_cap = min(lock_cap, size, max(1, len(locks) - 1))  # whatever the share, never every lock together
    canary = [others.pop(0) for _ in range(min(max(1, rules.canary), len(others)))]
    if not canary and locks:
        canary = [locks.pop(0)]  # a building of locks only: one of them first
    out = [canary] if canary else []
    while others or locks:
        stage = [locks.pop(0) for _ in range(min(lock_cap, len(locks)))]
        stage += [others.pop(0) for _ in range(min(size - len(stage), len(others)))]
        out.append(stage)
    return out
