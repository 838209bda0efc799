"""The retention service: the operator's retention and size budget, and the background purge that applies them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from functools import partial
from types import TracebackType
from typing import Self

import sqlite_utils

from ..audit import Actor, AuditLog
from ..clock import Clock
from ..config import PurgeSettings
from ..errors import InvalidRequest, StorageError
from ..storage import Database
from ..storage.retry import StorageRetry
from ..tasks import TaskOwner
from . import store
from .models import (
    MAXIMUM_DAYS,
    MINIMUM_DAYS,
    THINNED_FIRST,
    Category,
    Hold,
    HoldSource,
    PurgeReport,
    RetentionPolicy,
    StorageStatus,
)

__all__ = ["RetentionService"]

log = logging.getLogger(__name__)
_BUDGET_FLOOR = 16 * 1024 * 1024


class RetentionService:
    """``async with`` runs the purge in the background (a pass every ``tick_seconds``, sooner when woken); the
    operator reads and changes the retention through it. Every delete is a short batch on the single writer."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: AuditLog,
        settings: PurgeSettings | None = None,
        *,
        day: timedelta = timedelta(days=1),
    ) -> None:
        self.db = db
        self.day = day  # the length of a retention day: only the steady-state benchmark shortens it
        self.clock = clock
        self.audit = audit
        self.settings = settings or PurgeSettings()
        self.policy = RetentionPolicy()
        self._sources: list[HoldSource] = []
        self._tasks = TaskOwner()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._last: PurgeReport | None = None
        self._state = "ok"
        self._longest = 0.0  # the pass's longest single delete (the writer is held for about that long)

    @property
    def last_purge(self) -> PurgeReport | None:
        """The last pass, once one ran."""
        return self._last

    def add_hold_source(self, source: HoldSource) -> None:
        """Ask ``source`` at every pass which rows must be kept (legal holds, open requests)."""
        self._sources.append(source)

    async def load(self) -> None:
        """Read the operator's stored retention and budget."""
        self.policy = _policy(await self.db.run(store.load_settings))

    async def update(
        self,
        by: Actor | None,
        *,
        days: Mapping[Category, int] | None = None,
        budget_bytes: int | None = None,
        watermark_percent: int | None = None,
    ) -> RetentionPolicy:
        """Change retention days and/or the budget (InvalidRequest naming the rule when out of bounds); audited (``by``
        None: the gateway itself, e.g. the CLI), and the purge runs at once with them."""
        merged = {**self.policy.days, **(days or {})}
        for category, value in (days or {}).items():
            if not MINIMUM_DAYS[category] <= value <= MAXIMUM_DAYS:
                raise InvalidRequest(
                    f"{category} is kept {MINIMUM_DAYS[category]} to {MAXIMUM_DAYS} days, not {value}",
                    code="retention_out_of_range",
                    field=str(category),
                )
        longest = max(v for c, v in merged.items() if c is not Category.AUDIT)
        if merged[Category.AUDIT] < longest:
            raise InvalidRequest(
                f"the audit log is kept longest: at least {longest} days",
                code="audit_retention_shortest",
                field="audit",
            )
        if budget_bytes is not None and budget_bytes < _BUDGET_FLOOR:
            raise InvalidRequest(
                f"the budget is at least {_BUDGET_FLOOR} bytes", code="budget_too_small", field="budget_bytes"
            )
        if watermark_percent is not None and not 20 <= watermark_percent <= 100:
            raise InvalidRequest(
                "the watermark is 20 to 100 percent of the budget", code="watermark_out_of_range", field="watermark"
            )
        policy = replace(
            self.policy,
            days=merged,
            budget_bytes=self.policy.budget_bytes if budget_bytes is None else budget_bytes,
            watermark_percent=self.policy.watermark_percent if watermark_percent is None else watermark_percent,
        )
        changed = _values(policy, self.policy)
        if changed:
            await self.db.run(partial(store.save_settings, values=changed, at=self.clock.now(), by=_who(by)))
            await self.audit.record(by, "retention.update", target="storage", detail=changed)
            self.policy = policy
            self._wake.set()
        return self.policy

    async def status(self) -> StorageStatus:
        """The database's size against the budget, and the last pass."""
        sizes = await self.db.run(partial(store.sizes, path=self.db.path))
        trouble = self.db.trouble
        return StorageStatus(
            state=self._state_of(sizes.used_bytes),
            file_bytes=sizes.file_bytes,
            used_bytes=sizes.used_bytes,
            free_bytes=sizes.free_bytes,
            wal_bytes=sizes.wal_bytes,
            budget_bytes=self.policy.budget_bytes,
            watermark_bytes=self.policy.watermark_bytes,
            auto_vacuum={0: "none", 1: "full", 2: "incremental"}.get(sizes.auto_vacuum, str(sizes.auto_vacuum)),
            trouble=None if trouble is None else trouble.code,
            last_purge=self._last,
        )

    async def purge(self, by: Actor | None = None) -> PurgeReport:
        """Run one pass now (after one in progress); ``by`` (an operator asking) is audited."""
        report = await self._pass()
        if by is not None:
            await self.audit.record(by, "retention.purge", target="storage", detail={"deleted": report.deleted})
        return report

    # --- the pass -------------------------------------------------------------------------------------

    async def _pass(self) -> PurgeReport:
        async with self._lock:
            started, now = time.perf_counter(), self.clock.now()
            self._longest = 0.0
            holds = await self._holds()
            policy = self.policy
            deleted: dict[str, int] = {}
            for category in Category:
                cutoff = (now - self.day * policy.days[category]).isoformat()
                held = await self.db.run(partial(store.held_ids, holds=holds, category=category))
                deleted[category] = await self._purge_category(category, cutoff, now.isoformat(), held)
            thinned = await self._thin(holds, now.isoformat())
            freed = await self._vacuum()
            report = PurgeReport(now, deleted, thinned, freed, time.perf_counter() - started, self._longest)
            self._last = report
            if any(deleted.values()) or any(thinned.values()):
                log.info(
                    "purge pass: deleted %s, thinned %s, %d pages given back",
                    {k: v for k, v in deleted.items() if v},
                    {k: v for k, v in thinned.items() if v},
                    freed,
                    extra={"seconds": round(report.seconds, 3)},
                )
            return report

    async def _holds(self) -> list[Hold]:
        holds: list[Hold] = []
        for source in self._sources:
            try:
                holds.extend(await source.holds())
            except Exception:
                # Unknown holds keep everything this pass: a purge must never remove what a hold may need.
                log.exception("a hold source failed: nothing is purged this pass")
                return [Hold("a hold source failed")]
        return holds

    async def _purge_category(self, category: Category, cutoff: str, now: str, held: store.HeldIds) -> int:
        if category is Category.REMOVED_DEVICES:
            total = 0
            while count := await self.db.run(
                partial(
                    store.purge_removed_devices, cutoff=cutoff, held=held, limit=max(self.settings.batch_rows // 100, 1)
                )
            ):
                total += count
                await asyncio.sleep(self.settings.pause_seconds)
            return total
        total = 0
        for plan in store.PLANS[category]:
            total += await self._sweep(plan, cutoff, now, held)
        return total

    async def _sweep(self, plan: store.Plan, cutoff: str | None, now: str, held: store.HeldIds, until: int = 0) -> int:
        """Delete through the plan's rowid range in windows of ``batch_rows``, yielding between them; with
        ``until`` (thinning) stop once the used size is at most that."""
        if held.everything:
            return 0
        low, high = await self.db.run(partial(store.rowid_bounds, plan=plan, cutoff=cutoff or "\uffff"))
        total, step = 0, self.settings.batch_rows
        for start in range(low, high, step):
            window = partial(
                store.delete_window,
                plan=plan,
                start=start,
                end=min(start + step, high),
                cutoff=cutoff,
                now=now,
                held=held,
            )
            count, seconds = await self.db.run(partial(_timed, window))
            total += count
            self._longest = max(self._longest, seconds)
            # a pause after a delete that did something, so that the writes queued behind it go first
            await asyncio.sleep(self.settings.pause_seconds if count else 0)
            if until and (await self.db.run(partial(store.sizes, path=self.db.path))).used_bytes <= until:
                break
        return total

    async def _thin(self, holds: Sequence[Hold], now: str) -> dict[str, int]:
        """Past the watermark (or on a full disk), delete the oldest history, events first, down to the low mark."""
        thinned: dict[str, int] = {}
        used = (await self.db.run(partial(store.sizes, path=self.db.path))).used_bytes
        full = self.db.trouble is not None and self.db.trouble.code == "storage_full"
        state = self._state_of(used)
        if state != self._state:
            level = logging.INFO if state == "ok" else logging.WARNING
            log.log(level, "database size %s: %d of %d bytes used", state, used, self.policy.budget_bytes)
            self._state = state
        if used <= self.policy.watermark_bytes and not full:
            return thinned
        target = self.policy.low_bytes if not full else max(used - used // 10, 1)
        for category in THINNED_FIRST:
            held = await self.db.run(partial(store.held_ids, holds=holds, category=category))
            for plan in store.PLANS[category]:
                thinned[category] = thinned.get(category, 0) + await self._sweep(plan, None, now, held, until=target)
            used = (await self.db.run(partial(store.sizes, path=self.db.path))).used_bytes
            if used <= target:
                break
        log.warning("database past its watermark: history thinned %s; %d bytes used", thinned, used)
        return thinned

    async def _vacuum(self) -> int:
        freed = 0
        pages = self.settings.vacuum_pages
        while step := await self.db.run(partial(store.incremental_vacuum, pages=pages)):
            freed += step
            if step < pages:
                break  # the free list is empty
            await asyncio.sleep(self.settings.pause_seconds)
        if freed:
            await self.db.run(_checkpoint)
        return freed

    def _state_of(self, used: int) -> str:
        if used > self.policy.budget_bytes:
            return "over_budget"
        return "thinning" if used > self.policy.watermark_bytes else "ok"

    async def _loop(self) -> None:
        storage = StorageRetry(log, "purge pass failed", cap=self.settings.tick_seconds)
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            # Woken by a change of settings, due by the tick (sooner after a failure), or a full disk: checked at
            # the storage probe's pace, so that thinning starts within seconds of the disk filling up.
            try:
                async with asyncio.timeout(max(min(due - loop.time(), self.db.probe_seconds), 0)):
                    await self._wake.wait()
            except TimeoutError:
                pass
            trouble = self.db.trouble
            full = trouble is not None and trouble.code == "storage_full"
            if not (self._wake.is_set() or full or loop.time() >= due):
                continue
            self._wake.clear()
            try:
                await self._pass()
            except StorageError as exc:
                due = loop.time() + storage.failed(exc)
            else:
                storage.succeeded()
                due = loop.time() + self.settings.tick_seconds

    async def __aenter__(self) -> Self:
        await self.load()
        await self._tasks.__aenter__()
        self._tasks.start(self._loop(), "retention-purge")
        self._wake.set()  # a first pass at start: whatever aged while the gateway was off
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._tasks.__aexit__(exc_type, exc, tb)


def _timed(work: Callable[[sqlite_utils.Database], int], db: sqlite_utils.Database) -> tuple[int, float]:
    # timed on the writer thread: how long the delete held the writer, not how long it waited for it
    began = time.perf_counter()
    return work(db), time.perf_counter() - began


def _checkpoint(db: sqlite_utils.Database) -> None:
    # The pages given back leave the file when the WAL is written back; PASSIVE never waits for readers.
    db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _policy(stored: Mapping[str, int]) -> RetentionPolicy:
    base = RetentionPolicy()
    days = dict(base.days)
    for category in Category:
        if category.value in stored:
            days[category] = stored[category.value]
    return RetentionPolicy(
        days=days,
        budget_bytes=stored.get("budget_bytes", base.budget_bytes),
        watermark_percent=stored.get("watermark_percent", base.watermark_percent),
    )


def _values(new: RetentionPolicy, old: RetentionPolicy) -> dict[str, int]:
    changed = {str(c): v for c, v in new.days.items() if old.days.get(c) != v}
    if new.budget_bytes != old.budget_bytes:
        changed["budget_bytes"] = new.budget_bytes
    if new.watermark_percent != old.watermark_percent:
        changed["watermark_percent"] = new.watermark_percent
    return changed


def _who(by: Actor | None) -> str:
    return "system" if by is None else f"account:{by.account.id}"
