"""Each category's purge keeps what the gateway's rules still read: a unit's latest and latest passed self-test, open
outages, undelivered reports, the audit log; and a removed device goes with its whole history."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from gateway.retention import Category, store
from gateway.storage import Database
from tests.support.api import OPERATOR, Api, bearer

EMBEDDED = pytest.mark.parametrize("broker", ["embedded"], indirect=True)


def _ids(path: Path, sql: str) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute(sql)]
    finally:
        conn.close()


@EMBEDDED
async def test_each_category_keeps_what_the_rules_still_need(api: Api) -> None:
    op = bearer(api.operator)
    r = await api.http.post("/properties", json={"id": "p9", "name": "Elm"}, headers=op)
    assert r.status_code == 201, r.text
    manager = bearer(await api.staff("cat.manager", "manager", "p9"))
    r = await api.http.post("/properties/p9/units", json={"id": "u9", "label": "9"}, headers=manager)
    assert r.status_code == 201, r.text
    t0 = api.clock.now()

    def at(days: float) -> str:
        return (t0 + timedelta(days=days)).isoformat()

    def seed(db: sqlite_utils.Database) -> None:
        c = db.conn
        tests = [("A", 0, 1), ("B", 1, 0), ("C", 2, 1), ("D", 3, 0)]  # D the latest (failed), C the latest passed
        for name, day, passed in tests:
            c.execute(
                "INSERT INTO self_tests VALUES (?, 'u9', 'resident', NULL, ?, ?, ?, '{}')",
                (name, at(day), at(day), passed),
            )
        c.execute(
            "INSERT INTO outages (id, kind, started_at, ended_at, cause) VALUES (1, 'power', ?, ?, 'x')", (at(0), at(1))
        )
        c.execute(
            "INSERT INTO outages (id, kind, started_at, ended_at, cause) VALUES (2, 'broadband', ?, NULL, 'x')",
            (at(0),),
        )
        for rid, delivered in (("sent", at(1)), ("pending", None)):
            c.execute(
                "INSERT INTO reports (id, idempotency_key, kind, unit_id, created_at, body, delivered_at) "
                "VALUES (?, ?, 'self_test_failed', 'u9', ?, '{}', ?)",
                (rid, rid, at(0), delivered),
            )
        c.execute(
            "INSERT INTO notifications (unit_id, key, kind, message, data, created_at) "
            "VALUES ('u9', 'n1', 'k', 'm', '{}', ?)",
            (at(0),),
        )
        # a device whose only entity was removed long ago, with its state history and a command
        c.execute("INSERT INTO devices (id, first_seen) VALUES ('gone', ?)", (at(0),))
        c.execute(
            "INSERT INTO entities (key, device_id, component, kind, config, discovered_at, removed_at) "
            "VALUES ('light.gone.light', 'gone', 'light', 'light', '{}', ?, ?)",
            (at(0), at(1)),
        )
        c.execute(
            "INSERT INTO events (at, entity_key, type, data) VALUES (?, 'light.gone.light', 'state', '{}')", (at(1),)
        )
        c.execute(
            "INSERT INTO commands (id, entity_key, actor, command, status, created_at, finished_at) "
            "VALUES ('c1', 'light.gone.light', 'account:x', '{}', 'confirmed', ?, ?)",
            (at(0), at(0)),
        )

    await api.gateway.db.run(seed)
    path = api.gateway.db.path
    audit = len(_ids(path, "SELECT id FROM audit_log"))
    api.clock.advance(timedelta(days=500))
    api.operator = await api.login(OPERATOR)  # the first session has long expired
    r = await api.http.post("/operator/storage/purge", headers=bearer(api.operator))
    assert r.status_code == 200, r.text
    deleted = r.json()["deleted"]

    assert _ids(path, "SELECT id FROM self_tests ORDER BY id") == ["C", "D"]
    assert _ids(path, "SELECT id FROM outages") == [2], "an outage still going on stays"
    assert _ids(path, "SELECT id FROM reports") == ["pending"], "a report not yet delivered stays"
    assert _ids(path, "SELECT count(*) FROM notifications") == [0]
    assert _ids(path, "SELECT id FROM devices WHERE id = 'gone'") == []
    assert _ids(path, "SELECT count(*) FROM all_events WHERE entity_key = 'light.gone.light'") == [0]
    assert _ids(path, "SELECT count(*) FROM commands WHERE id = 'c1'") == [0]
    # only the sessions that ended went: the operator's and the manager's first ones (30-day lifetime)
    assert len(_ids(path, "SELECT id FROM sessions")) == 1
    assert len(_ids(path, "SELECT id FROM audit_log")) >= audit, "the audit log is kept seven years"
    assert deleted["self_tests"] == 2 and deleted["connectivity"] == 1 and deleted["reports"] == 1
    assert deleted["removed_devices"] == 1 and deleted["sessions"] == 2 and deleted["audit"] == 0


async def test_a_row_naming_no_one_is_not_held_by_a_hold_on_someone(tmp_path: Path) -> None:
    """A gateway-wide event (no entity) and a system audit entry are purged while holds on others are in force."""
    async with Database(tmp_path / "db.sqlite3") as db:

        def seed(d: sqlite_utils.Database) -> None:
            d.conn.execute("INSERT INTO events (at, entity_key, type, data) VALUES ('2020-01-01', NULL, 'power', '{}')")
            d.conn.execute("INSERT INTO audit_log (at, action, detail) VALUES ('2010-01-01', 'x', '{}')")

        await db.run(seed)
        held = store.HeldIds(units=("u",), accounts=("a",), usernames=("n",), entities=("light.x.light",))
        for category in (Category.EVENTS, Category.AUDIT):
            deleted = 0
            for plan in store.PLANS[category]:  # events: the merged and the appended table (storage.staging)
                window = partial(store.delete_window, plan=plan, start=0, end=100, cutoff="2021", now="2021", held=held)
                deleted += await db.run(window)
            assert deleted == 1, category
