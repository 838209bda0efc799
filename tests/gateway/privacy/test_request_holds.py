"""A privacy request waiting for staff keeps its resident's unit history from the retention purge; the other unit's
aged history goes (read from the SQLite file itself)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from tests.support.api import OPERATOR, Api, bearer, building

pytestmark = pytest.mark.parametrize("broker", ["embedded"], indirect=True)


def _old_events(path: Path, unit: str, before: str) -> int:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(
            "SELECT count(*) FROM all_events WHERE entity_key LIKE ? AND at < ?", (f"%/{unit}-%", before)
        ).fetchone()
        return int(row[0])
    finally:
        conn.close()


async def test_an_open_deletion_request_keeps_the_unit_history_the_purge_takes_elsewhere(
    clock: ManualClock, api: Api
) -> None:
    async with building(api) as b:
        r = await api.http.post("/me/privacy-requests", json={"kind": "deletion"}, headers=bearer(b.alice))
        assert r.status_code == 201, r.text
        await api.gateway.persister.flush()
        cutoff = (clock.now() + timedelta(seconds=1)).isoformat()
        path = api.gateway.db.path
        assert _old_events(path, "u101", cutoff) > 0 and _old_events(path, "u102", cutoff) > 0
        clock.advance(timedelta(days=45))  # past the 30 days device history is kept by default
        operator = await api.login(OPERATOR)
        r = await api.http.post("/operator/storage/purge", headers=bearer(operator))
        assert r.status_code == 200, r.text
        assert r.json()["deleted"]["events"] > 0
        assert _old_events(path, "u102", cutoff) == 0, "bob's unit: purged"
        assert _old_events(path, "u101", cutoff) > 0, "alice's unit: held by her open request"
