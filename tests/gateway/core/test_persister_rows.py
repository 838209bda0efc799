"""The writer's rows for state changes: one state event per change with the state's JSON, and the entity's reported
columns, read back from the SQLite file as written by the persister's own write."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from functools import partial
from pathlib import Path

from devices import Component, LightConfig, LightState, parse_config
from gateway.clock import ManualClock
from gateway.core.metrics import Metrics
from gateway.core.persister import PendingChanges, write_batch_rows
from gateway.core.registry import Registry
from gateway.mqtt.transport import InboundMessage
from gateway.storage import Database

PREFIX = "ha"
KEY = "light/hall/light"
CONFIG = {
    "schema": "json",
    "command_topic": "hall/set",
    "state_topic": "hall/state",
    "availability_topic": "hall/availability",
    "brightness": True,
    "device": {"identifiers": ["hall"]},
}


def _message(topic: str, payload: bytes, *, retain: bool = False) -> InboundMessage:
    return InboundMessage(topic, payload, retain, 0)


async def test_each_change_is_one_state_event_and_the_row_holds_the_last(tmp_path: Path) -> None:
    clock = ManualClock()
    registry = Registry(PREFIX, clock, Metrics())
    stored: set[str] = set()
    pending = PendingChanges(stored.__contains__)
    registry.add_change_listener(pending)
    config = parse_config(Component.LIGHT, json.dumps(CONFIG).encode())
    assert isinstance(config, LightConfig)
    registry.handle(_message(f"{PREFIX}/{KEY}/config", config.to_payload(), retain=True))
    async with Database(tmp_path / "db.sqlite3") as db:
        first = pending.take()
        await db.run(partial(write_batch_rows, batch=first))
        stored.update(r.key for r in first.rows)
        reports = [b'{"state":"ON","brightness":10}', b'{"brightness":10}', b'{"state":"OFF"}', b'{"brightness":"x"}']
        times = []
        for payload in reports:
            clock.advance(timedelta(seconds=1))
            times.append(clock.now())
            registry.handle(_message("hall/state", payload))
        clock.advance(timedelta(seconds=1))
        registry.handle(_message("hall/availability", b"online"))
        batch = pending.take()
        assert [r.key for r in batch.reported] == [KEY] and not batch.rows  # only the reported columns
        await db.run(partial(write_batch_rows, batch=batch))
        check = await db.run(lambda d: d.execute("SELECT state_at, last_seen FROM current_entities").fetchone())
        assert check == (times[2].isoformat(), (times[3] + timedelta(seconds=1)).isoformat())
        clock.advance(timedelta(seconds=1))
        times.append(clock.now())
        registry.handle(_message("hall/state", b'{"state":"ON"}'))  # its row's times are its event's
        await db.run(partial(write_batch_rows, batch=pending.take()))
    with sqlite3.connect(tmp_path / "db.sqlite3") as conn:
        sql = "SELECT at, type, data FROM all_events WHERE entity_key = ? ORDER BY id"
        events = conn.execute(sql, [KEY]).fetchall()
        row = conn.execute(
            "SELECT state, state_at, state_error, available, availability_at, last_seen FROM current_entities "
            "WHERE key = ?",
            [KEY],
        ).fetchone()
    on = LightState(on=True, brightness=10)
    off = LightState(on=False, brightness=10)
    again = LightState(on=True, brightness=10)
    states = [(at, data) for at, type_, data in events if type_ == "state"]
    # the repeat of the same state is no change, and the refused report is no state
    assert states == [
        (times[0].isoformat(), on.model_dump_json()),
        (times[2].isoformat(), off.model_dump_json()),
        (times[4].isoformat(), again.model_dump_json()),
    ]
    assert [t for _, t, _ in events] == ["discovered", "state", "state", "rejected", "online", "state"]
    online_at = times[3] + timedelta(seconds=1)
    assert row == (again.model_dump_json(), times[4].isoformat(), None, 1, online_at.isoformat(), times[4].isoformat())
