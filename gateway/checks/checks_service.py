"""Self-tests, compliance, reminders, storms, uptime and failure reports, composed; ``async with`` runs them."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from types import TracebackType
from typing import Any, Protocol, Self

from ..accounts import Principal
from ..audit import AuditLog
from ..backoff import Backoff
from ..building import BuildingService, Unit
from ..clock import Clock
from ..config import ChecksSettings
from ..connectivity import GATEWAY_WIDE, TEST_EVENTS, Outage, OutageKind, OutageListener, UplinkMonitor, downtime
from ..connectivity.store import close_outage, get_outage, insert_outage, outages_between
from ..core.registry import Registry
from ..errors import Conflict, GatewayError, InvalidRequest, NotFound, StorageError
from ..policy import PolicyService
from ..policy.decide import contract_lapse
from ..storage import Database
from ..storage.retry import StorageRetry
from ..tasks import TaskOwner
from . import store
from .compliance import ComplianceRules, evaluate
from .models import (
    NOT_AN_ALARM,
    Compliance,
    ComplianceStatus,
    Notification,
    Report,
    ReportKind,
    SelfTestResult,
    Trigger,
)
from .outbox import Outbox
from .selftest import SelfTestRunner
from .upstream import MqttUpstream, Upstream, WebhookUpstream

__all__ = ["ChecksService", "Connectivity", "NotificationListener"]

NotificationListener = Callable[[Notification], None]
"""Told about every notification just queued (the live stream pushes it to the unit's app)."""


class Connectivity(Protocol):
    """What the checks follow of connectivity: outages as they open and close, and the broadband check."""

    @property
    def uplink(self) -> UplinkMonitor:
        """The broadband check."""
        ...

    def on_outage(self, listener: OutageListener) -> None:
        """Call ``listener`` with every outage opened or closed."""
        ...


log = logging.getLogger(__name__)
_REMINDERS = {
    ComplianceStatus.DUE: "Time to test your home automation",
    ComplianceStatus.OVERDUE: "Your home automation test is overdue",
    ComplianceStatus.FAILING: "Your last home automation test failed",
}


class ChecksService:
    """What rule 5 asks of the gateway: it tests, knows when a test is due, reminds, and files the reports."""

    def __init__(
        self,
        settings: ChecksSettings,
        *,
        client_id: str,
        db: Database,
        clock: Clock,
        registry: Registry,
        connectivity: Connectivity,
        runner: SelfTestRunner,
        building: BuildingService,
        policy: PolicyService,
        audit: AuditLog,
        rules: ComplianceRules | None = None,
    ) -> None:
        self.clock = clock
        self.db = db
        self.audit = audit  # staff actions (a manager's test, storms) are recorded here
        self.registry = registry
        self.building = building
        self.policy = policy
        self.rules = rules or ComplianceRules(
            report_outage_after=timedelta(seconds=settings.report_outage_after_seconds)
        )
        self.tick_seconds = settings.tick_seconds
        self.automatic_tests = settings.automatic_tests
        self._auto_for: dict[str, datetime | None] = {}  # unit -> the due date its last automatic test answered
        self.runner = runner
        upstream: Upstream | None = None
        if settings.report_webhook:
            upstream = WebhookUpstream(settings.report_webhook)
        elif settings.report_mqtt:
            upstream = MqttUpstream(settings.report_mqtt, client_id=f"{client_id}-reports")
        self.outbox = Outbox(
            self.db,
            self.clock,
            building,
            policy,
            connectivity.uplink,
            upstream,
            Backoff(settings.retry_initial_seconds, 2.0, settings.retry_cap_seconds),
            client_id,
        )
        self._note_listeners: list[NotificationListener] = []
        self._wake = asyncio.Event()
        self._stack: contextlib.AsyncExitStack | None = None
        self._tasks = TaskOwner()
        connectivity.on_outage(self._on_outage)
        connectivity.uplink.on_transition(lambda _state, _probe, _since: self.outbox.wake())

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(self.runner)
            await stack.enter_async_context(self.outbox)
            await stack.enter_async_context(self._tasks)
            self._tasks.start(self._tick_forever(), "checks-tick")
            self._wake.set()  # one pass at start: what happened while the gateway was away (a power outage)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._stack is not None
        await self._stack.aclose()

    # --- self-tests -----------------------------------------------------------------------------

    async def run_test(self, unit_id: str, trigger: Trigger, actor_id: str | None) -> SelfTestResult:
        """Run (or join) a unit's self-test; its failure report and reminder are filed before this returns."""
        result = await self.runner.run(unit_id, trigger, actor_id)
        await self._after_result(result)
        return result

    async def run_staff_test(self, unit: Unit, *, by: Principal) -> SelfTestResult:
        """A manager tests a unit's home automation now (audited, with whether it passed)."""
        result = await self.run_test(unit.id, Trigger.MANAGER, by.actor)
        await self.audit.record(
            by, "self_test.run", property_id=unit.property_id, unit_id=unit.id, detail={"passed": result.passed}
        )
        return result

    async def tests(self, unit_id: str, limit: int = 20) -> list[SelfTestResult]:
        """The unit's self-tests, newest first."""
        return await self.db.run(partial(store.list_self_tests, unit_id=unit_id, limit=limit))

    # --- compliance -----------------------------------------------------------------------------

    async def compliance(self, unit_id: str) -> Compliance:
        """Where the unit stands with the testing rule now."""
        unit = self.building.unit(unit_id)
        now = self.clock.now()

        def read(db: Any) -> tuple[datetime | None, SelfTestResult | None, list[Outage]]:
            passed = store.last_passed(db, unit_id)
            since = passed or unit.created_at
            events = outages_between(db, since - timedelta(days=366), now + timedelta(seconds=1), kinds=TEST_EVENTS)
            return passed, store.last_self_test(db, unit_id), events

        passed, last, events = await self.db.run(read)
        touching = [e for e in events if e.touches_property(unit.property_id)]
        return evaluate(
            unit_id,
            now,
            unit_created_at=unit.created_at,
            last_passed_at=passed,
            last_test=last,
            events=touching,
            rules=self.rules,
        )

    async def property_report(self, property_id: str) -> list[Compliance]:
        """Every unit of the property, worst first (failing, overdue longest, due, ok)."""
        units = self.building.units(property_id)
        statuses = [await self.compliance(u.id) for u in units]
        order = {ComplianceStatus.FAILING: 0, ComplianceStatus.OVERDUE: 1, ComplianceStatus.DUE: 2}
        far = datetime.max.replace(tzinfo=self.clock.now().tzinfo)
        return sorted(statuses, key=lambda c: (order.get(c.status, 3), c.overdue_since or far, c.unit_id))

    async def tick(self) -> None:
        """One pass: reminders for units owing a test, automatic tests for idle ones, outage reports."""
        now = self.clock.now()
        for prop in self.building.properties():
            if contract_lapse(self.policy.contract(prop.id), now) is not None:
                continue  # no service, no reminders
            for unit in self.building.units(prop.id):
                status = await self.compliance(unit.id)
                await self._remind(status)
                if await self._automatic_test_due(status, now):
                    self._auto_for[unit.id] = status.due_at
                    await self.run_test(unit.id, Trigger.AUTOMATIC, None)
        await self._report_outages(now)

    # --- notifications --------------------------------------------------------------------------

    def on_notification(self, listener: NotificationListener) -> None:
        """Call ``listener`` with every notification once it is queued."""
        self._note_listeners.append(listener)

    async def notify(self, unit_id: str, key: str, kind: str, message: str, data: dict[str, Any]) -> bool:
        """Queue a notification for a unit's residents once per ``key`` (and push it live); whether it is new."""
        note = await self.db.run(
            partial(
                store.insert_notification,
                unit_id=unit_id, key=key, kind=kind, message=message, data=data, at=self.clock.now(),
            )
        )  # fmt: skip
        if note is None:
            return False
        for listener in self._note_listeners:
            listener(note)
        return True

    async def notifications(self, unit_id: str, after: int, since: datetime | None, limit: int) -> list[Notification]:
        """The unit's queued notifications after the id ``after``."""
        return await self.db.run(partial(store.notifications, unit_id=unit_id, after=after, since=since, limit=limit))

    async def property_notifications(self, property_id: str, before: int | None, limit: int) -> list[Notification]:
        """The notifications of every unit of the property, newest first: reminders and alerts."""
        units = [u.id for u in self.building.units(property_id)]
        return await self.db.run(partial(store.unit_notifications, unit_ids=units, before=before, limit=limit))

    # --- reports --------------------------------------------------------------------------------

    async def file_resident_report(
        self, unit_id: str, actor: str, description: str, *, account_id: str, client_key: str | None = None
    ) -> tuple[Report, bool]:
        """A failure report a resident files by hand; the report and whether it is new.

        With ``client_key`` (the app's Idempotency-Key) the same key from the same account is the same report; the
        same key with another description is a Conflict (``idempotency_key_reused``).
        """
        unit = self.building.unit(unit_id)
        if client_key is None:
            token = secrets.token_hex(8)
        else:
            # Hashed with the account: another account's key never collides, and no account id travels upstream.
            token = hashlib.sha256(f"{account_id}\n{client_key}".encode()).hexdigest()[:32]
        report, new = await self.outbox.file(
            ReportKind.RESIDENT,
            f"resident:{unit_id}:{token}",
            f"resident of unit {unit.label} reports a failure",
            property_id=unit.property_id,
            unit_id=unit_id,
            details={"description": description},
            created_by=actor,
        )
        details = report.body.get("details")
        if not new and (not isinstance(details, dict) or details.get("description") != description):
            raise Conflict(
                "this Idempotency-Key already filed a different report",
                code="idempotency_key_reused",
                field="description",
            )
        return report, new

    async def reports(self, *, property_id: str | None = None, unit_id: str | None = None) -> list[Report]:
        """Reports, newest first."""
        return await self.db.run(partial(store.list_reports, property_id=property_id, unit_id=unit_id))

    # --- storms and outages ---------------------------------------------------------------------

    async def declare_storm(
        self, property_id: str, started_at: datetime, ended_at: datetime | None, detail: str | None, *, by: Principal
    ) -> Outage:
        """Record a weather event for the property (the manager's word, audited; it makes a test due)."""
        self.building.property(property_id)
        if ended_at is not None and ended_at < started_at:
            raise InvalidRequest(
                "a storm cannot end before it starts", code="storm_ends_before_start", field="ended_at"
            )
        if started_at > self.clock.now() + timedelta(minutes=5):
            raise InvalidRequest("a storm is declared once it has begun", code="storm_in_future", field="started_at")
        outage = await self.db.run(
            partial(
                insert_outage,
                kind=OutageKind.STORM,
                started_at=started_at,
                ended_at=ended_at,
                cause="declared_by_manager",
                property_id=property_id,
                detail=detail,
                declared_by=by.actor,
            )
        )
        self._wake.set()
        await self.audit.record(by, "storm.declare", property_id=property_id, target=str(outage.id))
        return outage

    async def end_storm(self, property_id: str, storm_id: int, ended_at: datetime, *, by: Principal) -> Outage:
        """Record the end of a declared storm (the manager's word, audited)."""
        storm = await self.db.run(partial(get_outage, outage_id=storm_id))
        if storm is None or storm.kind is not OutageKind.STORM or storm.property_id != property_id:
            raise NotFound(f"no storm {storm_id} in this property", code="storm_not_found")
        if storm.ended_at is not None:
            raise Conflict("that storm has already ended", code="storm_already_ended")
        closed = await self.db.run(partial(close_outage, outage_id=storm_id, ended_at=ended_at))
        assert closed is not None
        self._wake.set()
        await self.audit.record(by, "storm.end", property_id=property_id, target=str(closed.id))
        return closed

    async def outages(self, property_id: str, start: datetime, end: datetime) -> list[Outage]:
        """Outages touching the property (its devices, storms, and gateway-wide ones) overlapping [start, end)."""
        devices = {d for u in self.building.units(property_id) for d in self.building.devices_of_unit(u.id)}
        found = await self.db.run(partial(outages_between, start=start, end=end))
        return [o for o in found if o.touches_property(property_id) or o.device_id in devices]

    async def uptime(self, property_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Per unit and per device: the share of [start, end) (up to now) they could be reached."""
        now = self.clock.now()
        end = min(end, now)
        span = max(end - start, timedelta())
        found = await self.db.run(partial(outages_between, start=start, end=end))
        gateway_down = [o for o in found if o.kind in (OutageKind.BROKER, OutageKind.POWER)]
        broadband = [o for o in found if o.kind is OutageKind.BROADBAND]
        units: list[dict[str, Any]] = []
        for unit in self.building.units(property_id):
            device_rows = []
            unit_outages = list(gateway_down)
            for device_id in sorted(self.building.devices_of_unit(unit.id)):
                own = [o for o in found if o.kind is OutageKind.DEVICE and o.device_id == device_id]
                unit_outages += own
                device_rows.append(
                    {"device_id": device_id, **_share(downtime(gateway_down + own, start, end, now), span)}
                )
            units.append(
                dict(
                    unit_id=unit.id,
                    label=unit.label,
                    **_share(downtime(unit_outages, start, end, now), span),
                    broadband=_share(downtime(broadband, start, end, now), span),
                    devices=device_rows,
                )
            )
        return units

    # --- internals ------------------------------------------------------------------------------

    def _on_outage(self, outage: Outage) -> None:
        if outage.kind in GATEWAY_WIDE or outage.kind in TEST_EVENTS:
            self._wake.set()

    async def _tick_forever(self) -> None:
        storage = StorageRetry(log, "compliance pass failed", cap=self.tick_seconds)
        while True:
            with contextlib.suppress(TimeoutError):
                # After a storage failure the next pass comes sooner (capped backoff), not a whole tick later.
                async with asyncio.timeout(storage.delay() if storage.failures else self.tick_seconds):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.tick()
            except StorageError as exc:  # a full or read-only disk: said (not every pass), tried again
                storage.failed(exc)
            except GatewayError as exc:  # broker trouble: said, and tried again at the next pass
                log.error("compliance pass failed: %s", exc, extra={"code": exc.code})  # noqa: TRY400
            else:
                storage.succeeded()

    async def _after_result(self, result: SelfTestResult) -> None:
        if not result.passed:
            await self.outbox.file(
                ReportKind.SELF_TEST_FAILED,
                f"self-test:{result.id}",
                f"self-test of unit {self.building.unit(result.unit_id).label} failed",
                property_id=result.property_id,
                unit_id=result.unit_id,
                details=result.model_dump(mode="json"),
                created_by=result.actor_id,
            )
        await self._remind(await self.compliance(result.unit_id))

    async def _remind(self, status: Compliance) -> None:
        title = _REMINDERS.get(status.status)
        if title is None:
            return
        marker = (
            status.last_test.id if status.status is ComplianceStatus.FAILING and status.last_test else status.due_at
        )
        key = f"compliance:{status.unit_id}:{status.status}:{status.reason}:{marker}"
        deadline = f" Please test by {status.deadline:%Y-%m-%d %H:%M} UTC." if status.deadline else ""
        message = f"{title}: {status.detail}.{deadline} {NOT_AN_ALARM}"
        data = {
            "status": str(status.status),
            "reason": status.reason,
            "deadline": status.deadline.isoformat() if status.deadline else None,
        }
        note = await self.db.run(
            partial(
                store.insert_notification,
                unit_id=status.unit_id,
                key=key,
                kind=f"self_test_{status.status}",
                message=message,
                data=data,
                at=self.clock.now(),
            )
        )
        if note is not None:
            log.info("reminder queued", extra={"unit": status.unit_id, "status": str(status.status)})
            for listener in self._note_listeners:
                listener(note)

    async def _automatic_test_due(self, status: Compliance, now: datetime) -> bool:
        """Whether to test the unit now: it owes a test, is idle, and was not tested automatically since the reason
        for testing arose (or for ``auto_retry``)."""
        unit_id = status.unit_id
        if not self.automatic_tests or status.status is ComplianceStatus.OK:
            return False
        if self.runner.running(unit_id) or not self.building.devices_of_unit(unit_id):
            return False
        entity_keys = [
            e.id for d in self.building.devices_of_unit(unit_id) for e in self.registry.entities_of_device(d)
        ]

        def read(db: Any) -> tuple[datetime | None, datetime | None]:
            return store.last_command_at(db, entity_keys), store.last_started(db, unit_id, str(Trigger.AUTOMATIC))

        last_command, last_auto = await self.db.run(read)
        if last_command is not None and now - last_command < self.rules.idle_for:
            return False
        if last_auto is None or now - last_auto >= self.rules.auto_retry:
            return True
        # A new reason to test (say, the outage during which the last one ran is now over) is worth a test at once.
        return status.due_at is not None and status.due_at <= now and self._auto_for.get(unit_id) != status.due_at

    async def _report_outages(self, now: datetime) -> None:
        threshold = self.rules.report_outage_after
        recent = await self.db.run(
            partial(outages_between, start=now - timedelta(days=7), end=now + timedelta(seconds=1))
        )
        for outage in recent:
            if outage.kind not in GATEWAY_WIDE or outage.duration(now) < threshold:
                continue
            words = {"broadband": "broadband", "broker": "MQTT broker link", "power": "gateway power (or crash)"}
            state = f"lasted {outage.duration(now)}" if outage.ended_at else f"going on for {outage.duration(now)}"
            for prop in self.building.properties():
                if contract_lapse(self.policy.contract(prop.id), now) is not None:
                    continue
                await self.outbox.file(
                    ReportKind.OUTAGE,
                    f"outage:{outage.id}:{prop.id}",
                    f"{words[str(outage.kind)]} outage since {outage.started_at.isoformat()} ({state})",
                    property_id=prop.id,
                    # The broker link is the gateway's own connection on the local network, not the internet:
                    # the operator's to mend. Broadband, and power (which takes the building's line down too),
                    # go to the provider as well.
                    to_internet_provider=outage.kind is not OutageKind.BROKER,
                    details={
                        "outage_id": outage.id,
                        "kind": str(outage.kind),
                        "started_at": outage.started_at.isoformat(),
                        "ended_at": outage.ended_at.isoformat() if outage.ended_at else None,
                        "cause": outage.cause,
                        "detail": outage.detail,
                    },
                )


def _share(down: timedelta, span: timedelta) -> dict[str, Any]:
    seconds = span.total_seconds()
    ratio = 1.0 if seconds <= 0 else max(0.0, 1 - down.total_seconds() / seconds)
    return {"uptime": round(ratio, 6), "down_seconds": round(down.total_seconds(), 3)}
