"""Connectivity tracking: broadband, broker link, power, and device intervals written to SQLite as they happen."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from types import TracebackType
from typing import Any, Self

from ..clock import Clock
from ..config import UplinkSettings
from ..core.entity import Entity
from ..core.registry import Registry
from ..errors import StorageError
from ..mqtt.transport import LinkState
from ..storage import Database
from ..storage.records import parse_time
from ..storage.retry import StorageRetry
from ..tasks import TaskOwner
from .freshness import down_since
from .models import Outage, OutageKind
from .store import close_outage, insert_outage, open_outages
from .uplink import ProbeResult, UplinkMonitor, UplinkState

__all__ = ["ConnectivityTracker", "OutageListener"]

log = logging.getLogger(__name__)

OutageListener = Callable[[Outage], None]
"""Told about every outage opened or closed, after it is stored."""


class ConnectivityTracker:
    """Keeps the outage intervals; ``async with`` runs the broadband check and the device watch."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        registry: Registry,
        uplink: UplinkSettings,
        *,
        device_silence: timedelta,
        device_check_seconds: float,
        link_connected: Callable[[], bool],
    ) -> None:
        self.db = db
        self.clock = clock
        self.registry = registry
        self.uplink = UplinkMonitor(uplink, clock)
        self.device_silence = device_silence
        self.device_check_seconds = device_check_seconds
        self._link_connected = link_connected
        self._open: dict[tuple[OutageKind, str | None], Outage] = {}
        self._jobs: asyncio.Queue[Callable[[], Any]] = asyncio.Queue()
        self._dirty_devices: set[str] = set()
        self._wake_devices = asyncio.Event()
        self._busy = False  # the writer is storing a change (what is open may be about to change)
        self._listeners: list[OutageListener] = []
        self._tasks = TaskOwner()
        self.uplink.on_transition(self._on_uplink)

    def on_outage(self, listener: OutageListener) -> None:
        """Call ``listener`` with every outage opened or closed."""
        self._listeners.append(listener)

    def open_now(self) -> list[Outage]:
        """Outages going on now."""
        return sorted(self._open.values(), key=lambda o: (o.started_at, o.id))

    async def __aenter__(self) -> Self:
        for outage in await self.db.run(open_outages):
            if outage.kind is not OutageKind.STORM:
                self._open[(outage.kind, outage.device_id)] = outage
        await self._tasks.__aenter__()
        self._tasks.start(self._work(), "connectivity-writer")
        self._tasks.start(self.uplink.run(), "connectivity-uplink")
        self._tasks.start(self._watch_devices(), "connectivity-devices")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._tasks.__aexit__(exc_type, exc, tb)
        try:
            while not self._jobs.empty():  # changes reported before the writer stopped are still stored
                await _run(self._jobs.get_nowait())
            # A clean stop: what the gateway itself was watching ends with it; devices stay as last seen.
            now = self.clock.now()
            for key in [k for k in self._open if k[0] in (OutageKind.BROKER, OutageKind.BROADBAND)]:
                await self._close(key, now)
        except StorageError as failure:
            # Stopping all the same: the next start closes what is left open at the last heartbeat.
            log.error("cannot record connectivity at stop: %s", failure, extra={"code": failure.code})  # noqa: TRY400

    async def record_unclean_stop(self, previous_run: dict[str, object], now: datetime) -> None:
        """Record the time a previous run was away without a clean stop, and end what it left open."""
        last_alive = parse_time(str(previous_run.get("heartbeat_at") or previous_run["started_at"]))
        assert last_alive is not None
        for kind in (OutageKind.BROKER, OutageKind.BROADBAND):
            for outage in await self.db.run(partial(open_outages, kind=kind)):
                await self.db.run(partial(close_outage, outage_id=outage.id, ended_at=last_alive))
                self._open.pop((kind, None), None)
        outage = await self.db.run(
            partial(
                insert_outage,
                kind=OutageKind.POWER,
                started_at=last_alive,
                ended_at=max(now, last_alive),  # a clock stepped back at boot (no RTC) must not break the record
                cause="unclean_stop",
                detail="the gateway stopped without shutting down (power cut or crash); away until restart",
            )
        )
        log.warning("power or crash outage recorded", extra={"from": last_alive.isoformat(), "to": now.isoformat()})
        self._notify(outage)

    # --- inputs (synchronous, from the event loop) ----------------------------------------------

    def on_link_state(self, state: LinkState) -> None:
        """The gateway's broker link changed state."""
        now = self.clock.now()
        if state is LinkState.BACKOFF:
            self._jobs.put_nowait(partial(self._open_once, (OutageKind.BROKER, None), now, "connection_lost"))
        elif state is LinkState.CONNECTED:
            self._jobs.put_nowait(partial(self._close, (OutageKind.BROKER, None), now))
            self._wake_devices.set()

    def on_link_deaf(self, since: datetime, detail: str) -> None:
        """The link looked up but the broker no longer delivered to it (found by the liveness check) since ``since``.

        Opened here with its own cause; the reconnect that follows finds it open and closes it when connected again.
        """
        self._jobs.put_nowait(partial(self._open_once, (OutageKind.BROKER, None), since, "session_lost", detail))

    def on_state(self, entity: Entity) -> None:
        """A device reported: it may be back."""
        if (OutageKind.DEVICE, entity.device_id) in self._open:
            self._dirty_devices.add(entity.device_id)
            self._wake_devices.set()

    def on_availability(self, entity: Entity) -> None:
        """A device's availability changed."""
        self._dirty_devices.add(entity.device_id)
        self._wake_devices.set()

    def _on_uplink(self, state: UplinkState, result: ProbeResult, since: datetime) -> None:
        key = (OutageKind.BROADBAND, None)
        if state is UplinkState.DOWN:
            self._jobs.put_nowait(partial(self._open_once, key, since, "uplink_unreachable", result.error))
        elif state is UplinkState.UP:
            self._jobs.put_nowait(partial(self._close, key, since))

    # --- work -----------------------------------------------------------------------------------

    async def flush(self) -> None:
        """Wait until every change reported so far is stored (tests and readers wanting a settled view)."""
        done = asyncio.Event()
        self._jobs.put_nowait(done.set)
        await done.wait()

    async def check_devices(self) -> None:
        """Compare every device with the open device outages now, and store the differences before returning."""
        self._queue_devices(set(self.registry.device_ids()) | self._open_device_ids(), self.clock.now())
        await self.flush()

    async def _work(self) -> None:
        retry = StorageRetry(log, "cannot record a connectivity change")
        while True:
            job = await self._jobs.get()
            self._busy = True
            # A change the database refuses is kept and tried again (in order: an outage's end never goes before
            # its start) until it is stored; later changes wait behind it, in memory.
            while True:
                try:
                    await _run(job)
                except StorageError as exc:
                    await asyncio.sleep(retry.failed(exc))
                else:
                    retry.succeeded()
                    break
            self._busy = False

    async def _watch_devices(self) -> None:
        while True:
            woken = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.device_check_seconds):
                    await self._wake_devices.wait()
                    woken = True
            self._wake_devices.clear()
            if not self._link_connected():
                continue  # while the broker is away the broker outage says it all; device states are unknown
            dirty, self._dirty_devices = self._dirty_devices, set()
            now = self.clock.now()
            if not woken:  # the periodic pass: silence is noticed only by looking
                dirty |= self._due_devices(now)
            if self.db.trouble is not None:
                # The writer is retrying a refused change; passes queued behind it would only pile up in memory.
                # Kept as dirty, and the first periodic pass after the trouble looks at every device anyway.
                self._dirty_devices |= dirty
                continue
            self._queue_devices(dirty, now)

    def _due_devices(self, now: datetime) -> set[str]:
        """The devices whose reconciliation at ``now`` may change something: every device when changes are still
        queued or being stored, else those down or with an open outage (a device up with none would be a no-op).
        """
        opened = self._open_device_ids()
        if self._busy or not self._jobs.empty():
            return set(self.registry.device_ids()) | opened  # what is open may still change before their turn comes
        # One pass over the entities, not a sorted list per device: every 30 s over 2,000 devices, this pass was the
        # quiet gateway's costliest periodic work (15 ms a pass; 6 ms in one).
        silence = self.device_silence
        return {e.device_id for e in self.registry.live_entities() if down_since(e, now, silence) is not None} | opened

    def _open_device_ids(self) -> set[str]:
        return {d for k, d in self._open if k is OutageKind.DEVICE and d is not None}

    def _queue_devices(self, device_ids: set[str], now: datetime) -> None:
        for device_id in sorted(device_ids):
            self._jobs.put_nowait(partial(self._reconcile_device, device_id, now))

    async def _reconcile_device(self, device_id: str, now: datetime) -> None:
        key = (OutageKind.DEVICE, device_id)
        down = self._down_since(device_id, now)
        if down is None and key in self._open:
            if not any(e.heard_since_start for e in self.registry.entities_of_device(device_id)):
                return  # remembered from before a restart, silent since: it is not known to be back
            await self._close(key, now)
        elif down is not None and key not in self._open:
            reason, since = down
            await self._open_once(key, since, reason)

    def _down_since(self, device_id: str, now: datetime) -> tuple[str, datetime] | None:
        for entity in self.registry.entities_of_device(device_id):
            down = down_since(entity, now, self.device_silence)
            if down is not None:
                reason, since = down
                return reason, min(since, now)
        return None

    async def _open_once(
        self, key: tuple[OutageKind, str | None], started_at: datetime, cause: str, detail: str | None = None
    ) -> None:
        if key in self._open:
            return
        kind, device_id = key
        outage = await self.db.run(
            partial(insert_outage, kind=kind, started_at=started_at, cause=cause, device_id=device_id, detail=detail)
        )
        self._open[key] = outage
        log.warning("%s outage began", kind, extra={"device": device_id, "cause": cause, "detail": detail})
        self._notify(outage)

    async def _close(self, key: tuple[OutageKind, str | None], ended_at: datetime) -> None:
        outage = self._open.get(key)
        if outage is None:
            return
        closed = await self.db.run(partial(close_outage, outage_id=outage.id, ended_at=ended_at))
        del self._open[key]  # only once stored: a refused write is tried again and must find it still open
        if closed is not None:
            log.info("%s outage ended", key[0], extra={"device": key[1], "lasted": str(closed.duration(ended_at))})
            self._notify(closed)

    def _notify(self, outage: Outage) -> None:
        for listener in self._listeners:
            listener(outage)


async def _run(job: Callable[[], Any]) -> None:
    result = job()
    if asyncio.iscoroutine(result):
        await result
