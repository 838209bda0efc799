"""Sign-in under attack, through real HTTP: attempts sent at once are all counted, an unknown username costs what a
wrong password does, argon2 runs off the event loop, activation checks the code before hashing, and a lock earned
from one address does not keep the owner out from another."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest

from gateway.accounts import store
from gateway.clock import ManualClock
from tests.support.api import FAST_PASSWORDS, OPERATOR, PASSWORD, Api, bearer, problem

EMBEDDED = pytest.mark.parametrize("broker", ["embedded"], indirect=True)
WRONG = "not the right password at all"


async def login(http: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await http.post("/auth/login", json={"username": username, "password": password})


async def attempts(api: Api, username: str, source: str | None = "127.0.0.1") -> int:
    """The failures stored for ``username`` from ``source`` (None: username-wide)."""
    row = await api.gateway.db.run(lambda db: store.get_attempts(db, username, source))
    return 0 if row is None else int(row["failures"])


@asynccontextmanager
async def client_from(api: Api, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose connections come from ``address`` (a loopback address of its own)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(transport=transport, base_url=api.service.url + "/api/v1", timeout=10) as http:
        yield http


def spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """Record the thread of every call of FAST_PASSWORDS.<name> (the test hasher every API test uses)."""
    calls: list[str] = []
    real: Callable[..., Any] = getattr(FAST_PASSWORDS, name)

    def recorded(*args: Any) -> Any:
        calls.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(FAST_PASSWORDS, name, recorded)
    return calls


@EMBEDDED
async def test_sixty_wrong_passwords_at_once_are_each_counted_or_refused(api: Api) -> None:
    answers = await asyncio.gather(*(login(api.http, OPERATOR, WRONG) for _ in range(60)))
    statuses = [r.status_code for r in answers]
    assert set(statuses) <= {401, 429}, statuses
    failed = statuses.count(401)
    # exactly the free failures got through; every other attempt was refused before its password was checked
    assert failed == api.services.accounts.settings.throttle_after
    for r in answers:
        if r.status_code == 429:
            problem(r, 429, "login_throttled")
    assert await attempts(api, OPERATOR) == failed
    assert await attempts(api, OPERATOR, None) == failed


@EMBEDDED
async def test_unknown_username_verifies_a_dummy_hash_and_takes_as_long(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified = spy(monkeypatch, "verify")
    r = await api.http.post(
        "/operator/accounts", json={"username": "pete.pending", "role": "operator"}, headers=bearer(api.operator)
    )
    assert r.status_code == 201, r.text
    # every miss costs exactly one argon2 verification, whatever the username
    for username, password in ((OPERATOR, WRONG), ("nobody.here", PASSWORD), ("pete.pending", PASSWORD)):
        verified.clear()
        problem(await login(api.http, username, password), 401, "login_failed")
        assert len(verified) == 1, username
    operator = await api.services.accounts.authenticate(api.operator)
    times: dict[str, list[float]] = {OPERATOR: [], "nobody.here": []}
    for _ in range(9):
        for username, taken in times.items():
            await api.services.accounts.unlock(username, by=operator)  # no throttle in the way
            start = time.perf_counter()
            problem(await login(api.http, username, WRONG), 401, "login_failed")
            taken.append(time.perf_counter() - start)
    ratio = statistics.median(times["nobody.here"]) / statistics.median(times[OPERATOR])
    assert 0.5 < ratio < 2, times


@EMBEDDED
async def test_argon2_runs_off_the_event_loop(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    verified = spy(monkeypatch, "verify")
    hashed = spy(monkeypatch, "hash")
    loop_thread = threading.current_thread().name  # the API runs on the test's event loop
    await api.staff("olga.ops", "operator", None)  # activation: one hash
    assert (await login(api.http, "olga.ops", PASSWORD)).status_code == 200
    problem(await login(api.http, "nobody.here", PASSWORD), 401, "login_failed")
    assert hashed and verified
    for thread in hashed + verified:
        assert thread != loop_thread and thread.startswith("argon2"), thread
    # a dozen sign-ins hashing at once still leave a cheap authenticated read prompt (a generous bound)
    idle = []
    for _ in range(3):
        start = time.perf_counter()
        assert (await api.http.get("/me", headers=bearer(api.operator))).status_code == 200
        idle.append(time.perf_counter() - start)
    storm = asyncio.gather(*(login(api.http, f"user{i}", PASSWORD) for i in range(12)))
    start = time.perf_counter()
    assert (await api.http.get("/me", headers=bearer(api.operator))).status_code == 200
    busy = time.perf_counter() - start
    await storm
    assert busy < max(statistics.median(idle) * 20, 0.25), (busy, idle)


@EMBEDDED
async def test_a_wrong_activation_code_is_refused_without_hashing(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    r = await api.http.post(
        "/operator/accounts", json={"username": "pete.pending", "role": "operator"}, headers=bearer(api.operator)
    )
    assert r.status_code == 201, r.text
    code = r.json()["activation_code"]
    hashed = spy(monkeypatch, "hash")
    for username, attempt in (("pete.pending", "AAAA-BBBB-CCCC-DDDD"), ("nobody.here", code)):
        body = {"username": username, "activation_code": attempt, "password": PASSWORD}
        problem(await api.http.post("/auth/activate", json=body), 422, "activation_invalid")
    assert hashed == []
    body = {"username": "pete.pending", "activation_code": code, "password": PASSWORD}
    assert (await api.http.post("/auth/activate", json=body)).status_code == 200
    assert len(hashed) == 1


@EMBEDDED
async def test_a_lock_earned_from_one_address_does_not_keep_the_operator_out_from_another(
    clock: ManualClock, api: Api
) -> None:
    settings = api.services.accounts.settings
    async with client_from(api, "127.0.0.2") as attacker, client_from(api, "127.0.0.3") as operator:
        failures = 0
        while failures < settings.lock_after:  # waiting out each throttle, as a patient attacker would
            r = await login(attacker, OPERATOR, WRONG)
            if r.status_code == 429:
                clock.advance(timedelta(seconds=int(r.headers["retry-after"])))
            else:
                problem(r, 401, "login_failed")
                failures += 1
        assert await attempts(api, OPERATOR, "127.0.0.2") == settings.lock_after
        problem(await login(attacker, OPERATOR, PASSWORD), 429, "account_locked")
        # from another address the username-wide count only slows: one short wait, never a lock
        r = await login(operator, OPERATOR, PASSWORD)
        body = problem(r, 429, "login_throttled")
        assert body["retry_after"] == int(settings.slow_wait.total_seconds())
        clock.advance(settings.slow_wait)
        assert (await login(operator, OPERATOR, PASSWORD)).status_code == 200
        # the attacker stays locked where they earned it; the operator's success cleared only the operator's count
        assert await attempts(api, OPERATOR, "127.0.0.2") == settings.lock_after
        assert await attempts(api, OPERATOR, "127.0.0.3") == 0
        assert await attempts(api, OPERATOR, None) == 0
        problem(await login(attacker, OPERATOR, PASSWORD), 429, "account_locked")
        # and the attacker's locked attempts keep nobody waiting
        assert (await login(operator, OPERATOR, PASSWORD)).status_code == 200
