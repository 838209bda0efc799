"""Sessions and sign-in through the HTTP API: expiry, logout, revocation, disabling, throttling, lockout,
activation, the bootstrap operator, and what is (never) stored."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import argon2
import httpx
import pytest
from argon2 import PasswordHasher

from gateway.accounts import Passwords
from gateway.api import ApiService
from gateway.clock import ManualClock
from gateway.config import AccountSettings, ApiSettings
from gateway.errors import AuthError
from gateway.services import Services
from tests.support.api import FAST_PASSWORDS, OPERATOR, PASSWORD, Api, ApiFactory, bearer, resident
from tests.support.brokers import BrokerHandle
from tests.support.gateway import GatewayFactory

EMBEDDED = pytest.mark.parametrize("broker", ["embedded"], indirect=True)
WRONG = "not the right password at all"


async def me(api: Api, token: str) -> httpx.Response:
    return await api.http.get("/me", headers=bearer(token))


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is a problem+json with this status and code; return its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    assert body["status"] == status
    if status == 401:
        assert f'error_description="{code}"' in r.headers["www-authenticate"]
    return body


async def login(api: Api, username: str, password: str) -> httpx.Response:
    return await api.http.post("/auth/login", json={"username": username, "password": password})


async def activate(api: Api, username: str, code: str, password: str = PASSWORD) -> httpx.Response:
    return await api.http.post(
        "/auth/activate", json={"username": username, "activation_code": code, "password": password}
    )


async def new_resident(api: Api, manager: str, username: str) -> tuple[str, str]:
    """Move a resident into unit a without activating; return (account id, activation code)."""
    r = await api.http.post("/properties/p1/units/a/residents", json={"username": username}, headers=bearer(manager))
    assert r.status_code == 201, r.text
    return str(r.json()["account"]["id"]), str(r.json()["activation_code"])


# --- expiry --------------------------------------------------------------------------------------


@EMBEDDED
async def test_session_expires_at_its_absolute_lifetime_even_when_in_use(
    clock: ManualClock, start_api: ApiFactory
) -> None:
    async with start_api(idle_timeout_seconds=3600, session_ttl_seconds=86400) as api:
        start = clock.now()
        r = await api.http.post("/auth/login", json={"username": OPERATOR, "password": PASSWORD})
        assert r.status_code == 200, r.text
        body = r.json()
        token = body["token"]
        assert body["token_type"] == "Bearer"
        assert body["idle_timeout_seconds"] == 3600
        assert datetime.fromisoformat(body["session"]["expires_at"]) == start + timedelta(seconds=86400)
        # used every 50 minutes: never idle, but the session still ends 24 h after sign-in
        elapsed = 0
        while elapsed + 3000 < 86400:
            clock.advance(timedelta(seconds=3000))
            elapsed += 3000
            assert (await me(api, token)).status_code == 200, elapsed
        clock.advance(timedelta(seconds=86399 - elapsed))
        assert (await me(api, token)).status_code == 200
        clock.advance(timedelta(seconds=1))
        assert_problem(await me(api, token), 401, "session_expired")
        clock.advance(timedelta(seconds=1))
        assert_problem(await me(api, token), 401, "session_expired")
        # signing in again gives a fresh session
        fresh = await api.login(OPERATOR)
        assert (await me(api, fresh)).status_code == 200


@EMBEDDED
async def test_session_expires_after_idle_timeout_but_not_while_used(clock: ManualClock, start_api: ApiFactory) -> None:
    async with start_api(idle_timeout_seconds=3600, session_ttl_seconds=86400) as api:
        token = await api.login(OPERATOR, client="console")
        idle_one = await api.login(OPERATOR, client="forgotten tab")
        # Last use is recorded at most once a minute, so every step here is well over a minute: each
        # request below moves last_used_at to "now", and the idle window restarts from there.
        signed_in = clock.now()
        for _ in range(3):
            clock.advance(timedelta(seconds=3599))
            assert (await me(api, token)).status_code == 200
        # the other session was not used for 3 x 3599 s: idle long past the hour
        assert_problem(await me(api, idle_one), 401, "session_expired")
        r = await api.http.get("/me/sessions", headers=bearer(token))
        assert r.status_code == 200, r.text
        mine = next(s for s in r.json() if s["client"] == "console")
        assert datetime.fromisoformat(mine["last_used_at"]) == signed_in + timedelta(seconds=3 * 3599)
        # exactly one idle hour after the last recorded use: expired, and it stays so
        clock.advance(timedelta(seconds=3600))
        assert_problem(await me(api, token), 401, "session_expired")
        assert_problem(await me(api, token), 401, "session_expired")


@EMBEDDED
async def test_idle_session_is_valid_just_inside_the_window(clock: ManualClock, start_api: ApiFactory) -> None:
    async with start_api(idle_timeout_seconds=3600, session_ttl_seconds=86400) as api:
        a = await api.login(OPERATOR)
        b = await api.login(OPERATOR)
        clock.advance(timedelta(seconds=3599))
        assert (await me(api, a)).status_code == 200
        clock.advance(timedelta(seconds=1))
        assert_problem(await me(api, b), 401, "session_expired")
        assert (await me(api, a)).status_code == 200


# --- logout and revocation -------------------------------------------------------------------------


@EMBEDDED
async def test_logout_ends_only_that_session(api: Api) -> None:
    res = await resident(api)
    phone = await api.login("alice", client="phone")
    assert_problem(await api.http.post("/auth/logout"), 401, "unauthenticated")
    r = await api.http.post("/auth/logout", headers=bearer(phone))
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_problem(await me(api, phone), 401, "session_revoked")
    assert_problem(await api.http.post("/auth/logout", headers=bearer(phone)), 401, "session_revoked")
    # alice's other session is untouched
    r = await me(api, res.token)
    assert r.status_code == 200, r.text
    assert r.json()["username"] == "alice"
    r = await api.http.get("/me/sessions", headers=bearer(res.token))
    sessions = {s["client"]: s for s in r.json()}
    assert sessions["phone"]["revoked_at"] is not None
    assert sessions["phone"]["revoked_reason"] == "logout"
    assert sessions[None]["revoked_at"] is None
    assert_problem(await me(api, "agw_made-up-token"), 401, "token_invalid")


@EMBEDDED
async def test_operator_revoke_sessions_takes_effect_on_next_request(api: Api) -> None:
    res = await resident(api)
    second = await api.login("alice")
    assert (await me(api, res.token)).status_code == 200
    r = await api.http.post(f"/operator/accounts/{res.account_id}/revoke-sessions", headers=bearer(api.operator))
    assert r.status_code == 204, r.text
    assert_problem(await me(api, res.token), 401, "session_revoked")
    assert_problem(await me(api, second), 401, "session_revoked")
    # other accounts keep their sessions
    assert (await me(api, res.manager)).status_code == 200
    # revoking is not disabling: alice may sign in again
    again = await api.login("alice")
    assert (await me(api, again)).status_code == 200
    # a resident may not revoke anyone's sessions
    r = await api.http.post(f"/operator/accounts/{res.account_id}/revoke-sessions", headers=bearer(again))
    assert_problem(r, 403, "role_forbidden")
    r = await api.http.post("/operator/accounts/nobody/revoke-sessions", headers=bearer(api.operator))
    assert_problem(r, 404, "account_not_found")


@EMBEDDED
async def test_a_sign_in_read_queued_before_a_revocation_is_not_remembered_after_it(api: Api) -> None:
    """The gateway remembers the sessions it has read; a read that was on its way while the session was revoked
    answers its own request as it was, and is not remembered: the next request sees the revocation."""
    res = await resident(api)
    accounts = api.services.accounts
    token = await api.login("alice")  # a session not read yet
    busy = asyncio.ensure_future(api.gateway.db.run(lambda _db: time.sleep(0.3)))  # hold the writer thread
    await asyncio.sleep(0)
    reading = asyncio.ensure_future(accounts.authenticate(token))  # its read queues behind the sleep
    await asyncio.sleep(0)
    revoking = asyncio.ensure_future(accounts.revoke_sessions(res.account_id, "operator"))  # and the write
    await asyncio.sleep(0)
    await busy
    assert (await reading).session.revoked_at is None  # read before the revocation was written
    assert await revoking == 2
    for _ in range(2):
        with pytest.raises(AuthError) as refused:
            await accounts.authenticate(token)
        assert refused.value.code == "session_revoked"
    assert_problem(await me(api, token), 401, "session_revoked")


@EMBEDDED
async def test_disable_and_enable(api: Api) -> None:
    res = await resident(api)
    r = await api.http.post(
        f"/operator/accounts/{res.account_id}/disable", json={"reason": "unpaid"}, headers=bearer(api.operator)
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "suspended"
    assert r.json()["status_reason"] == "unpaid"
    # the resident learns why, on the next request and when signing in again
    body = assert_problem(await me(api, res.token), 401, "account_disabled")
    assert body["reason"] == "unpaid" and "unpaid" in body["detail"], body
    body = assert_problem(await login(api, "alice", PASSWORD), 401, "account_disabled")
    assert body["reason"] == "unpaid", body
    # a wrong password tells nothing about the account's state
    assert_problem(await login(api, "alice", WRONG), 401, "login_failed")
    r = await api.http.post(f"/operator/accounts/{res.account_id}/enable", headers=bearer(api.operator))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    token = await api.login("alice")
    assert (await me(api, token)).status_code == 200
    # enabling does not bring back the sessions that disabling ended
    assert_problem(await me(api, res.token), 401, "session_revoked")


@EMBEDDED
async def test_terminated_account_is_gone_for_good(clock: ManualClock, api: Api) -> None:
    res = await resident(api)
    r = await api.http.post(
        f"/operator/accounts/{res.account_id}/terminate", json={"reason": "fraud"}, headers=bearer(api.operator)
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "terminated"
    former = r.json()["username"]
    assert former != "alice"
    assert r.json()["ended_at"] is not None
    assert_problem(await me(api, res.token), 401, "account_terminated")
    assert_problem(await login(api, "alice", PASSWORD), 401, "login_failed")
    assert_problem(await login(api, former, PASSWORD), 401, "login_failed")
    for action, body in (("enable", None), ("disable", {"reason": "x"})):
        r = await api.http.post(
            f"/operator/accounts/{res.account_id}/{action}", json=body, headers=bearer(api.operator)
        )
        assert_problem(r, 409, "account_terminated")
    assert_problem(await login(api, "alice", PASSWORD), 401, "login_failed")
    # the username is free again, but for a new, pending account: the old password is not carried over
    new_id, code = await new_resident(api, res.manager, "alice")
    assert new_id != res.account_id
    assert_problem(await login(api, "alice", PASSWORD), 401, "login_failed")
    assert_problem(await me(api, res.token), 401, "account_terminated")
    r = await api.http.post(f"/operator/accounts/{res.account_id}/enable", headers=bearer(api.operator))
    assert_problem(r, 409, "account_terminated")
    # the failed sign-ins above count against the name "alice", whoever holds it now
    assert_throttled(await activate(api, "alice", code), "login_throttled")
    clock.advance(timedelta(seconds=1))
    assert (await activate(api, "alice", code)).status_code == 200


# --- throttling and lockout -------------------------------------------------------------------------


def assert_throttled(r: httpx.Response, code: str) -> int:
    """A 429 with the given code and a Retry-After both as a header and in the body; return the seconds."""
    body = assert_problem(r, 429, code)
    retry = int(r.headers["retry-after"])
    assert retry >= 1
    assert body["retry_after"] == retry
    return retry


@EMBEDDED
async def test_login_is_throttled_after_three_failures(clock: ManualClock, api: Api) -> None:
    for _ in range(3):
        assert_problem(await login(api, OPERATOR, WRONG), 401, "login_failed")
    # the right password does not help while throttled
    assert assert_throttled(await login(api, OPERATOR, PASSWORD), "login_throttled") == 1
    assert assert_throttled(await login(api, OPERATOR, WRONG), "login_throttled") == 1
    clock.advance(timedelta(seconds=1))
    assert_problem(await login(api, OPERATOR, WRONG), 401, "login_failed")  # failure 4: next wait 2 s
    clock.advance(timedelta(seconds=1))
    assert assert_throttled(await login(api, OPERATOR, PASSWORD), "login_throttled") == 1
    clock.advance(timedelta(seconds=1))
    assert (await login(api, OPERATOR, PASSWORD)).status_code == 200
    # a success clears the count: three more failures are allowed straight away
    for _ in range(3):
        assert_problem(await login(api, OPERATOR, WRONG), 401, "login_failed")
    assert_throttled(await login(api, OPERATOR, WRONG), "login_throttled")


async def fail_until_locked(api: Api, clock: ManualClock, username: str, password: str) -> list[tuple[int, str, int]]:
    """Fail ten sign-ins, waiting out each throttle; return what each attempt (throttled ones too) answered."""
    seen: list[tuple[int, str, int]] = []
    failures = 0
    while failures < 10:
        r = await login(api, username, password)
        retry = int(r.headers.get("retry-after", 0))
        seen.append((r.status_code, r.json()["code"], retry))
        if r.status_code == 401:
            assert r.json()["code"] == "login_failed"
            failures += 1
        else:
            assert_throttled(r, "login_throttled")
            clock.advance(timedelta(seconds=retry))
    return seen


@EMBEDDED
async def test_lockout_after_ten_failures_and_operator_unlock(clock: ManualClock, api: Api) -> None:
    await api.staff("olga.ops", "operator", None)
    seen = await fail_until_locked(api, clock, "olga.ops", WRONG)
    # the waits double after the third failure: 1, 2, 4 … seconds, capped at a minute
    assert [retry for status, _, retry in seen if status == 429] == [1, 2, 4, 8, 16, 32, 60]
    # locked for 15 minutes: even the right password is refused
    assert assert_throttled(await login(api, "olga.ops", PASSWORD), "account_locked") == 900
    clock.advance(timedelta(minutes=10))
    assert assert_throttled(await login(api, "olga.ops", PASSWORD), "account_locked") == 300
    # case does not get around the lock
    assert_throttled(await login(api, "OLGA.OPS", PASSWORD), "account_locked")
    # unlocking is the operator's: others get 403
    olga_unlock = {"username": "olga.ops"}
    r = await api.http.post("/operator/unlock", json=olga_unlock)
    assert_problem(r, 401, "unauthenticated")
    r = await api.http.post("/operator/unlock", json=olga_unlock, headers=bearer(api.operator))
    assert r.status_code == 204, r.text
    token = await api.login("olga.ops")
    assert (await me(api, token)).status_code == 200
    # the count starts afresh after an unlock
    for _ in range(3):
        assert_problem(await login(api, "olga.ops", WRONG), 401, "login_failed")
    assert assert_throttled(await login(api, "olga.ops", WRONG), "login_throttled") == 1


@EMBEDDED
async def test_lock_ends_by_itself_after_fifteen_minutes(clock: ManualClock, api: Api) -> None:
    await fail_until_locked(api, clock, OPERATOR, WRONG)
    clock.advance(timedelta(minutes=15) - timedelta(seconds=1))
    assert assert_throttled(await login(api, OPERATOR, PASSWORD), "account_locked") == 1
    clock.advance(timedelta(seconds=1))
    assert (await login(api, OPERATOR, PASSWORD)).status_code == 200


@EMBEDDED
async def test_unknown_usernames_answer_exactly_like_known_ones(clock: ManualClock, api: Api) -> None:
    known = await login(api, OPERATOR, WRONG)
    unknown = await login(api, "nobody.here", PASSWORD)
    assert_problem(known, 401, "login_failed")
    assert known.json() == unknown.json()
    assert known.headers["www-authenticate"] == unknown.headers["www-authenticate"]
    await api.http.post("/operator/unlock", json={"username": OPERATOR}, headers=bearer(api.operator))
    await api.http.post("/operator/unlock", json={"username": "nobody.here"}, headers=bearer(api.operator))
    # the whole road to a lockout looks the same, attempt by attempt
    start = clock.now()
    known_seen = await fail_until_locked(api, clock, OPERATOR, WRONG)
    clock.set(start)
    unknown_seen = await fail_until_locked(api, clock, "nobody.here", PASSWORD)
    assert known_seen == unknown_seen
    known = await login(api, OPERATOR, PASSWORD)
    unknown = await login(api, "nobody.here", PASSWORD)
    assert_throttled(known, "account_locked")
    assert (known.status_code, known.json(), known.headers["retry-after"]) == (
        unknown.status_code,
        unknown.json(),
        unknown.headers["retry-after"],
    )
    # a pending (not yet activated) account also answers like an unknown one
    r = await api.http.post(
        "/operator/accounts", json={"username": "pete.pending", "role": "operator"}, headers=bearer(api.operator)
    )
    assert r.status_code == 201, r.text
    pending = await login(api, "pete.pending", PASSWORD)
    assert_problem(pending, 401, "login_failed")
    assert pending.json() == (await login(api, "nobody.else", PASSWORD)).json()


# --- activation ---------------------------------------------------------------------------------------


@EMBEDDED
async def test_activation_code_works_once(api: Api) -> None:
    res = await resident(api)
    _, code = await new_resident(api, res.manager, "bob")
    # not activated yet: no sign-in with any password
    assert_problem(await login(api, "bob", PASSWORD), 401, "login_failed")
    # a weak password is refused, and does not spend the code
    for weak in ("short", "bob", "aaaaaaaaaaaaaaa", "abababababab"):
        body = assert_problem(await activate(api, "bob", code, weak), 422, "password_too_weak")
        assert body["field"] == "password"
    # people type codes in lower case and without dashes
    r = await activate(api, "bob", code.lower().replace("-", ""))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    assert r.json()["activated_at"] is not None
    # spent: a second use is refused, and the password stays as set
    body = assert_problem(await activate(api, "bob", code, "another good password"), 422, "activation_invalid")
    assert body["field"] == "activation_code"
    assert_problem(await login(api, "bob", "another good password"), 401, "login_failed")
    token = await api.login("bob")
    assert (await me(api, token)).json()["username"] == "bob"


@EMBEDDED
async def test_activation_code_expires_after_fourteen_days(clock: ManualClock, api: Api) -> None:
    res = await resident(api)
    created = clock.now()
    r = await api.http.post("/properties/p1/units/a/residents", json={"username": "bob"}, headers=bearer(res.manager))
    assert r.status_code == 201, r.text
    code = r.json()["activation_code"]
    assert datetime.fromisoformat(r.json()["activation_expires_at"]) == created + timedelta(days=14)
    _, carol_code = await new_resident(api, res.manager, "carol")
    clock.advance(timedelta(days=14) - timedelta(seconds=1))
    assert (await activate(api, "carol", carol_code)).status_code == 200
    clock.advance(timedelta(seconds=1))
    assert_problem(await activate(api, "bob", code), 422, "activation_invalid")
    clock.advance(timedelta(days=1))
    assert_problem(await activate(api, "bob", code), 422, "activation_invalid")
    assert_problem(await login(api, "bob", PASSWORD), 401, "login_failed")


@EMBEDDED
async def test_wrong_activation_codes_count_as_failures(clock: ManualClock, api: Api) -> None:
    res = await resident(api)
    _, code = await new_resident(api, res.manager, "bob")
    for _ in range(3):
        assert_problem(await activate(api, "bob", "AAAA-BBBB-CCCC-DDDD"), 422, "activation_invalid")
    # guessing codes is throttled like guessing passwords: the right code must wait too
    assert assert_throttled(await activate(api, "bob", code), "login_throttled") == 1
    assert_throttled(await login(api, "bob", PASSWORD), "login_throttled")
    clock.advance(timedelta(seconds=1))
    assert (await activate(api, "bob", code)).status_code == 200
    # success clears the count
    for _ in range(3):
        assert_problem(await login(api, "bob", WRONG), 401, "login_failed")
    clock.advance(timedelta(seconds=1))
    assert (await login(api, "bob", PASSWORD)).status_code == 200


# --- bootstrap ------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def api_without_operator(make_gateway: GatewayFactory) -> AsyncIterator[tuple[Services, httpx.AsyncClient]]:
    """The API started with no bootstrap operator settings (running_api would sign one in)."""
    async with (
        make_gateway.services(FAST_PASSWORDS, accounts=AccountSettings()) as services,
        ApiService(services, ApiSettings(port=0)) as service,
        httpx.AsyncClient(base_url=service.url + "/api/v1", timeout=10) as http,
    ):
        yield services, http


DEFAULT_CREDENTIALS = [
    ("admin", "admin"),
    ("admin", "password"),
    ("admin", ""),
    ("admin", "1234"),
    ("root", "root"),
    ("operator", "operator"),
    ("admin", "changeme"),
    (OPERATOR, PASSWORD),
]


@EMBEDDED
async def test_no_operator_and_no_default_password_without_bootstrap_settings(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock
) -> None:
    async with api_without_operator(make_gateway) as (service, http):
        assert await service.accounts.find() == []
        for username, password in DEFAULT_CREDENTIALS:
            clock.advance(timedelta(hours=1))  # never throttled: each guess gets a real answer
            r = await http.post("/auth/login", json={"username": username, "password": password})
            assert r.status_code in {401, 422}, (username, password, r.text)
            assert "token" not in r.json()
            if password:
                assert r.json()["code"] == "login_failed"
        r = await http.get("/operator/accounts")
        assert_problem(r, 401, "unauthenticated")
        db = Path(service.gateway.settings.database)
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            assert conn.execute("SELECT count(*) FROM accounts").fetchone() == (0,)
            assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (0,)


# --- storage ------------------------------------------------------------------------------------------


@EMBEDDED
async def test_tokens_passwords_and_codes_are_stored_only_as_hashes(api: Api) -> None:
    res = await resident(api)
    _, code = await new_resident(api, res.manager, "bob")
    tokens = [api.operator, res.manager, res.token, await api.login("alice", client="tablet")]
    for token in tokens:
        assert (await me(api, token)).status_code == 200
    # a failed sign-in stores nothing of the password tried either
    assert_problem(await login(api, "alice", WRONG), 401, "login_failed")
    secrets = [*tokens, PASSWORD, WRONG, code, code.replace("-", "")]
    db = Path(api.gateway.settings.database)
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert {"accounts", "sessions", "activation_codes", "login_attempts", "audit_log"} <= set(tables)
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):  # table names come from sqlite_master
                text = " ".join(str(v) for v in row)
                for secret in secrets:
                    assert secret not in text, f"a secret is stored in {table}"
        hashes = {row[0] for row in conn.execute("SELECT token_hash FROM sessions")}
        assert len(hashes) >= len(tokens)
        for token_hash in hashes:
            assert re.fullmatch(r"[0-9a-f]{64}", token_hash)
        for token in tokens:
            assert hashlib.sha256(token.encode()).hexdigest() in hashes
        passwords = conn.execute("SELECT username, password_hash FROM accounts").fetchall()
        assert {"alice", "maria.manager", OPERATOR, "bob"} <= {name for name, _ in passwords}
        for name, password_hash in passwords:
            if name == "bob":
                assert password_hash is None  # not activated: no password yet
            else:
                assert password_hash.startswith("$argon2id$"), name
        codes = [row[0] for row in conn.execute("SELECT code_hash FROM activation_codes")]
        assert codes
        assert all(re.fullmatch(r"[0-9a-f]{64}", c) for c in codes)
    # and not in the raw files either (the WAL included)
    for path in db.parent.glob(db.name + "*"):
        raw = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in raw, f"a secret is in {path.name}"


def test_production_passwords_use_argon2id_with_owasp_parameters() -> None:
    passwords = Passwords()
    hashed = passwords.hash(PASSWORD)
    assert hashed.startswith("$argon2id$")
    params = argon2.extract_parameters(hashed)
    defaults = PasswordHasher()
    assert params.type is argon2.Type.ID
    assert (params.memory_cost, params.time_cost, params.parallelism) == (19_456, 2, 1)
    assert (params.hash_len, params.salt_len) == (defaults.hash_len, defaults.salt_len)
    assert "m=19456,t=2,p=1" in hashed
    # A hash made with the library's heavier defaults (before this change) still verifies.
    assert passwords.verify(defaults.hash(PASSWORD), PASSWORD)
    assert not passwords.verify(defaults.hash(PASSWORD), PASSWORD + "x")
    assert passwords.verify(hashed, PASSWORD)
    assert not passwords.verify(hashed, WRONG)
    assert not passwords.verify(None, PASSWORD)
