"""Retention and the size budget through the real API, with the injectable clock (months pass in milliseconds), and
what is stored read from the SQLite file itself."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from gateway.clock import ManualClock
from gateway.config import PurgeSettings
from gateway.retention import Category, Hold
from gateway.storage.records import DeviceRow, EntityRow, EventRow, write_batch
from tests.support.api import OPERATOR, Api, ApiFactory, bearer, problem
from tests.support.gateway import GatewayFactory
from tests.support.polling import until

pytestmark = pytest.mark.parametrize("broker", ["embedded"], indirect=True)

ENTITY = "light.ret-dev.light"


def _file(api: Api) -> Path:
    return api.gateway.db.path


def _query(path: Path, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Read the database file directly (a second connection, as any tool would)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


async def _events(api: Api, count: int, pad: int = 150) -> None:
    """Store ``count`` state changes of one entity now (through the persister's own write), ``pad`` bytes each."""
    at = api.clock.now().isoformat()
    device = DeviceRow("ret-dev", "dev", None, None, None, at)
    entity = EntityRow(
        ENTITY, "ret-dev", "light", "light", None, None, "{}", at, None, None, None, None, None, None, None, None
    )
    events = [EventRow(at, ENTITY, "state", {"on": i % 2 == 0, "pad": "x" * pad}) for i in range(count)]
    for start in range(0, count, 5000):
        chunk = events[start : start + 5000]
        await api.gateway.db.run(partial(write_batch, devices=[device], entities=[entity], events=chunk))


async def _purge(api: Api) -> dict[str, Any]:
    """A purge pass now, asked by the operator (signed in afresh: the clock may have outrun the session)."""
    api.operator = await api.login(OPERATOR)
    r = await api.http.post("/operator/storage/purge", headers=bearer(api.operator))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_the_operator_reads_and_changes_retention_and_it_persists_and_is_audited(api: Api) -> None:
    op = bearer(api.operator)
    r = await api.http.get("/operator/storage/retention", headers=op)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["days"] == body["defaults"]
    assert body["days"]["audit"] == max(body["days"].values()), "the audit log is kept longest"
    assert body["minimum"]["connectivity"] >= 38, "compliance reads a month of outages and the grace after it"

    r = await api.http.put(
        "/operator/storage/retention", json={"days": {"events": 7}, "budget_bytes": 2**30}, headers=op
    )
    assert r.status_code == 200, r.text
    assert (r.json()["days"]["events"], r.json()["budget_bytes"]) == (7, 2**30)

    stored = _query(_file(api), "SELECT key, value, updated_by FROM retention_settings ORDER BY key")
    account = (await api.http.get("/me", headers=op)).json()["id"]
    assert stored == [("budget_bytes", 2**30, f"account:{account}"), ("events", 7, f"account:{account}")]
    r = await api.http.get("/operator/audit", headers=op)
    updates = [e for e in r.json()["entries"] if e["action"] == "retention.update"]
    assert updates and updates[0]["detail"] == {"events": 7, "budget_bytes": 2**30}

    # the rules, by their codes; nothing changes
    for change, code in (
        ({"days": {"connectivity": 10}}, "retention_out_of_range"),
        ({"days": {"audit": 300}}, "retention_out_of_range"),
        ({"days": {"commands": 3000}}, "audit_retention_shortest"),
        ({"budget_bytes": 1000}, "budget_too_small"),
        ({"watermark_percent": 5}, "watermark_out_of_range"),
    ):
        problem(await api.http.put("/operator/storage/retention", json=change, headers=op), 422, code)
    problem(
        await api.http.put("/operator/storage/retention", json={"days": {"nope": 3}}, headers=op),
        422,
        "validation_failed",
    )
    assert _query(_file(api), "SELECT count(*) FROM retention_settings") == [(2,)]


async def test_retention_survives_a_restart(start_api: ApiFactory) -> None:
    async with start_api() as api:
        r = await api.http.put(
            "/operator/storage/retention", json={"days": {"commands": 45}}, headers=bearer(api.operator)
        )
        assert r.status_code == 200, r.text
    async with start_api() as api:
        r = await api.http.get("/operator/storage/retention", headers=bearer(api.operator))
        assert r.json()["days"]["commands"] == 45


async def test_only_the_operator_sees_or_sets_storage(api: Api) -> None:
    r = await api.http.post("/properties", json={"id": "p9", "name": "Elm"}, headers=bearer(api.operator))
    assert r.status_code == 201, r.text
    manager = bearer(await api.staff("ret.manager", "manager", "p9"))
    problem(await api.http.get("/operator/storage", headers=manager), 403, "role_forbidden")
    problem(
        await api.http.put("/operator/storage/retention", json={"days": {"events": 1}}, headers=manager),
        403,
        "role_forbidden",
    )
    problem(await api.http.post("/operator/storage/purge", headers=manager), 403, "role_forbidden")


async def test_aged_history_is_purged_and_the_file_gives_the_space_back(api: Api) -> None:
    path = _file(api)
    assert _query(path, "PRAGMA auto_vacuum") == [(2,)], "incremental auto-vacuum from the start"
    await _events(api, 30_000)
    api.clock.advance(timedelta(days=20))
    await _events(api, 100)
    await _purge(api)  # nothing is 30 days old yet
    mine = f"FROM all_events WHERE entity_key = '{ENTITY}'"
    assert _query(path, f"SELECT count(*) {mine}") == [(30_100,)]
    big = path.stat().st_size

    api.clock.advance(timedelta(days=11))  # the first 30,000 are now 31 days old; the last 100, 11
    report = await _purge(api)
    assert report["deleted"]["events"] >= 30_000 and report["pages_freed"] > 0
    assert _query(path, f"SELECT count(*), min(at) {mine}") == [
        (100, (api.clock.now() - timedelta(days=11)).isoformat())
    ]
    assert _query(path, "PRAGMA freelist_count") == [(0,)]
    assert path.stat().st_size < big / 3, (path.stat().st_size, big)

    r = await api.http.get("/operator/storage", headers=bearer(api.operator))
    body = r.json()
    assert body["state"] == "ok" and body["auto_vacuum"] == "incremental" and body["trouble"] is None
    assert body["last_purge"]["deleted"]["events"] >= 30_000
    assert body["used_bytes"] <= body["file_bytes"]


async def test_sign_in_failures_for_unknown_names_are_forgotten_but_a_held_account_keeps_its_own(api: Api) -> None:
    r = await api.http.post("/properties", json={"id": "p9", "name": "Elm"}, headers=bearer(api.operator))
    assert r.status_code == 201, r.text
    await api.staff("held.manager", "manager", "p9")
    held = [
        a["id"]
        for a in (await api.http.get("/operator/accounts", headers=bearer(api.operator))).json()
        if a["username"] == "held.manager"
    ]

    class Holds:
        async def holds(self) -> list[Hold]:
            return [Hold("open access request", account_ids=frozenset(held))]

    api.services.retention.add_hold_source(Holds())
    for name in ("ghost-1", "ghost-2", "held.manager"):
        r = await api.http.post("/auth/login", json={"username": name, "password": "wrong wrong wrong"})
        assert r.status_code == 401, r.text
    path = _file(api)
    assert {r[0] for r in _query(path, "SELECT username FROM login_attempts")} == {"ghost-1", "ghost-2", "held.manager"}
    api.clock.advance(timedelta(days=2))
    report = await _purge(api)
    assert report["deleted"]["sign_in_attempts"] == 4  # two tables, two unknown names
    assert _query(path, "SELECT username FROM login_attempts") == [("held.manager",)]
    assert _query(path, "SELECT username FROM login_attempts_by_source") == [("held.manager",)]


async def test_a_category_wide_hold_keeps_everything_of_it(api: Api) -> None:
    class Freeze:
        async def holds(self) -> list[Hold]:
            return [Hold("litigation", categories=frozenset({Category.EVENTS}))]

    api.services.retention.add_hold_source(Freeze())
    await _events(api, 500)
    api.clock.advance(timedelta(days=90))
    report = await _purge(api)
    assert report["deleted"]["events"] == 0
    assert _query(_file(api), f"SELECT count(*) FROM all_events WHERE entity_key = '{ENTITY}'") == [(500,)]


async def test_past_the_watermark_history_is_thinned_first_and_the_state_is_visible(api: Api) -> None:
    op = bearer(api.operator)
    path = _file(api)
    audit_before = _query(path, "SELECT count(*) FROM audit_log")[0][0]
    await _events(api, 60_000, pad=200)  # ~17 MB: past a 16 MiB budget's 50 % watermark
    r = await api.http.put(
        "/operator/storage/retention", json={"budget_bytes": 16 * 2**20, "watermark_percent": 50}, headers=op
    )
    assert r.status_code == 200, r.text

    # the change wakes the purge: it thins at once, in the background
    async def thinned() -> bool:
        body = (await api.http.get("/operator/storage", headers=op)).json()
        return body["last_purge"] is not None and body["last_purge"]["thinned"].get("events", 0) > 0

    await until(thinned, timeout=30, what="the background purge thinning the events")
    body = (await api.http.get("/operator/storage", headers=op)).json()
    assert body["state"] == "ok", body
    assert body["used_bytes"] <= 16 * 2**20 * 40 // 100
    left = _query(path, "SELECT count(*), min(id) FROM all_events")[0]
    assert 0 < left[0] < 60_000 and left[1] > 1, "the oldest went first"
    # nothing else was thinned: the audit log only grew (the change itself)
    assert _query(path, "SELECT count(*) FROM audit_log")[0][0] == audit_before + 1


async def test_the_purge_runs_without_the_api(make_gateway: GatewayFactory, clock: ManualClock) -> None:
    async with make_gateway.services(purge=PurgeSettings(tick_seconds=0.05, pause_seconds=0)) as services:
        # an audited action, then seven years and a day
        await services.accounts.create_operator("ops2", "a long enough passphrase", created_by="test")
        path = services.gateway.db.path

        def rows() -> int:
            return int(_query(path, "SELECT count(*) FROM audit_log")[0][0])

        before = rows()
        assert before > 0
        clock.advance(timedelta(days=2558))

        async def gone() -> bool:
            return rows() == 0

        await until(gone, timeout=10, what="the background purge removing the aged audit log")


async def test_when_a_hold_source_fails_nothing_is_purged(api: Api) -> None:
    class Broken:
        async def holds(self) -> list[Hold]:
            raise RuntimeError("the requests store is unreachable")

    api.services.retention.add_hold_source(Broken())
    await _events(api, 100)
    api.clock.advance(timedelta(days=60))
    report = await _purge(api)
    assert not any(report["deleted"].values())
    assert _query(_file(api), f"SELECT count(*) FROM all_events WHERE entity_key = '{ENTITY}'") == [(100,)]
