"""Staging rules: a small canary first, bounded stages, never every lock of a building at once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.firmware import RolloutRules, stages


def test_a_building_of_forty_locks_and_twenty_lights() -> None:
    devices = [(f"lock{i}", "lock") for i in range(40)] + [(f"light{i}", "light") for i in range(20)]
    planned = stages(devices, RolloutRules(canary=1, stage_size=5, lock_share=0.25))
    assert planned[0] == ["light0"]  # the canary is not a lock while anything else is left
    assert sorted(d for s in planned for d in s) == sorted(d for d, _ in devices)
    assert max(len(s) for s in planned) == 5
    assert max(sum(d.startswith("lock") for d in s) for s in planned) == 5  # a quarter of 40 is 10; capped by size


def test_two_locks_are_never_in_the_same_stage_and_a_lone_lock_goes_first() -> None:
    assert stages([("l1", "lock"), ("l2", "lock")], RolloutRules()) == [["l1"], ["l2"]]
    assert stages([("l1", "lock")], RolloutRules()) == [["l1"]]
    assert stages([], RolloutRules()) == []
    # Even a share of all of them keeps one lock apart.
    planned = stages([("x", "light"), ("l1", "lock"), ("l2", "lock")], RolloutRules(lock_share=1.0))
    assert planned == [["x"], ["l1"], ["l2"]]


@given(
    locks=st.integers(min_value=0, max_value=60),
    others=st.integers(min_value=0, max_value=60),
    size=st.integers(min_value=1, max_value=10),
    share=st.floats(min_value=0.0, max_value=1.0),
    canary=st.integers(min_value=0, max_value=3),
)
def test_every_device_once_in_bounded_stages_and_locks_spread(
    locks: int, others: int, size: int, share: float, canary: int
) -> None:
    devices = [(f"lock{i}", "lock") for i in range(locks)] + [(f"dev{i}", "light") for i in range(others)]
    planned = stages(devices, RolloutRules(canary=canary, stage_size=size, lock_share=share))
    flat = [d for s in planned for d in s]
    assert sorted(flat) == sorted(d for d, _ in devices)  # each exactly once
    assert all(planned) and all(len(s) <= max(size, canary, 1) for s in planned)
    if planned:
        assert len(planned[0]) <= max(1, canary)
    if locks >= 2:
        assert all(sum(d.startswith("lock") for d in s) < locks for s in planned)  # never every lock at once
