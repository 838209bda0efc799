"""Appended history (``storage.staging``): the views read the same before and after a merge, ids continue, the
latest report wins and never overwrites a newer whole row, appended rows survive a stop without a merge, and the
purge and the anonymisation reach them too."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from devices import Component, LightConfig, parse_config
from gateway.building.store import anonymise_actor, unit_events
from gateway.clock import ManualClock
from gateway.core.metrics import Metrics
from gateway.core.persister import Persister
from gateway.core.registry import Registry
from gateway.mqtt.transport import InboundMessage
from gateway.retention.store import HeldIds, purge_removed_devices
from gateway.storage import Database, DeviceRow, EntityRow, EventRow
from gateway.storage.records import EntityStateRow, load_entities, write_batch
from gateway.storage.staging import merge_staged, staged_rows

KEY = "light/hall/light"
T0 = "2026-12-04T10:00:00+00:00"


def _at(second: int) -> str:
    return f"2026-12-04T10:00:{second:02d}+00:00"


def _entity(state: str | None = None, at: str | None = None, removed_at: str | None = None) -> EntityRow:
    return EntityRow(
        KEY, "hall", "light", "light", "hall-light", "Hall", "{}", T0, removed_at, state, at, None, None, 1, at, at
    )


def _report(state: str, at: str) -> EntityStateRow:
    return EntityStateRow(state, at, None, None, 1, at, at, KEY)


def _event(second: int, data: dict[str, Any] | None = None, type_: str = "state") -> EventRow:
    return EventRow(_at(second), KEY, type_, json.dumps(data or {"state": "ON", "n": second}))


def _setup(db: sqlite_utils.Database) -> None:
    write_batch(db, [DeviceRow("hall", "Hall", None, None, None, T0)], [_entity()], [])


def _tables(db: sqlite_utils.Database) -> dict[str, list[tuple[Any, ...]]]:
    return {
        name: db.execute(f"SELECT * FROM {name} ORDER BY 1").fetchall()
        for name in ("events", "events_recent", "entity_reports", "all_events")
    }


async def test_a_merge_moves_every_appended_row_and_changes_nothing_the_views_read(tmp_path: Path) -> None:
    async with Database(tmp_path / "db.sqlite3") as db:
        await db.run(_setup)
        await db.run(lambda d: write_batch(d, [], [], [_event(1), _event(2)], [_report('{"a":1}', _at(2))]))
        await db.run(lambda d: write_batch(d, [], [], [_event(3)], [_report('{"a":2}', _at(3))]))
        before = await db.run(_tables)
        assert not before["events"] and [r[0] for r in before["events_recent"]] == [1, 2, 3]
        assert len(before["entity_reports"]) == 2
        entity_before = await db.run(load_entities)
        assert (entity_before[0].state, entity_before[0].state_at) == ('{"a":2}', _at(3))  # the latest report
        assert await db.run(staged_rows) == 5

        assert await db.run(merge_staged) == 5
        after = await db.run(_tables)
        assert after["all_events"] == before["all_events"]
        assert after["events"] == before["events_recent"] and not after["events_recent"]
        assert not after["entity_reports"]
        assert await db.run(load_entities) == entity_before
        row = await db.run(lambda d: d.execute("SELECT state, state_at FROM entities").fetchone())
        assert row == ('{"a":2}', _at(3))  # the entity's own row now

        # the next appended event continues the ids
        await db.run(lambda d: write_batch(d, [], [], [_event(4)]))
        assert [r[0] for r in (await db.run(_tables))["all_events"]] == [1, 2, 3, 4]


async def test_appended_rows_survive_a_stop_without_a_merge(tmp_path: Path) -> None:
    async with Database(tmp_path / "db.sqlite3") as db:
        await db.run(_setup)
        await db.run(lambda d: write_batch(d, [], [], [_event(1)], [_report('{"a":1}', _at(1))]))
    async with Database(tmp_path / "db.sqlite3") as db:  # as after a crash: nothing merged
        assert await db.run(staged_rows) == 2
        entity = (await db.run(load_entities))[0]
        assert (entity.state, entity.last_seen) == ('{"a":1}', _at(1))
        assert len((await db.run(_tables))["all_events"]) == 1


async def test_a_whole_row_is_not_overwritten_by_an_older_appended_report(tmp_path: Path) -> None:
    async with Database(tmp_path / "db.sqlite3") as db:
        await db.run(_setup)
        await db.run(lambda d: write_batch(d, [], [], [], [_report('{"old":1}', _at(1))]))
        # removed later: its whole row carries its newest state
        await db.run(lambda d: write_batch(d, [], [_entity('{"new":1}', _at(5), removed_at=_at(6))], []))
        await db.run(merge_staged)
        entity = (await db.run(load_entities))[0]
        assert (entity.state, entity.state_at, entity.removed_at) == ('{"new":1}', _at(5), _at(6))


async def test_the_purge_of_a_removed_device_reaches_its_appended_rows(tmp_path: Path) -> None:
    async with Database(tmp_path / "db.sqlite3") as db:
        await db.run(_setup)
        await db.run(lambda d: write_batch(d, [], [_entity(removed_at=_at(1))], [_event(1)]))
        await db.run(lambda d: write_batch(d, [], [], [_event(2)], [_report('{"a":1}', _at(2))]))
        await db.run(merge_staged)
        await db.run(lambda d: write_batch(d, [], [], [_event(3)], [_report('{"a":2}', _at(3))]))
        purged = await db.run(lambda d: purge_removed_devices(d, "2026-12-05T00:00:00+00:00", HeldIds(), 10))
        assert purged == 1
        tables = await db.run(_tables)
        assert tables == {"events": [], "events_recent": [], "entity_reports": [], "all_events": []}
        assert await db.run(load_entities) == []


async def test_anonymisation_and_a_units_history_reach_appended_events(tmp_path: Path) -> None:
    command = {"command_id": "c1", "actor": "account:carol"}
    async with Database(tmp_path / "db.sqlite3") as db:
        await db.run(_setup)

        def bind(d: sqlite_utils.Database) -> None:
            d.execute("INSERT INTO properties (id, name, created_at) VALUES ('p1', 'Elm Court', ?)", [T0])
            d.execute("INSERT INTO units (id, property_id, label, created_at) VALUES ('u1', 'p1', '1', ?)", [T0])
            d.execute(
                "INSERT INTO bindings (device_id, unit_id, bound_at, bound_by) VALUES ('hall', 'u1', ?, 's')", [_at(0)]
            )

        await db.run(bind)
        await db.run(lambda d: write_batch(d, [], [], [_event(1, command, "command")]))
        await db.run(merge_staged)
        await db.run(lambda d: write_batch(d, [], [], [_event(2, command, "command"), _event(3)]))
        history = await db.run(lambda d: unit_events(d, "u1", T0, None, 10))
        assert [e["id"] for e in history] == [3, 2, 1]  # newest first, appended and merged alike
        assert [e["id"] for e in await db.run(lambda d: unit_events(d, "u1", T0, 3, 1))] == [2]
        assert await db.run(lambda d: anonymise_actor(d, "account:carol", "former-resident")) == 2
        actors = await db.run(
            lambda d: d.execute(
                "SELECT json_extract(data, '$.actor') FROM all_events WHERE type = 'command'"
            ).fetchall(),
        )
        assert actors == [("former-resident",), ("former-resident",)]


async def test_the_persister_merges_once_enough_rows_were_appended(tmp_path: Path) -> None:
    clock = ManualClock()
    registry = Registry("ha", clock, Metrics())
    config = parse_config(Component.LIGHT, b'{"schema":"json","command_topic":"hall/set","state_topic":"hall/state"}')
    assert isinstance(config, LightConfig)
    async with Database(tmp_path / "db.sqlite3") as db:
        persister = Persister(registry, db, 0.1, merge_rows=6)
        registry.handle(InboundMessage(f"ha/{KEY}/config", config.to_payload(), True, 0))
        await persister.flush()

        def counts(d: sqlite_utils.Database) -> tuple[int, int]:
            return tuple(d.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("events", "events_recent"))

        seen: list[tuple[int, int]] = []
        for n in range(4):  # each change: an event and the entity's reported columns appended
            clock.advance(timedelta(seconds=1))
            registry.handle(InboundMessage("hall/state", f'{{"state":"ON","brightness":{n + 1}}}'.encode(), False, 0))
            await persister.flush()
            await persister.merge_if_due()
            seen.append(await db.run(counts))
    # the discovery's own event, then 2 rows a change: nothing merged before 6 rows, all of it at 7, then appending
    assert seen == [(0, 2), (0, 3), (4, 0), (4, 1)]
    with sqlite3.connect(tmp_path / "db.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM all_events WHERE type = 'state'").fetchone() == (4,)
        assert conn.execute("SELECT count(*) FROM entity_reports").fetchone() == (1,)
        state = conn.execute("SELECT state FROM current_entities").fetchone()[0]
    assert json.loads(state)["brightness"] == 4
