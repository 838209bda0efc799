"""The failure-report outbox: filed once per idempotency key, delivered upstream with retries, held while the
broadband is down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import Any, Self

import sqlite_utils

from ..backoff import Backoff
from ..building import BuildingService
from ..clock import Clock
from ..connectivity import UplinkMonitor
from ..errors import DeliveryFailed, StorageError
from ..policy import PolicyService
from ..storage import Database
from ..storage.records import transaction
from ..storage.retry import StorageRetry
from ..tasks import TaskOwner
from .models import NOT_AN_ALARM, Report, ReportKind
from .store import insert_report, mark_attempt, pending_reports
from .upstream import Upstream

__all__ = ["DeliveredHook", "Outbox"]

log = logging.getLogger(__name__)
DeliveredHook = Callable[[sqlite_utils.Database, Report, str, datetime], None]
"""Told (on the writer thread, in the transaction that marks it delivered) of each report delivered upstream, with
where it went and when: e.g. to log it as a disclosure."""


class Outbox:
    """Files failure reports and delivers them; ``async with`` runs the delivery loop."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        building: BuildingService,
        policy: PolicyService,
        uplink: UplinkMonitor,
        upstream: Upstream | None,
        backoff: Backoff,
        gateway_id: str,
    ) -> None:
        self.db = db
        self.clock = clock
        self.building = building
        self.policy = policy
        self.uplink = uplink
        self.upstream = upstream
        self.backoff = backoff
        self.gateway_id = gateway_id
        self.delivered = 0
        self._delivered_hooks: list[DeliveredHook] = []
        self._wake = asyncio.Event()
        self._delivering = asyncio.Lock()  # one pass at a time: a report is never sent twice concurrently
        self._tasks = TaskOwner()
        self._stack = contextlib.AsyncExitStack()

    @property
    def upstream_description(self) -> str | None:
        """Where reports go (no credentials), or None when no upstream is configured."""
        return None if self.upstream is None else self.upstream.description

    async def file(
        self,
        kind: ReportKind,
        key: str,
        summary: str,
        *,
        property_id: str | None,
        unit_id: str | None = None,
        details: dict[str, Any] | None = None,
        created_by: str | None = None,
        to_internet_provider: bool = True,
    ) -> tuple[Report, bool]:
        """Queue a report unless one with the same key exists; the stored report and whether it is new. It is
        addressed to the operator, and to the internet provider unless ``to_internet_provider`` is False."""
        now = self.clock.now()
        report = Report(
            id=f"rp_{secrets.token_hex(8)}",
            idempotency_key=f"{self.gateway_id}:{key}",
            kind=kind,
            property_id=property_id,
            unit_id=unit_id,
            created_at=now,
            created_by=created_by,
            body=self._body(kind, summary, property_id, unit_id, details or {}, now, to_internet_provider),
            attempts=0,
            last_attempt_at=None,
            last_error=None,
            delivered_at=None,
        )
        stored, new = await self.db.run(partial(insert_report, report=report))
        if new:
            log.warning("failure report filed", extra={"report": stored.id, "kind": str(kind), "summary": summary})
            self._wake.set()
        return stored, new

    def on_delivered(self, hook: DeliveredHook) -> None:
        """Have ``hook`` told of every report delivered, in the same transaction as the delivery is recorded."""
        self._delivered_hooks.append(hook)

    def _mark_delivered(self, db: sqlite_utils.Database, report: Report, at: datetime, to: str) -> None:
        with transaction(db):
            mark_attempt(db, report_id=report.id, at=at, error=None, delivered=True)
            for hook in self._delivered_hooks:
                hook(db, report, to, at)

    def wake(self) -> None:
        """Try delivering now (the broadband came back, or something was filed)."""
        self._wake.set()

    async def deliver_pending(self) -> int:
        """One delivery pass over the pending reports, oldest first; how many were delivered. Stops at the first
        failure (the rest would fail the same way) and while the broadband is down."""
        async with self._delivering:
            return await self._deliver_pending()

    async def _deliver_pending(self) -> int:
        if self.upstream is None:
            return 0
        delivered = 0
        for report in await self.db.run(pending_reports):
            if self.uplink.is_down():
                break  # held: it goes out when the broadband is back, not into a dead link
            now = self.clock.now()
            try:
                await self.upstream.deliver(report)
            except DeliveryFailed as exc:
                await self.db.run(partial(mark_attempt, report_id=report.id, at=now, error=str(exc), delivered=False))
                log.warning("report delivery failed", extra={"report": report.id, "error": str(exc)})
                raise
            await self.db.run(partial(self._mark_delivered, report=report, at=now, to=self.upstream.description))
            delivered += 1
            self.delivered += 1
            log.info("report delivered", extra={"report": report.id, "to": self.upstream.description})
        return delivered

    async def __aenter__(self) -> Self:
        if self.upstream is not None:
            await self._stack.enter_async_context(self.upstream)
        await self._tasks.__aenter__()
        self._tasks.start(self._deliver_forever(), "outbox-delivery")
        self._wake.set()  # what a previous run left undelivered
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._tasks.__aexit__(exc_type, exc, tb)
        finally:
            await self._stack.aclose()

    async def _deliver_forever(self) -> None:
        failures = 0
        storage = StorageRetry(log, "report outbox unreadable")
        while True:
            delay = None if failures == 0 else self.backoff.delay(failures - 1)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()
            await self.uplink.wait_not_down()
            try:
                await self.deliver_pending()
            except (DeliveryFailed, StorageError) as exc:
                if isinstance(exc, StorageError):
                    storage.failed(exc)  # said, but not at every try while the disk is full
                failures += 1
            else:
                failures = 0
                storage.succeeded()

    def _body(
        self,
        kind: ReportKind,
        summary: str,
        property_id: str | None,
        unit_id: str | None,
        details: dict[str, Any],
        now: datetime,
        to_internet_provider: bool,
    ) -> dict[str, object]:
        contract = self.policy.contract(property_id) if property_id is not None else None
        provider: dict[str, object] = {"role": "internet_provider"}
        if contract is None:
            provider["provided_by"] = "unknown (no lessor contract recorded)"
        else:
            internet = contract.internet
            provider.update(provided_by=str(internet.provided_by), name=internet.name, contact=internet.contact)
        unit = None
        if unit_id is not None:
            record = self.building.unit(unit_id)
            unit = {"id": record.id, "label": record.label}
        prop = None
        if property_id is not None:
            prop = {"id": property_id, "name": self.building.property(property_id).name}
        return {
            "kind": str(kind),
            "summary": summary,
            "created_at": now.isoformat(),
            "gateway": self.gateway_id,
            "property": prop,
            "unit": unit,
            "addressed_to": [provider, {"role": "operator"}] if to_internet_provider else [{"role": "operator"}],
            "details": details,
            "note": NOT_AN_ALARM,
        }
