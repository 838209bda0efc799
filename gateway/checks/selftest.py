"""The self-test of one unit: uplink, broker round trip, and each device's state round trip; actuates nothing."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from types import TracebackType
from typing import Any, Protocol, Self

from devices import QueryMethod, StateQuery, state_queries

from ..building import BuildingService
from ..clock import Clock
from ..connectivity import BrokerEcho, UplinkMonitor
from ..connectivity.freshness import fresh_report
from ..core.entity import Entity
from ..core.registry import Registry
from ..errors import BrokerUnavailable
from ..policy import main_kind
from ..storage import Database
from ..tasks import TaskOwner
from .models import CheckStatus, DeviceCheck, SelfTestResult, StepCheck, Trigger
from .store import insert_self_test

__all__ = ["Publisher", "ResultListener", "SelfTestRunner"]

log = logging.getLogger(__name__)

ResultListener = Callable[[SelfTestResult], None]
"""Told about every stored self-test result."""


class Publisher(Protocol):
    """Where the state requests go out (the gateway's MQTT link)."""

    async def publish(self, topic: str, payload: bytes, *, qos: int = ..., retain: bool = ...) -> None:
        """Publish; BrokerUnavailable when the broker cannot be reached."""
        ...


class SelfTestRunner:
    """Runs self-tests, one at a time per unit (a second request joins the running one), and stores them."""

    def __init__(
        self,
        *,
        registry: Registry,
        publisher: Publisher,
        echo: BrokerEcho,
        uplink: UplinkMonitor,
        db: Database,
        clock: Clock,
        building: BuildingService,
        report_interval: timedelta,
        device_timeout: float = 5.0,
    ) -> None:
        self.registry = registry
        self.publisher = publisher
        self.echo = echo
        self.uplink = uplink
        self.db = db
        self.clock = clock
        self.building = building
        self.device_timeout = device_timeout
        # A device that cannot be asked must have reported within this (or its own expire_after).
        self.report_interval = report_interval
        self._running: dict[str, asyncio.Future[SelfTestResult]] = {}
        self._listeners: list[ResultListener] = []
        self._tasks = TaskOwner()

    def on_result(self, listener: ResultListener) -> None:
        """Call ``listener`` with every stored result."""
        self._listeners.append(listener)

    def running(self, unit_id: str) -> bool:
        """Whether a test of the unit is under way."""
        return unit_id in self._running

    async def __aenter__(self) -> Self:
        await self._tasks.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._tasks.__aexit__(exc_type, exc, tb)  # tests under way are cancelled

    async def run(self, unit_id: str, trigger: Trigger, actor_id: str | None) -> SelfTestResult:
        """Test the unit (or join the test under way) and return the stored result."""
        outcome = self._running.get(unit_id)
        if outcome is None:
            outcome = asyncio.get_running_loop().create_future()
            outcome.add_done_callback(_retrieved)
            self._running[unit_id] = outcome
            self._tasks.start(self._settle(outcome, unit_id, trigger, actor_id), f"self-test[{unit_id}]")
        # Shielded: a client that hangs up does not cut the test short; it is stored all the same.
        return await asyncio.shield(outcome)

    async def check_device(self, device_id: str) -> DeviceCheck:
        """One device's check, as a unit's self-test makes it (the broker's round trip first), recorded nowhere: the
        probe a firmware rollout runs on each device it updated."""
        return await self._device(device_id, await self._broker())

    async def _settle(
        self, outcome: asyncio.Future[SelfTestResult], unit_id: str, trigger: Trigger, actor_id: str | None
    ) -> None:
        # The test's error goes to whoever waits for it; it must not tear down the runner and every other test.
        try:
            outcome.set_result(await self._test(unit_id, trigger, actor_id))
        except Exception as exc:  # noqa: BLE001 - handed to the caller, who sees it raised
            outcome.set_exception(exc)
        finally:
            self._running.pop(unit_id, None)
            if not outcome.done():
                outcome.cancel()  # cancelled with the runner

    # --- the test -------------------------------------------------------------------------------

    async def _test(self, unit_id: str, trigger: Trigger, actor_id: str | None) -> SelfTestResult:
        unit = self.building.unit(unit_id)
        started_at = self.clock.now()
        uplink = await self._uplink()
        broker = await self._broker()
        device_ids = sorted(self.building.devices_of_unit(unit_id))
        devices = await asyncio.gather(*(self._device(d, broker) for d in device_ids))
        statuses = [uplink.status, broker.status, *(d.status for d in devices)]
        passed = CheckStatus.FAILED not in statuses
        result = SelfTestResult(
            id=f"st_{secrets.token_hex(8)}",
            unit_id=unit_id,
            property_id=unit.property_id,
            trigger=trigger,
            actor_id=actor_id,
            started_at=started_at,
            finished_at=self.clock.now(),
            passed=passed,
            uplink=uplink,
            broker=broker,
            devices=tuple(devices),
        )
        await self.db.run(partial(insert_self_test, result=result))
        log.info(
            "self-test %s",
            "passed" if passed else "failed",
            extra={"unit": unit_id, "trigger": str(trigger), "failures": result.failures()},
        )
        for listener in self._listeners:
            listener(result)
        return result

    async def _uplink(self) -> StepCheck:
        monitor = self.uplink
        if not monitor.configured:
            return StepCheck(status=CheckStatus.SKIPPED, reason="not_configured", detail="no uplink target is set")
        probe = await monitor.check()
        assert probe is not None
        if probe.ok:
            return StepCheck(status=CheckStatus.PASSED, latency_ms=probe.latency_ms)
        return StepCheck(
            status=CheckStatus.FAILED, latency_ms=probe.latency_ms, reason="uplink_unreachable", detail=probe.error
        )

    async def _broker(self) -> StepCheck:
        try:
            latency = await self.echo.round_trip(self.device_timeout)
        except BrokerUnavailable as exc:
            return StepCheck(status=CheckStatus.FAILED, reason="broker_unavailable", detail=str(exc)[:300])
        return StepCheck(status=CheckStatus.PASSED, latency_ms=latency)

    async def _device(self, device_id: str, broker: StepCheck) -> DeviceCheck:
        entities = self.registry.entities_of_device(device_id)
        kind = main_kind({e.kind for e in entities})
        name = entities[0].config.device.name if entities and entities[0].config.device else None
        base: dict[str, Any] = {"device_id": device_id, "name": name or device_id, "kind": kind and str(kind)}
        if not entities:
            return DeviceCheck(**base, status=CheckStatus.FAILED, reason="not_discovered", detail="no entities known")
        if broker.status is CheckStatus.FAILED:
            return DeviceCheck(**base, status=CheckStatus.FAILED, reason="broker_unavailable", detail=broker.detail)
        if any(e.available is False for e in entities):
            detail = "the device's last will or availability topic says it is offline"
            return DeviceCheck(**base, status=CheckStatus.FAILED, reason="device_offline", detail=detail)
        if any(e.held for e in entities):
            # Nothing is sent to a device whose wiring changed since it was bound, state requests included.
            detail = "its wiring changed since it was bound; staff must approve or reject the change"
            return DeviceCheck(**base, status=CheckStatus.FAILED, reason="device_held", detail=detail)
        reporting = [e for e in entities if e.config.state_topics()]
        if not reporting:
            detail = "the device reports no state, so nothing can show that it works"
            return DeviceCheck(**base, status=CheckStatus.SKIPPED, reason="not_testable", detail=detail)
        # Never a command topic of any device: a request that landed on one could actuate it.
        forbidden = {t for e in self.registry.entities() for t in e.config.command_topics()}
        queries = state_queries([e.config for e in reporting], forbidden)
        base["firmware"] = str(queries[0].firmware)
        asked = {e.id: q for e, q in zip(reporting, queries, strict=True) if q.method is QueryMethod.ASKED}
        if asked:
            return await self._ask(base, reporting, asked)
        reason, detail = fresh_report(reporting, self.clock.now(), self.report_interval)
        why = ", ".join(sorted({q.reason for q in queries if q.reason}))
        return DeviceCheck(
            **base,
            status=CheckStatus.PASSED if reason is None else CheckStatus.FAILED,
            method=QueryMethod.FRESH_REPORT,
            reason=reason,
            detail=f"not asked ({why}): {detail}",
        )

    async def _ask(self, base: dict[str, Any], reporting: list[Entity], asked: dict[str, StateQuery]) -> DeviceCheck:
        """Send the state requests and wait for every asked entity to report."""
        base = {**base, "method": QueryMethod.ASKED}
        requests = {p.topic: p for q in asked.values() for p in q.requests}
        # Any state report answers: an invalid one is refused before it reaches an expectation.
        answers = self.registry.expect(asked, _answered)
        asked_at = self.clock.now()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.device_timeout):
                for topic, request in sorted(requests.items()):
                    await self.publisher.publish(topic, request.payload, qos=request.qos)
                await answers.wait()
        except TimeoutError:
            missing = ", ".join(sorted(answers.pending))
            errors = [(e.id, e.state_error) for e in reporting if e.id in answers.pending and e.state_error]
            refused = [(entity_id, error.code) for entity_id, error in errors if error.at >= asked_at]
            if refused:
                detail = f"its answer was refused: {refused[0][1]} from {refused[0][0]}"
                return DeviceCheck(**base, status=CheckStatus.FAILED, reason="invalid_report", detail=detail)
            detail = f"no state report within {self.device_timeout:g} s from {missing}"
            return DeviceCheck(**base, status=CheckStatus.FAILED, reason="no_answer", detail=detail)
        except BrokerUnavailable as exc:
            return DeviceCheck(**base, status=CheckStatus.FAILED, reason="broker_unavailable", detail=str(exc)[:300])
        finally:
            answers.close()
        latency = round((time.perf_counter() - started) * 1000, 3)
        detail = "answered " + ", ".join(sorted(requests))
        return DeviceCheck(**base, status=CheckStatus.PASSED, latency_ms=latency, detail=detail)


def _answered(entity: Entity) -> bool:
    """Whether a newly accepted report of ``entity`` answers a state request: always."""
    return True


def _retrieved(outcome: asyncio.Future[SelfTestResult]) -> None:
    # Mark an error as seen even when every caller hung up, so asyncio does not report it as lost.
    if not outcome.cancelled():
        outcome.exception()
