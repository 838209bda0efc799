"""The service's rules as the API documents and answers them: every refusal code in the served OpenAPI document,
and account states at sign-in."""

from __future__ import annotations

import re

import pytest

from gateway.policy import ContractLapse, RefusalCode
from tests.support.api import PASSWORD, Api, ApiFactory, bearer, problem, resident
from tests.support.brokers import REPO

pytestmark = pytest.mark.parametrize("broker", ["embedded"], indirect=True)

GATEWAY = REPO / "gateway"
# The modules that make the service's rules and their API: every code they raise must be documented.
RULE_SOURCES = (
    *sorted((GATEWAY / "policy").glob("*.py")),  # the rules, and the command gate that enforces them
    GATEWAY / "accounts" / "account_service.py",
    GATEWAY / "api" / "routes" / "rules.py",
    GATEWAY / "api" / "routes" / "agreement.py",
    GATEWAY / "building" / "wiring_service.py",  # a bound device's pinned wiring: held, approved, rejected
    GATEWAY / "api" / "routes" / "wiring.py",
    GATEWAY / "api" / "routes" / "broker_credentials.py",  # and the device plane's staff use cases
    GATEWAY / "mqtt" / "credential_service.py",
    *sorted((GATEWAY / "firmware").glob("*.py")),  # firmware rollouts
    GATEWAY / "api" / "routes" / "firmware.py",
    GATEWAY / "mqtt" / "credential_store.py",
    GATEWAY / "mqtt" / "credentials.py",
    GATEWAY / "mqtt" / "dynsec_sync.py",
)
WRONG = "not the right password at all"


def raised_codes() -> set[str]:
    """Every literal ``code="..."`` in the rule modules."""
    return {m for path in RULE_SOURCES for m in re.findall(r'code="([a-z_]+)"', path.read_text())}


async def test_every_rule_code_is_documented_in_the_served_openapi(start_api: ApiFactory) -> None:
    async with start_api() as api:
        r = await api.http.get(api.service.url + "/openapi.json")
        assert r.status_code == 200, r.text
        doc = r.json()
    description = doc["info"]["description"]
    codes = {str(c) for c in RefusalCode} | {str(c) for c in ContractLapse} | raised_codes()
    assert {"plan_limit_app_devices", "opt_out_window_closed", "agreement_version_exists"} <= codes  # the scan works
    missing = sorted(c for c in codes if f"`{c}`" not in description)
    assert missing == [], f"refusal codes not in the API description: {missing}"
    # the prose names the status the API really answers with
    assert "`device_not_in_unit` (404)" not in description
    assert "over HTTP these are 401" in description

    # the problem body's members a client acts on are in its schema, and problems are served under their media type
    problem_schema = doc["components"]["schemas"]["Problem"]["properties"]
    for member in ("code", "link", "reason", "version", "minimum_version", "deadline", "limit", "sessions"):
        assert member in problem_schema, member
    login_401 = doc["paths"]["/api/v1/auth/login"]["post"]["responses"]["401"]["content"]
    assert login_401["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}


async def test_signing_in_to_a_terminated_account_answers_account_terminated(api: Api) -> None:
    """Terminating erases the username and password, so through the API an old sign-in is just login_failed (it
    tells nobody that the name was ever used). An account terminated with its credentials still in place (a
    record from before that erasure) is refused by name once its password is proven."""
    res = await resident(api)
    await api.gateway.db.run(
        lambda db: db.conn.execute(
            "UPDATE accounts SET status = 'terminated', status_reason = 'fraud' WHERE id = ?", (res.account_id,)
        )
    )
    login = {"username": "alice", "password": PASSWORD}
    body = problem(await api.http.post("/auth/login", json=login), 401, "account_terminated")
    assert "never be used again" in body["detail"]
    wrong = {"username": "alice", "password": WRONG}
    problem(await api.http.post("/auth/login", json=wrong), 401, "login_failed")  # nothing learnt without it
    problem(await api.http.get("/me", headers=bearer(res.token)), 401, "account_terminated")
