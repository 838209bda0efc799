"""Residents' privacy rights through HTTP: the export, correction, requests handled to an answer with an appeal,
the disclosure log, and an erasure checked in the database file's bytes."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from gateway.clock import ManualClock
from gateway.privacy import pseudonym_of
from tests.support.api import OPERATOR, Api, accept, bearer, building, command, problem
from tests.support.brokers import BrokerHandle
from tests.support.checks import Webhook, checked_building, delivered
from tests.support.gateway import GatewayFactory
from tests.support.polling import until

pytestmark = pytest.mark.parametrize("broker", ["embedded"], indirect=True)


async def export(api: Api, token: str) -> dict[str, Any]:
    """GET /me/data-export, checked to be a streamed JSON download; the parsed document."""
    async with api.http.stream("GET", "/me/data-export", headers=bearer(token)) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert "content-length" not in r.headers  # streamed (chunked), not one prepared body
        assert r.headers["content-disposition"].startswith("attachment")
        raw = b"".join([chunk async for chunk in r.aiter_bytes()])
    body: dict[str, Any] = json.loads(raw)
    return body


async def file(api: Api, token: str, kind: str, detail: str | None = None) -> dict[str, Any]:
    """File a privacy request as a resident."""
    r = await api.http.post("/me/privacy-requests", json={"kind": kind, "detail": detail}, headers=bearer(token))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def answer(api: Api, token: str, request_id: str, outcome: str, **extra: Any) -> dict[str, Any]:
    """Answer a request as staff."""
    r = await api.http.post(
        f"/privacy/requests/{request_id}/answer",
        json={"outcome": outcome, "answer": f"{outcome}ed", **extra},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def actions(api: Api) -> list[str]:
    """The audit log's actions, oldest first."""
    r = await api.http.get("/operator/audit", params={"limit": 500}, headers=bearer(api.operator))
    return [e["action"] for e in reversed(r.json()["entries"])]


async def test_the_export_holds_my_data_and_nothing_of_anyone_else(api: Api) -> None:
    async with building(api) as b:
        r = await command(api, b.alice, b.entity("a", "light", "light"), {"on": True})
        assert r.status_code == 200, r.text
        mine = r.json()["id"]
        r = await command(api, b.bob, b.entity("b", "light", "light"), {"on": True})
        assert r.status_code == 200, r.text
        theirs = r.json()["id"]
        r = await api.http.post("/me/agreement/arbitration-opt-out", headers=bearer(b.alice))
        assert r.status_code in (200, 201), r.text
        await api.services.gateway.persister.flush()

        data = await export(api, b.alice)
        assert data["format"] == "aptgateway-export/1"
        assert data["account"]["username"] == "alice" and data["account"]["id"] == b.alice_id
        assert "password_hash" not in json.dumps(data["account"])
        assert data["sessions"] and all("token_hash" not in s for s in data["sessions"])
        assert [a["version"] for a in data["agreement_acceptances"]] == ["2026-01"]
        assert len(data["arbitration_opt_outs"]) == 1
        commands = {c["id"] for c in data["commands"]}
        assert mine in commands and theirs not in commands
        # The unit's history: unit a's devices only, none from before alice moved in.
        history = data["device_history"]
        assert history, "the light's change is in the history"
        assert all("u101" in e["entity_key"] for e in history), {e["entity_key"] for e in history}
        since = datetime.fromisoformat(data["residency"]["since"])
        assert all(datetime.fromisoformat(e["at"]) >= since for e in history)
        assert any(e["data"].get("actor") == "you" for e in history if e["type"] == "command")
        assert b.bob_id not in json.dumps(data) and "bob" not in json.dumps(data)
        assert any(e["action"] == "privacy.export" and e["actor"] == "you" for e in data["audit"])
        # The export is logged as a disclosure, visible to the resident (and listed in the next export).
        assert [d["kind"] for d in data["disclosures"]] == ["export"]
        r = await api.http.get("/me/disclosures", headers=bearer(b.alice))
        assert [d["kind"] for d in r.json()] == ["export"] and r.json()[0]["reference"] == data["export_id"]
        assert (await api.http.get("/me/disclosures", headers=bearer(b.bob))).json() == []
        assert "privacy.export" in await actions(api)
        # Paged reads: a history longer than one page comes out whole (the page size is small here).
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("gateway.privacy.privacy_service.EXPORT_PAGE", 2)
            again = await export(api, b.alice)
        assert [e["id"] for e in again["device_history"]] == [e["id"] for e in history]
        assert len(again["disclosures"]) == 2


async def test_a_resident_corrects_their_display_name_audited(api: Api) -> None:
    async with building(api) as b:
        r = await api.http.patch("/me/profile", json={"display_name": "Alice Liddell"}, headers=bearer(b.alice))
        assert r.status_code == 200, r.text
        assert r.json()["display_name"] == "Alice Liddell"
        assert (await api.http.get("/me", headers=bearer(b.alice))).json()["display_name"] == "Alice Liddell"
        r = await api.http.patch("/me/profile", json={"display_name": "x" * 200}, headers=bearer(b.alice))
        assert r.status_code == 422
        r = await api.http.patch("/me/profile", json={"username": "root"}, headers=bearer(b.alice))
        assert r.status_code == 422  # only what they may correct
        assert "account.correct" in await actions(api)


async def test_a_request_is_handled_to_an_answer_with_an_appeal(clock: ManualClock, api: Api) -> None:
    async with building(api) as b:
        filed = await file(api, b.alice, "restriction", "please do not process my data")
        assert filed["state"] == "open" and filed["overdue"] is False
        assert datetime.fromisoformat(filed["due_at"]) == clock.now() + timedelta(days=30)
        r = await api.http.post("/me/privacy-requests", json={"kind": "restriction"}, headers=bearer(b.alice))
        problem(r, 409, "request_pending")
        # Managers handle requests only when the operator allows it.
        r = await api.http.get("/privacy/requests", headers=bearer(b.manager))
        problem(r, 403, "privacy_requests_operator_only")
        r = await api.http.get("/privacy/requests", headers=bearer(b.alice))
        problem(r, 403, "role_forbidden")
        r = await api.http.put(
            "/privacy/settings", json={"deadline_days": 20, "managers_handle": True}, headers=bearer(api.operator)
        )
        assert r.status_code == 200, r.text
        r = await api.http.get("/privacy/requests", headers=bearer(b.manager))
        assert [x["id"] for x in r.json()] == [filed["id"]]
        # Bob cannot see alice's request.
        problem(await api.http.get(f"/me/privacy-requests/{filed['id']}", headers=bearer(b.bob)), 404,
                "request_not_found")  # fmt: skip
        r = await api.http.post(f"/privacy/requests/{filed['id']}/take", headers=bearer(b.manager))
        assert r.json()["state"] == "in_progress"
        r = await api.http.post(
            f"/privacy/requests/{filed['id']}/answer", json={"outcome": "refuse", "answer": "no"},
            headers=bearer(b.manager),
        )  # fmt: skip
        problem(r, 422, "refusal_code_required")
        refused = await answer(api, b.manager, filed["id"], "refuse", refusal_code="identity_not_verified")
        assert refused["state"] == "refused" and refused["refusal_code"] == "identity_not_verified"
        mine = (await api.http.get("/me/privacy-requests", headers=bearer(b.alice))).json()
        assert [(x["id"], x["state"]) for x in mine] == [(filed["id"], "refused")]
        # The appeal waits for staff again, with a new deadline (the operator's 20 days now).
        clock.advance(timedelta(days=3))
        r = await api.http.post(
            f"/me/privacy-requests/{filed['id']}/appeal", json={"reason": "I showed my ID"}, headers=bearer(b.alice)
        )
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "appealed"
        assert datetime.fromisoformat(r.json()["due_at"]) == clock.now() + timedelta(days=20)
        granted = await answer(api, api.operator, filed["id"], "grant")
        assert granted["state"] == "granted" and granted["held"] == []
        held = await api.services.privacy.holds()
        assert b.alice_id in held.account_ids and "a" in held.unit_ids
        # While the restriction stands, her activity is kept but not read by staff; revoking still works.
        sessions = f"/operator/accounts/{b.alice_id}/sessions"
        problem(await api.http.get(sessions, headers=bearer(api.operator)), 403, "data_restricted")
        assert (
            await api.http.get(f"/operator/accounts/{b.bob_id}/sessions", headers=bearer(api.operator))
        ).status_code == 200
        r = await api.http.post(
            f"/me/privacy-requests/{filed['id']}/appeal", json={"reason": "again"}, headers=bearer(b.alice)
        )
        problem(r, 409, "request_already_appealed")
        r = await api.http.post(f"/me/privacy-requests/{filed['id']}/withdraw", headers=bearer(b.alice))
        assert r.json()["state"] == "closed"  # the restriction ends with it
        assert (await api.http.get(sessions, headers=bearer(api.operator))).status_code == 200
        assert b.alice_id not in (await api.services.privacy.holds()).account_ids
        problem(await api.http.post(f"/privacy/requests/{filed['id']}/close", headers=bearer(api.operator)), 409,
                "request_not_answered")  # fmt: skip
        problem(await api.http.post(f"/me/privacy-requests/{filed['id']}/withdraw", headers=bearer(b.alice)), 409,
                "request_closed")  # fmt: skip
        # A request past its deadline shows as overdue, to the resident and in the queue.
        late = await file(api, b.alice, "access")
        clock.advance(timedelta(days=21))
        alice, api.operator = await api.login("alice"), await api.login(OPERATOR)  # idle sessions ended meanwhile
        r = await api.http.get(f"/me/privacy-requests/{late['id']}", headers=bearer(alice))
        assert r.json()["overdue"] is True
        assert [x["id"] for x in (await api.http.get("/privacy/requests", headers=bearer(api.operator))).json()] == [
            late["id"]
        ]
        trail = await actions(api)
        for action in ("privacy.request", "privacy.take", "privacy.answer", "privacy.appeal", "privacy.withdraw",
                       "privacy.settings", "privacy.read_queue"):  # fmt: skip
            assert action in trail, action


def stored_bytes(path: Path) -> bytes:
    """The database file and its WAL as they are on disk."""
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")) if p.is_file())


async def test_a_granted_deletion_erases_the_person_from_the_file_but_what_holds_keep(api: Api) -> None:
    async with building(api) as b:
        r = await command(api, b.alice, b.entity("a", "light", "light"), {"on": True})
        assert r.status_code == 200, r.text
        r = await api.http.patch("/me/profile", json={"display_name": "Alice Liddell"}, headers=bearer(b.alice))
        assert r.status_code == 200
        await export(api, b.alice)
        filed = await file(api, b.alice, "deletion", "Alice Liddell (alice) asks to be forgotten")
        path = api.gateway.db.path
        await api.services.gateway.persister.flush()
        before = stored_bytes(path)
        assert b"alice" in before and b.alice_id.encode() in before  # the check below can fail

        granted = await answer(api, api.operator, filed["id"], "grant")
        assert granted["state"] == "granted"
        assert any("acceptances" in h for h in granted["held"]) and any("audit log" in h for h in granted["held"])
        assert any("opt-out" in h for h in granted["held"])
        problem(await api.http.get("/me", headers=bearer(b.alice)), 401, "token_invalid")  # the session is gone
        await api.services.gateway.persister.flush()

        raw = stored_bytes(path)
        for word in ("alice", "Alice Liddell", b.alice_id, f"account:{b.alice_id}"):
            assert word.encode() not in raw, f"{word!r} is still in the database file"
        # What the hold keeps is there, under the pseudonym; bob is untouched.
        pseudonym = pseudonym_of(b.alice_id)
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            assert conn.execute(
                "SELECT count(*) FROM agreement_acceptances WHERE account_id = ?", [pseudonym]
            ).fetchone() == (1,)
            assert conn.execute("SELECT count(*) FROM audit_log WHERE target = ?", [pseudonym]).fetchone()[0] >= 1
            assert conn.execute("SELECT count(*) FROM sessions WHERE account_id = ?", [pseudonym]).fetchone() == (0,)
            kept = conn.execute("SELECT state, detail FROM privacy_requests WHERE id = ?", [filed["id"]]).fetchone()
            assert kept[0] == "granted" and pseudonym in kept[1]
        finally:
            conn.close()
        assert (await api.http.get("/me", headers=bearer(b.bob))).status_code == 200
        assert b"bob" in stored_bytes(path)


async def test_a_report_sent_upstream_about_my_unit_is_a_disclosure_to_me(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    async with (
        Webhook() as hook,
        checked_building(make_gateway, broker, prefix, clock, None, webhook=hook.url, automatic=False) as b,
    ):
        api = b.api
        r = await api.http.post("/me/reports", json={"description": "the light does not answer"},
                                headers=bearer(b.alice))  # fmt: skip
        assert r.status_code == 201, r.text
        report_id = r.json()["id"]
        await until(partial(delivered, hook, 1), what="the report delivered")
        await until(partial(disclosed, api, b.alice), what="the disclosure logged")
        r = await api.http.get("/me/disclosures", headers=bearer(b.alice))
        (entry,) = r.json()
        assert entry["kind"] == "report" and entry["reference"] == report_id
        assert entry["recipient"].startswith("the operator (http://127.0.0.1")
        assert (await api.http.get("/me/disclosures", headers=bearer(b.bob))).json() == []


async def disclosed(api: Api, token: str) -> bool:
    """Whether the resident's disclosure log has an entry."""
    r = await api.http.get("/me/disclosures", headers=bearer(token))
    return bool(r.json())


async def test_move_out_leaves_no_name_or_username_in_the_file(api: Api) -> None:
    async with building(api) as b:
        for _ in range(2):  # failed sign-ins are stored per username (and source)
            r = await api.http.post("/auth/login", json={"username": "alice", "password": "wrong password here"})
            assert r.status_code == 401
        r = await api.http.post("/operator/unlock", json={"username": "alice"}, headers=bearer(api.operator))
        assert r.status_code == 204, r.text  # audited with the username as its target
        filed = await file(api, b.alice, "access", "what do you hold about Alice?")
        path = api.gateway.db.path
        assert b"alice" in stored_bytes(path) and b"Alice" in stored_bytes(path)  # the check below can fail
        r = await api.http.post(
            f"/properties/p1/units/a/residents/{b.alice_id}/move-out", json={"reason": "moved"},
            headers=bearer(b.manager),
        )  # fmt: skip
        assert r.status_code == 200, r.text
        raw = stored_bytes(path)
        for word in (b"alice", b"Alice"):
            assert word not in raw, f"{word!r} is still in the database file"
        # What is linked by the account id stays for the holds (the operator still finds the acceptance).
        r = await api.http.get(f"/operator/accounts/{b.alice_id}/agreement", headers=bearer(api.operator))
        assert r.status_code == 200 and r.json()["acceptances"], r.text
        r = await api.http.get("/privacy/requests", headers=bearer(api.operator))
        (waiting,) = [x for x in r.json() if x["id"] == filed["id"]]
        assert waiting["detail"] == f"what do you hold about former-{b.alice_id}?"


async def test_the_operator_erases_a_former_resident(api: Api) -> None:
    async with building(api) as b:
        r = await api.http.post(
            f"/properties/p1/units/a/residents/{b.alice_id}/move-out", json={"reason": "moved"},
            headers=bearer(b.manager),
        )  # fmt: skip
        assert r.status_code == 200, r.text
        path = api.gateway.db.path
        assert b.alice_id.encode() in stored_bytes(path)  # kept by id after a move-out, for the holds
        manager_id = (await api.http.get("/me", headers=bearer(b.manager))).json()["id"]
        r = await api.http.post(f"/privacy/accounts/{manager_id}/erase", json={"reason": "x"},
                                headers=bearer(api.operator))  # fmt: skip
        problem(r, 409, "not_a_resident")
        r = await api.http.post(f"/privacy/accounts/{b.alice_id}/erase", json={"reason": "x"},
                                headers=bearer(b.manager))  # fmt: skip
        problem(r, 403, "role_forbidden")
        r = await api.http.post(
            f"/privacy/accounts/{b.alice_id}/erase", json={"reason": "asked in writing"}, headers=bearer(api.operator)
        )
        assert r.status_code == 200, r.text
        assert r.json()["pseudonym"] == pseudonym_of(b.alice_id) and r.json()["held"]
        assert b.alice_id.encode() not in stored_bytes(path)
        r = await api.http.get(f"/operator/accounts/{pseudonym_of(b.alice_id)}/agreement", headers=bearer(api.operator))
        assert r.status_code == 200 and r.json()["acceptances"], r.text
        assert "privacy.erase" in await actions(api)


async def test_the_export_holds_nothing_from_before_my_move_in(clock: ManualClock, api: Api) -> None:
    async with building(api) as b:
        light = b.entity("a", "light", "light")
        r = await command(api, b.alice, light, {"on": True})
        assert r.status_code == 200, r.text
        clock.advance(timedelta(hours=1))
        r = await api.http.post(
            f"/properties/p1/units/a/residents/{b.alice_id}/move-out", json={"reason": "moved"},
            headers=bearer(b.manager),
        )  # fmt: skip
        assert r.status_code == 200, r.text
        clock.advance(timedelta(hours=1))
        _, carol = await api.move_in(b.manager, "p1", "a", "carol")
        assert (await accept(api, carol)).status_code == 200
        r = await command(api, carol, light, {"on": False})
        assert r.status_code == 200, r.text
        await api.services.gateway.persister.flush()

        data = await export(api, carol)
        since = datetime.fromisoformat(data["residency"]["since"])
        history = data["device_history"]
        assert history and all(datetime.fromisoformat(e["at"]) >= since for e in history)
        commands = [e for e in history if e["type"] == "command"]
        assert commands and all(e["data"]["actor"] == "you" for e in commands), commands
        assert [c["command"] for c in data["commands"]] == [{"on": False}]
        # The unit's history before her move-in is there to leave out (so the checks above can fail).
        conn = sqlite3.connect(f"file:{api.gateway.db.path}?mode=ro", uri=True)
        try:
            (earlier,) = conn.execute(
                "SELECT count(*) FROM all_events WHERE entity_key LIKE '%u101%' AND at < ?", [since.isoformat()]
            ).fetchone()
        finally:
            conn.close()
        assert earlier > 0
