"""A read-only look into the gateway's SQLite file while it runs (the gateway stays its only writer)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = ["Fleetview", "GatewayDb"]


@dataclass(frozen=True, slots=True)
class Fleetview:
    """How many of the expected devices the gateway has stored as discovered, and as online."""

    devices: int  # devices with every expected entity discovered
    online: int  # of those, devices whose entities are all available (and, if asked, seen since a time)
    entities: int


class GatewayDb:
    """Queries on the gateway's database; a database not created yet reads as empty."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection | None:
        if self._conn is None and self.path.exists():
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=2.0, check_same_thread=False)
            try:
                conn.execute("SELECT 1 FROM entities LIMIT 1")
            except sqlite3.Error:
                conn.close()
                return None
            self._conn = conn
        return self._conn

    def close(self) -> None:
        """Close the connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        db = self._db()
        if db is None:
            return []
        try:
            return db.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc) or "locked" in str(exc):
                return []
            raise

    def fleet(self, device_ids: set[str], entities_per_device: dict[str, int], since: datetime | None) -> Fleetview:
        """Which of ``device_ids`` are discovered with all their entities, and online (seen after ``since``)."""
        rows = self._rows(
            "SELECT device_id, available, last_seen FROM current_entities "
            "WHERE removed_at IS NULL AND device_id LIKE 'fwsim-%'"
        )
        found: dict[str, list[tuple[object, object]]] = {}
        for device_id, available, last_seen in rows:
            if device_id in device_ids:
                found.setdefault(str(device_id), []).append((available, last_seen))
        complete = {d: e for d, e in found.items() if len(e) >= entities_per_device.get(d, 1)}
        online = sum(all(a == 1 and _after(s, since) for a, s in e) for e in complete.values())
        return Fleetview(devices=len(complete), online=online, entities=sum(len(e) for e in found.values()))

    def states(self, keys: set[str]) -> dict[str, str | None]:
        """The stored state JSON of each entity in ``keys`` that exists."""
        rows = self._rows("SELECT key, state FROM current_entities WHERE removed_at IS NULL")
        return {str(k): None if s is None else str(s) for k, s in rows if k in keys}

    def last_event_id(self) -> int:
        """The newest event's id (0 when there is none)."""
        rows = self._rows("SELECT coalesce(max(id), 0) FROM all_events")
        return int(str(rows[0][0])) if rows else 0

    def count_events(self, type_: str, after_id: int) -> int:
        """Events of ``type_`` recorded after event ``after_id``."""
        rows = self._rows("SELECT count(*) FROM all_events WHERE id > ? AND type = ?", (after_id, type_))
        return int(str(rows[0][0])) if rows else 0

    def event_data(self, type_: str, after_id: int) -> list[dict[str, object]]:
        """The data of every event of ``type_`` recorded after event ``after_id``, oldest first."""
        rows = self._rows("SELECT data FROM all_events WHERE id > ? AND type = ? ORDER BY id", (after_id, type_))
        out: list[dict[str, object]] = []
        for (data,) in rows:
            with contextlib.suppress(ValueError, TypeError):
                value = json.loads(str(data))
                if isinstance(value, dict):
                    out.append(value)
        return out

    def state_events_by_entity(self, after_id: int) -> dict[str, int]:
        """How many ``state`` events each entity has recorded after event ``after_id``."""
        rows = self._rows(
            "SELECT entity_key, count(*) FROM all_events WHERE id > ? AND type = 'state' GROUP BY entity_key",
            (after_id,),
        )
        return {str(k): int(str(n)) for k, n in rows}

    async def state_events_settled(self, after_id: int, expected: Mapping[str, int], timeout: float) -> dict[str, int]:
        """``state_events_by_entity`` once every expected change is recorded, or as it is after ``timeout`` seconds
        (at a quiet rate the gateway holds a read up to its read_hold_seconds, then writes)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.state_events_by_entity(after_id)
            if all(got.get(k, 0) >= n for k, n in expected.items()) or time.monotonic() >= deadline:
                return got
            await asyncio.sleep(0.2)

    def command_durations_ms(self, since: datetime) -> list[float]:
        """Milliseconds from recorded to finished of every command the gateway recorded at or after ``since``."""
        out: list[float] = []
        for created, finished in self._rows("SELECT created_at, finished_at FROM commands"):
            if finished is None:
                continue
            start = datetime.fromisoformat(str(created))
            if start >= since:
                out.append((datetime.fromisoformat(str(finished)) - start).total_seconds() * 1000)
        return out

    def first_event_at(self, type_: str, after_id: int) -> datetime | None:
        """When the first event of ``type_`` after event ``after_id`` happened."""
        rows = self._rows("SELECT min(at) FROM all_events WHERE id > ? AND type = ?", (after_id, type_))
        if not rows or rows[0][0] is None:
            return None
        return datetime.fromisoformat(str(rows[0][0]))


def _after(stamp: object, since: datetime | None) -> bool:
    if since is None:
        return True
    if stamp is None:
        return False
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(str(stamp)) >= since
    return False
