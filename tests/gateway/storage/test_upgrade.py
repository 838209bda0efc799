"""Databases left by every earlier schema version open with today's code: migrated, intact, every row kept, and the
gateway runs on them (the files are made once by ``tests/fixtures/databases/make.py`` and never again)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from gateway.storage import Database
from gateway.storage.migrations import MIGRATIONS
from tests.fixtures.databases import make
from tests.support.api import ApiFactory, bearer

FIXTURES = sorted(make.HERE.glob("v*.sqlite3"), key=make.version_of)
Rows = dict[str, tuple[list[str], list[tuple[Any, ...]]]]


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]


def _rows(conn: sqlite3.Connection) -> Rows:
    """Every table's columns and rows (in rowid order)."""
    out: Rows = {}
    for table in _tables(conn):
        cursor = conn.execute(f"SELECT * FROM {table} ORDER BY rowid")
        out[table] = ([c[0] for c in cursor.description], cursor.fetchall())
    return out


def _schema(conn: sqlite3.Connection) -> set[tuple[str, str, str]]:
    return {(r[0], r[1], r[2] or "") for r in conn.execute("SELECT type, name, sql FROM sqlite_master")}


def test_there_is_a_database_of_every_earlier_schema_version() -> None:
    # The latest version may be new on this branch (its file is made with it); every one before it has shipped.
    versions = [make.version_of(p) for p in FIXTURES]
    assert set(range(1, len(MIGRATIONS))) <= set(versions), f"run python -m tests.fixtures.databases.make: {versions}"
    for path in FIXTURES:
        with _read_only(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == make.version_of(path)
            empty = [t for t, (_, rows) in _rows(conn).items() if not rows]
            assert not empty, f"{path.name}: tables without a representative row: {empty}"


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
async def test_an_old_database_is_migrated_to_the_latest_version_keeping_every_row(
    fixture: Path, tmp_path: Path
) -> None:
    with _read_only(fixture) as conn:
        before = _rows(conn)
    copy = tmp_path / "gateway.sqlite3"
    shutil.copyfile(fixture, copy)

    def inspect(db: sqlite_utils.Database) -> tuple[int, str, list[Any], Rows]:
        conn = db.conn
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        integrity = str(conn.execute("PRAGMA integrity_check").fetchone()[0])
        return version, integrity, conn.execute("PRAGMA foreign_key_check").fetchall(), _rows(conn)

    async with Database(copy) as database:
        version, integrity, broken_references, after = await database.run(inspect)
        schema = await database.run(lambda db: _schema(db.conn))

    assert version == len(MIGRATIONS)
    assert integrity == "ok"
    assert broken_references == []
    for table, (columns, rows) in before.items():
        assert table in after, f"table {table} is gone"
        now_columns, now_rows = after[table]
        kept = [c for c in columns if c in now_columns]
        assert kept == columns, f"{table} lost columns {set(columns) - set(kept)}"
        picked = [tuple(row[now_columns.index(c)] for c in columns) for row in now_rows]
        assert picked == rows, f"{table}: rows changed"
    fresh = tmp_path / "fresh.sqlite3"
    async with Database(fresh) as database:
        assert await database.run(lambda db: _schema(db.conn)) == schema, "an upgraded schema differs from a new one"


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
async def test_the_gateway_runs_on_an_upgraded_database_and_serves_its_devices_and_accounts(
    fixture: Path, tmp_path: Path, start_api: ApiFactory
) -> None:
    shutil.copyfile(fixture, tmp_path / "gateway.sqlite3")  # where make_gateway keeps its database
    with _read_only(fixture) as conn:
        tables = set(_tables(conn))
    async with start_api() as api:
        op = bearer(api.operator)
        if "units" in tables:  # the device is bound to unit a of property p1, which maria manages
            manager = bearer(await api.login("maria.manager", make.PASSWORD))
            r = await api.http.get("/properties/p1/units/a", headers=manager)
            assert r.status_code == 200, r.text
            devices = {d["id"]: d for d in r.json()["devices"]}
        else:  # before properties existed: every device is unbound
            r = await api.http.post("/properties", json={"id": "p1", "name": "Elm Court"}, headers=op)
            assert r.status_code == 201, r.text
            manager = bearer(await api.staff("maria.manager", "manager", "p1"))
            r = await api.http.get("/properties/p1/devices/unbound", headers=manager)
            assert r.status_code == 200, r.text
            devices = {d["id"]: d for d in r.json()}
        light = devices[make.DEVICE]
        assert (light["name"], light["model"]) == ("u101 light", "fwsim on/off light")
        assert [(e["id"], e["state"]["on"]) for e in light["entities"]] == [("light.u101-light.light", True)]

        r = await api.http.get("/operator/accounts", headers=op)
        assert r.status_code == 200, r.text
        accounts = {a["username"]: a for a in r.json()}
        assert accounts[make.OPERATOR["username"]]["role"] == "operator"
        if "accounts" in tables:
            assert accounts[make.OPERATOR["username"]]["id"] == make.OPERATOR["id"]
            alice = accounts[make.RESIDENT["username"]]
            assert (alice["id"], alice["unit_id"], alice["status"]) == (make.RESIDENT["id"], "a", "active")
            app = {"X-App-Version": "1.2.0"}  # the minimum the fixture's operator set (from version 3 on)
            body = {"username": make.RESIDENT["username"], "password": make.PASSWORD}
            r = await api.http.post("/auth/login", json=body, headers=app)
            assert r.status_code == 200, r.text
            r = await api.http.get("/me", headers={**bearer(r.json()["token"]), **app})
            assert r.status_code == 200, r.text
            assert r.json()["id"] == make.RESIDENT["id"]
