"""Waiting for a matching report: verdicts from the registry's accepted reports, through the registry's own input."""

from __future__ import annotations

import asyncio

import pytest
from fwsim import BrokerAddress, UnitSim

from gateway.clock import ManualClock
from gateway.core.entity import Entity
from gateway.core.registry import Registry
from gateway.mqtt.transport import InboundMessage

LOCK, BATTERY = "lock/u1-lock/lock", "sensor/u1-lock/battery"


@pytest.fixture
def registry() -> Registry:
    """A registry that knows the lock of a simulated unit (its lock entity and its battery), online."""
    lock = UnitSim(BrokerAddress("127.0.0.1"), unit="u1", discovery_prefix="ha", base_topic="sim").devices["lock"]
    registry = Registry("ha", ManualClock())
    for publish in (*lock.discovery_publishes(), lock.availability_publish(True)):
        registry.handle(InboundMessage(publish.topic, publish.payload, True, 0))
    return registry


def send(registry: Registry, topic: str, payload: bytes) -> None:
    registry.handle(InboundMessage(topic, payload, False, 0))


def state_name(entity: Entity) -> str | None:
    return None if entity.state is None else entity.state.model_dump_json()


async def test_done_once_every_entity_has_a_verdict_and_a_timeout_does_not_end_it(registry: Registry) -> None:
    expected = registry.expect([LOCK, BATTERY], state_name)
    send(registry, "sim/u1/lock/state", b"LOCKED")
    assert expected.pending == {BATTERY}
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await expected.wait()
    send(registry, "sim/u1/lock/state", b"not a lock state")  # refused: answers nothing
    send(registry, "sim/u1/lock/battery", b"87")
    verdicts = await expected.wait()
    assert set(verdicts) == {LOCK, BATTERY} and "87" in verdicts[BATTERY]
    expected.close()


async def test_the_first_matching_report_is_the_verdict(registry: Registry) -> None:
    def unlocked(entity: Entity) -> str | None:
        return "unlocked" if entity.state is not None and "unlocked" in entity.state.model_dump_json().lower() else None

    with registry.expect([LOCK], unlocked, offline="offline") as expected:
        send(registry, "sim/u1/lock/state", b"LOCKED")  # not the answer awaited
        assert expected.pending == {LOCK}
        send(registry, "sim/u1/lock/state", b"UNLOCKED")
        send(registry, "sim/u1/lock/availability", b"offline")  # too late: the verdict stands
        assert await expected.wait() == {LOCK: "unlocked"}


async def test_going_offline_answers_only_when_it_is_a_verdict(registry: Registry) -> None:
    with registry.expect([LOCK], state_name) as ignoring, registry.expect([LOCK], state_name, offline="x") as failing:
        send(registry, "sim/u1/lock/availability", b"offline")
        assert ignoring.pending == {LOCK}
        assert await failing.wait() == {LOCK: "x"}


async def test_a_closed_expectation_collects_nothing(registry: Registry) -> None:
    expected = registry.expect([LOCK], state_name)
    expected.close()
    expected.close()  # idempotent
    send(registry, "sim/u1/lock/state", b"LOCKED")
    assert expected.pending == {LOCK} and not expected.verdicts
