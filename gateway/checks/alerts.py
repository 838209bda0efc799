"""Alerts a manager must not miss, from the devices' own reports: a leak sensor reporting water, a front door lock
jammed or offline, a battery below the threshold. Each situation queues one notification for its unit (the
resident's app, the property's console) when it begins, and one when it ends; a situation still open when the
gateway restarts is not queued again (the queue itself says which are open). A failing self-test is queued by the
checks' reminders (``self_test_failing``)."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import Self

import sqlite_utils

from devices.base import DeviceKind
from devices.lock import LockState, LockStatus
from devices.sensors import BinarySensorState, SensorState

from ..building import BuildingService
from ..clock import Clock
from ..core.entity import Entity
from ..storage import Database
from ..tasks import TaskOwner
from . import store
from .models import Notification

__all__ = ["HOME_AUTOMATION_ONLY", "AlertService", "situations"]

log = logging.getLogger(__name__)

HOME_AUTOMATION_ONLY = (
    "This notice comes from home automation. It is not a security or alarm system: nobody is called out, and "
    "nothing is watched over."
)
_BEGINS = {
    "leak": "The leak sensor {name} reports water. Check the unit and tell your property manager.",
    "lock_jammed": "The front door lock {name} reports it is jammed: it may not be locked.",
    "lock_offline": "The front door lock {name} cannot be reached: it cannot be controlled or checked from the app.",
    "battery_low": "The battery of {name} is low ({value:.0f} %): replace it soon.",
}
_ENDS = {
    "leak": "The leak sensor {name} reports dry again.",
    "lock_jammed": "The front door lock {name} no longer reports it is jammed.",
    "lock_offline": "The front door lock {name} can be reached again.",
    "battery_low": "The battery of {name} is no longer low.",
}
NotificationListener = Callable[[Notification], None]


def situations(entity: Entity, low_battery_percent: float) -> dict[str, float | None]:
    """The alert situations this entity is in now, each with its reading (the battery level), if any."""
    found: dict[str, float | None] = {}
    state = entity.state
    kind = entity.kind
    reachable = entity.available is not False
    if kind is DeviceKind.LEAK_SENSOR and reachable and isinstance(state, BinarySensorState) and state.on:
        found["leak"] = None
    if kind is DeviceKind.LOCK:
        if entity.available is False:
            found["lock_offline"] = None
        # A jam lasts until the lock reports otherwise: going offline does not end it.
        if isinstance(state, LockState) and state.status is LockStatus.JAMMED:
            found["lock_jammed"] = None
    if kind is DeviceKind.BATTERY_SENSOR and isinstance(state, SensorState) and isinstance(state.value, float):
        level = state.value
        if level < low_battery_percent:
            found["battery_low"] = level
    return found


@dataclass(frozen=True, slots=True)
class _Open:
    key: str
    unit_id: str


class AlertService:
    """``async with AlertService(...)``: an entity listener (register it with the registry) whose changes are judged
    in its own task, so the registry's callbacks never wait on the database."""

    def __init__(
        self, db: Database, clock: Clock, building: BuildingService, low_battery_percent: float = 20.0
    ) -> None:
        self._db = db
        self._clock = clock
        self._building = building
        self._low = low_battery_percent
        self._pending: dict[str, Entity] = {}
        self._wake = asyncio.Event()
        self._open: dict[tuple[str, str], _Open] = {}  # (situation, entity id) -> the notification that began it
        self._listeners: list[NotificationListener] = []
        self._tasks = TaskOwner()

    @property
    def low_battery_percent(self) -> float:
        """A battery below this level is low (the alert, and the health views that count low batteries)."""
        return self._low

    def on_notification(self, listener: NotificationListener) -> None:
        """Call ``listener`` with every alert notification once it is queued."""
        self._listeners.append(listener)

    # --- EntityListener -------------------------------------------------------------------------------------

    def on_state(self, entity: Entity) -> None:
        """Judge the entity again (in the service's task)."""
        self._pending[entity.id] = entity
        self._wake.set()

    def on_availability(self, entity: Entity) -> None:
        """Judge the entity again (in the service's task)."""
        self._pending[entity.id] = entity
        self._wake.set()

    # --- running ----------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._open = await self._db.run(_open_alerts)
        await self._tasks.__aenter__()
        self._tasks.start(self._judge_forever(), "alerts-judge")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._tasks.__aexit__(exc_type, exc, tb)

    async def _judge_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._judge_pending()

    async def _judge_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for entity in pending.values():
            try:
                await self.judge(entity)
            except Exception:  # one bad judgement must not end the alerts; logged, the next change tries again
                log.exception("alert not judged", extra={"entity": entity.id})

    async def judge(self, entity: Entity) -> None:
        """Queue what begins or ends with the entity as it is now (the service's task does this for every change)."""
        unit_id = self._building.unit_of_device(entity.device_id)
        now_in = situations(entity, self._low) if unit_id is not None else {}
        for situation, reading in now_in.items():
            if (situation, entity.id) not in self._open and unit_id is not None:
                await self._begin(situation, entity, unit_id, reading)
        for situation, entity_id in [k for k in self._open if k[1] == entity.id]:
            if situation not in now_in:
                await self._end(situation, entity, self._open.pop((situation, entity_id)))

    async def _begin(self, situation: str, entity: Entity, unit_id: str, reading: float | None) -> None:
        now = self._clock.now()
        key = f"alert:{situation}:{entity.id}:{now.isoformat()}:{secrets.token_hex(4)}"  # one per situation
        message = _BEGINS[situation].format(name=entity.name, value=reading or 0.0)
        self._open[(situation, entity.id)] = _Open(key, unit_id)
        await self._queue(unit_id, key, situation, f"alert_{situation}", message, entity, reading, now)

    async def _end(self, situation: str, entity: Entity, began: _Open) -> None:
        message = _ENDS[situation].format(name=entity.name)
        now = self._clock.now()
        key = f"{began.key}:end"
        await self._queue(began.unit_id, key, situation, f"alert_{situation}_ended", message, entity, None, now)

    async def _queue(
        self,
        unit_id: str,
        key: str,
        situation: str,
        kind: str,
        message: str,
        entity: Entity,
        reading: float | None,
        at: datetime,
    ) -> None:
        data: dict[str, object] = {"alert": situation, "entity_id": entity.id, "device_id": entity.device_id}
        if reading is not None:
            data["reading"] = reading
        note = await self._db.run(
            partial(
                store.insert_notification,
                unit_id=unit_id,
                key=key,
                kind=kind,
                message=f"{message} {HOME_AUTOMATION_ONLY}",
                data=data,
                at=at,
            )
        )
        if note is None:
            return
        log.info("alert queued", extra={"unit": unit_id, "kind": kind})
        for listener in self._listeners:
            listener(note)


def _open_alerts(db: sqlite_utils.Database) -> dict[tuple[str, str], _Open]:
    """The situations whose beginning is queued and whose end is not (writer thread)."""
    rows = db.conn.execute(
        "SELECT key, unit_id, data FROM notifications WHERE kind LIKE 'alert\\_%' ESCAPE '\\' ORDER BY id"
    ).fetchall()
    keys = {str(key) for key, _, _ in rows}
    opened: dict[tuple[str, str], _Open] = {}
    for key, unit_id, data in rows:
        if str(key).endswith(":end") or f"{key}:end" in keys:
            continue
        facts = json.loads(data)
        opened[(str(facts["alert"]), str(facts["entity_id"]))] = _Open(str(key), str(unit_id))
    return opened
