"""Schemathesis against the live API: every documented operation, as each role, answers as its OpenAPI says.

No 5xx, only documented status codes and content types, bodies (problem+json included) matching their schemas.
The server runs on the test's event loop and schemathesis is synchronous (``requests``), so the fuzzing runs in
a worker thread. Each operation gets schemathesis's deterministic coverage cases (boundary and invalid values)
as the roles it is meant for, then a few derandomized Hypothesis examples, positive and negative, with ids that
exist (so requests reach past the 404s); every other role gets one example, which must be refused as documented.
Then the stateful phase, per role: short derandomized sequences over the operations meant for the role, each
feeding ids from an answer into the next request (links schemathesis infers from the schema).
The same checks from the command line, against a throwaway gateway (the fuzzing creates, disables and ends
accounts), with a token from POST /api/v1/auth/login; one run per role:

    .venv/bin/schemathesis run http://127.0.0.1:8080/openapi.json -H "Authorization: Bearer $TOKEN" \\
      --exclude-operation-id streamMyUnit --exclude-operation-id streamProperty \\
      --exclude-operation-id logout --exclude-operation-id revokeSessions \\
      --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \\
      --max-examples 20 --seed 1 --request-timeout 10
"""

from __future__ import annotations

import asyncio
import re
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from schemathesis import CheckFunction, GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.core.transport import Response
from schemathesis.generation.case import Case as AnyCase
from schemathesis.schemas import APIOperation, BaseSchema

from tests.support.api import Api, bearer, building
from tests.support.polling import eventually

pytestmark = pytest.mark.parametrize("broker", ["embedded"], indirect=True)

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)
# A command's own outcomes are 503 broker_unavailable and 504 command_timeout: documented answers, not crashes.
CONFIG = """
[[operations]]
include-operation-id = "sendCommand"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503", "504"]
"""
ALL_ROLES = frozenset({"resident", "manager", "installer", "operator"})
# Who each operation is for, by tag, then by operation id; everyone else must get 401/403.
MEANT_BY_TAG = {
    "session": ALL_ROLES,
    "resident": {"resident"},
    "property": {"manager", "installer"},
    "operator": {"operator"},
}
MEANT_BY_OPERATION = {
    "login": {"anonymous"},
    "activate": {"anonymous"},
    # the console's session: a sign-in, and the cookie's resume and sign-out (the cookie, not a bearer token)
    "openConsoleSession": {"anonymous"},
    "resumeConsoleSession": {"anonymous"},
    "closeConsoleSession": {"anonymous"},
    "listPropertyAudit": {"manager"},
    "listPropertyNotifications": {"manager"},
    "reissueActivationCode": {"manager"},
    "listProperties": ALL_ROLES,
    "createProperty": {"operator"},
    "createUnit": {"manager"},
    "listResidents": {"manager"},
    "moveIn": {"manager"},
    "moveOut": {"manager"},
    "createBrokerCredential": {"manager", "installer", "operator"},
    "listBrokerCredentials": {"manager", "installer", "operator"},
    "revokeBrokerCredential": {"manager", "installer", "operator"},
}
# Never sent with a live session: the stream does not end by itself, and logout would end the session we fuzz as.
SESSION_ENDING = {"streamMyUnit", "streamProperty", "logout"}
EXAMPLES = 5  # Hypothesis examples per operation, role, generation mode and set of ids
# The stateful phase, per role: few sequences of few steps (Hypothesis's settings), derandomized, so the whole test
# stays deterministic and well under a minute. Not sent statefully: whatever ends the session we fuzz as.
STATEFUL_EXAMPLES = 15
STATEFUL_STEPS = 6
# Nor a firmware rollout: the fuzzed building's simulated devices announce no update entity, so no sequence can
# start one, and the link from its answer to a rollout's id never has a value (Hypothesis's state machine then
# reports flaky data generation). The per-operation phase sends it an example as each role; its rules are tested
# in tests/gateway/firmware.
STATEFUL_EXCLUDED = sorted({"streamMyUnit", "streamProperty", "logout", "revokeSessions", "startFirmwareRollout"})
REQUEST_TIMEOUT = 10.0
PATH_PARAMETER = re.compile(r"{(\w+)}")
Operation = APIOperation[Any, Any, Any, Any]
Case = AnyCase[Any]


@dataclass(frozen=True)
class Caller:
    """A role to fuzz as: its token, and ids that exist for it (each dict is one set of path parameters)."""

    role: str
    token: str | None
    ids: tuple[dict[str, str], ...] = ()

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token) if self.token is not None else {}


@dataclass
class Findings:
    """Distinct check failures with one reproduction each, and what was sent."""

    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)
    requests: int = 0
    statuses: dict[str, set[int]] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)  # role -> stateful sequences run

    def add(self, caller: Caller, case: Case, title: str, detail: str) -> None:
        key = (caller.role, case.operation.label, title)
        if key not in self.failures:
            curl = case.as_curl_command(headers=caller.headers)
            self.failures[key] = f"{detail}\n    {curl}"

    def report(self) -> str:
        return "\n\n".join(f"[{role}] {label}: {title}\n{text}" for (role, label, title), text in self.failures.items())


class Fuzzer:
    """Sends cases and runs the checks on the answers, collecting failures instead of stopping at the first."""

    def __init__(self, schema: BaseSchema, base_url: str, session: requests.Session) -> None:
        self.schema = schema
        self.base_url = base_url
        self.session = session
        self.checks: list[CheckFunction] = [getattr(schemathesis.checks, name) for name in CHECKS]
        self.findings = Findings()

    def call_kwargs(self, caller: Caller) -> dict[str, Any]:
        """How a case is sent as the caller (their token replaces any generated Authorization)."""
        return {
            "base_url": self.base_url,
            "session": self.session,
            "headers": caller.headers,
            "timeout": REQUEST_TIMEOUT,
        }

    def send(self, caller: Caller, case: Case) -> int | None:
        """Send one case as the caller and check the answer."""
        try:
            response = case.call(**self.call_kwargs(caller))
        except requests.RequestException as exc:
            self.findings.add(caller, case, f"request failed: {type(exc).__name__}", str(exc))
            return None
        return self.check(caller, case, response)

    def check(self, caller: Caller, case: Case, response: Response) -> int:
        """Run the checks on an answer, collecting failures."""
        self.findings.requests += 1
        self.findings.statuses.setdefault(case.operation.label, set()).add(response.status_code)
        try:
            case.validate_response(
                response,
                checks=self.checks,
                headers=caller.headers,
                transport_kwargs={"base_url": self.base_url, "headers": caller.headers},
            )
        except FailureGroup as group:
            for failure in group.exceptions:
                answer = f"-> {response.status_code} {response.headers.get('content-type')} {response.text[:400]}"
                self.findings.add(caller, case, failure.title, f"{failure.message}\n    {answer}")
        return response.status_code

    def coverage(self, caller: Caller, operation: Operation) -> None:
        """Schemathesis's deterministic coverage cases: boundary values, then each kind of invalid input."""
        config = self.schema.config.generation_for(operation=operation, phase="coverage")
        modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
        for case in self.schema.iter_coverage_cases(operation, generation_modes=modes, generation_config=config):
            self.send(caller, case)

    def examples(self, caller: Caller, operation: Operation, mode: GenerationMode, count: int) -> None:
        """A few derandomized Hypothesis examples, once with generated ids and once per set of known ids."""
        names = set(PATH_PARAMETER.findall(operation.path))
        fixed = [ids for ids in caller.ids if names and names <= ids.keys()]
        for ids in [{}, *[{k: v for k, v in ids.items() if k in names} for ids in fixed]]:

            @hypothesis.settings(
                max_examples=count,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],  # no shrinking: failures are collected, not raised
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode, path_parameters=ids or None))
            def run(case: Case) -> None:
                self.send(caller, case)

            run()

    def stateful(self, caller: Caller, schema: BaseSchema) -> int:
        """Schemathesis's stateful phase as the caller: sequences that feed one answer's ids (links inferred from
        the schema) into the next request, derandomized and bounded; how many sequences ran."""
        fuzzer, runs = self, 0

        class Machine(schema.as_state_machine()):  # type: ignore[misc]
            def setup(self) -> None:
                nonlocal runs
                runs += 1

            def call(self, case: Case, **kwargs: Any) -> Any:
                try:
                    return case.call(**kwargs)
                except requests.RequestException as exc:
                    fuzzer.findings.add(caller, case, f"request failed: {type(exc).__name__}", str(exc))
                    raise
                except Exception as exc:
                    # Whatever else ends the sequence (schemathesis building the request, say) is reported as
                    # itself: Hypothesis's replay of it would only say the gateway's state had moved on.
                    detail = "".join(traceback.format_exception(exc))[-2000:]
                    fuzzer.findings.add(caller, case, f"request not sent: {type(exc).__name__}", detail)
                    raise

            def get_call_kwargs(self, case: Case) -> dict[str, Any]:
                return fuzzer.call_kwargs(caller)

            def validate_response(
                self, response: Any, case: Case, additional_checks: Any = None, **kwargs: Any
            ) -> None:
                fuzzer.check(caller, case, response)  # collected, not raised: one run reports every failure

        try:
            Machine.run(
                settings=hypothesis.settings(
                    max_examples=STATEFUL_EXAMPLES,
                    stateful_step_count=STATEFUL_STEPS,
                    derandomize=True,
                    database=None,
                    deadline=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
            )
        except hypothesis.errors.FlakyStrategyDefinition as exc:
            # The sequences share one live gateway, so an answer may differ when Hypothesis meets a prefix it drew
            # before (a request filed once is 409 the second time, and the link it fed has no value): Hypothesis
            # calls that inconsistent generation and ends the run. It says nothing about the gateway; the answers
            # sent so far are checked all the same, and the test asks that enough sequences ran.
            if self.findings.failures:
                return runs  # a request's own failure, reported by the test
            print(f"stateful run as {caller.role} ended after {runs} sequences: {type(exc).__name__}")
        except Exception:
            # A failed request ends the run with the request's own failure in the findings, which the test reports.
            if not self.findings.failures:
                raise
        return runs


@dataclass(frozen=True)
class Scripted:
    """A hand-written request, for outcomes random data does not reach (a confirmed command, a jammed lock)."""

    role: str
    operation_id: str
    path_parameters: dict[str, str]
    body: dict[str, Any]


def _meant_for(operation: Operation) -> frozenset[str]:
    raw: dict[str, Any] = operation.definition.raw
    by_id = MEANT_BY_OPERATION.get(str(raw.get("operationId")))
    if by_id is not None:
        return frozenset(by_id)
    return frozenset(role for tag in raw.get("tags", []) for role in MEANT_BY_TAG.get(tag, ()))


def _operations(schema: BaseSchema) -> Iterator[Operation]:
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        yield result.ok()


def fuzz(base_url: str, callers: list[Caller], scripted: Sequence[Scripted] = ()) -> tuple[Findings, list[int | None]]:
    """Send the scripted requests, then fuzz every operation as every caller (blocking: run it in a thread)."""
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json", config=schemathesis.Config.from_str(CONFIG))
    operations = list(_operations(schema))
    assert len(operations) >= 30, [op.label for op in operations]
    by_id = {str(op.definition.raw.get("operationId")): op for op in operations}
    by_role = {caller.role: caller for caller in callers}
    with requests.Session() as session:
        fuzzer = Fuzzer(schema, base_url, session)
        statuses = [
            fuzzer.send(
                by_role[s.role],
                by_id[s.operation_id].Case(
                    path_parameters=s.path_parameters, body=s.body, media_type="application/json"
                ),
            )
            for s in scripted
        ]
        for caller in callers:
            for operation in operations:
                if caller.token is not None and operation.definition.raw.get("operationId") in SESSION_ENDING:
                    continue
                if caller.role in _meant_for(operation):
                    fuzzer.coverage(caller, operation)
                    fuzzer.examples(caller, operation, GenerationMode.POSITIVE, EXAMPLES)
                    fuzzer.examples(caller, operation, GenerationMode.NEGATIVE, EXAMPLES)
                else:
                    fuzzer.examples(Caller(caller.role, caller.token), operation, GenerationMode.POSITIVE, 1)
    return fuzzer.findings, statuses


def fuzz_stateful(base_url: str, callers: list[Caller]) -> Findings:
    """The stateful phase as every caller in turn, over the operations meant for them (blocking: run it in a
    thread). In the callers' order: a manager's sequence may move a resident out, an operator's end a manager."""
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json", config=schemathesis.Config.from_str(CONFIG))
    by_id = {str(op.definition.raw.get("operationId")): op for op in _operations(schema)}
    with requests.Session() as session:
        fuzzer = Fuzzer(schema, base_url, session)
        for caller in callers:
            meant = sorted(op for op in by_id if caller.role in _meant_for(by_id[op])) or sorted(by_id)
            scope = schema.include(operation_id=meant).exclude(operation_id=STATEFUL_EXCLUDED)
            fuzzer.findings.sequences[caller.role] = fuzzer.stateful(caller, scope)
    return fuzzer.findings


async def test_every_operation_answers_as_documented_for_each_role(api: Api) -> None:
    async with building(api) as b:
        light, lock = b.entity("a", "light", "light"), b.entity("a", "lock", "lock")
        thermostat, dimmer = b.entity("a", "thermostat", "climate"), b.entity("a", "dimmer", "light")
        leak = b.entity("a", "leak", "binary_sensor", "leak")
        r = await api.http.post(
            f"/me/entities/{light}/commands", json={"command": {"on": True}}, headers=bearer(b.alice)
        )
        assert r.status_code == 200, r.text
        command_id = r.json()["id"]
        # The operator disables, enables, terminates and revokes this account, never one the fuzzing signs in as.
        r = await api.http.post(
            "/operator/accounts", json={"username": "fuzz-target", "role": "operator"}, headers=bearer(api.operator)
        )
        assert r.status_code == 201, r.text
        target = r.json()["account"]["id"]
        own_id = (await api.http.get("/me", headers=bearer(api.operator))).json()["id"]
        resident_ids = [
            {"device_id": "fwsim-u101-light", "entity_id": entity, "command_id": command_id}
            for entity in (light, lock, thermostat)
        ]
        # Faults, so the scripted commands meet each outcome: jammed, no confirmation, offline.
        b.sims["a"].lock.jam_next_command()
        b.sims["a"].thermostat.ignore_commands = True
        await b.sims["a"].dimmer.drop_offline()
        await eventually(
            lambda: not any(e.available for e in api.gateway.registry.entities_of_device("fwsim-u101-dimmer")),
            what="the dimmer offline",
        )
        commands: list[tuple[str, dict[str, Any]]] = [
            (light, {"command": {"on": True}}),  # 200 confirmed
            (light, {"command": {"on": False}, "wait": False}),  # 202 accepted
            (thermostat, {"command": {"target_temperature": 99}}),  # 422 out_of_range
            (light, {"command": {"colour": "red"}}),  # 422 command_invalid
            (lock, {"command": {"action": "lock"}}),  # 409 device_jammed
            (thermostat, {"command": {"mode": "heat"}, "timeout": 0.3}),  # 504 command_timeout
            (dimmer, {"command": {"on": True}}),  # 409 device_offline
            (leak, {"command": {"on": True}}),  # 409 not_commandable
        ]
        scripted = [Scripted("resident", "sendCommand", {"entity_id": entity}, body) for entity, body in commands]
        # The operator may not lock themselves out (schemathesis's CLI did, reusing an id from GET /operator/accounts).
        scripted += [
            Scripted("operator", operation, {"account_id": own_id}, {"reason": "fuzz"})
            for operation in ("disableAccount", "terminateAccount")
        ]
        callers = [
            Caller("anonymous", None),
            Caller("resident", b.alice, tuple(resident_ids)),
            Caller("manager", b.manager, ({"property_id": "p1", "unit_id": "a"},)),
            Caller("installer", b.installer, ({"property_id": "p1", "unit_id": "b"},)),
            Caller("operator", api.operator, ({"account_id": target},)),
        ]
        started = time.monotonic()
        findings, scripted_statuses = await asyncio.to_thread(fuzz, api.service.url, callers, scripted)
        elapsed = time.monotonic() - started
        print(f"schemathesis: {findings.requests} requests in {elapsed:.1f} s")
        for label, statuses in sorted(findings.statuses.items()):
            print(f"  {label}: {sorted(statuses)}")
        assert not findings.failures, findings.report()
        assert scripted_statuses == [200, 202, 422, 422, 409, 504, 409, 409, 409, 409]
        # The fuzzing reached past authentication and validation, into the handlers.
        reached = {label for label, statuses in findings.statuses.items() if statuses & {200, 201, 202, 204}}
        assert len(reached) >= 15, sorted(reached)
        # ... and left the sessions it ran as working.
        for token in (b.alice, b.manager, b.installer, api.operator):
            assert (await api.http.get("/me", headers=bearer(token))).status_code == 200


async def test_stateful_sequences_answer_as_documented_for_each_role(api: Api) -> None:
    """Schemathesis's stateful phase: ids from one answer fed into the next request (links schemathesis infers
    from the schema), as every role; no 5xx and every answer as documented. Derandomized and bounded."""
    async with building(api) as b:
        callers = [
            Caller("anonymous", None),
            Caller("resident", b.alice),
            Caller("installer", b.installer),
            Caller("manager", b.manager),
            Caller("operator", api.operator),
        ]
        started = time.monotonic()
        findings = await asyncio.to_thread(fuzz_stateful, api.service.url, callers)
        elapsed = time.monotonic() - started
        print(f"schemathesis stateful: {findings.requests} requests in {elapsed:.1f} s, sequences {findings.sequences}")
        for label, statuses in sorted(findings.statuses.items()):
            print(f"  {label}: {sorted(statuses)}")
        assert not findings.failures, findings.report()
        assert all(findings.sequences[c.role] >= STATEFUL_EXAMPLES // 2 for c in callers), findings.sequences
        # sequences went past the first request: operations reached with ids an earlier answer gave
        reached = {label for label, statuses in findings.statuses.items() if statuses & {200, 201, 202, 204}}
        assert len(reached) >= 10, sorted(reached)


async def test_checks_catch_an_answer_that_breaks_the_schema(api: Api) -> None:
    """The checks can fail: guards against a fuzzing run that, misconfigured, would check nothing."""

    def probe() -> list[str]:
        schema = schemathesis.openapi.from_url(api.service.url + "/openapi.json")
        operation = schema["/api/v1/me"]["GET"]
        case = operation.Case(headers=bearer(api.operator))
        with requests.Session() as session:
            response = case.call(base_url=api.service.url, session=session, timeout=REQUEST_TIMEOUT)
            assert response.status_code == 200
            case.validate_response(response, checks=[schemathesis.checks.response_schema_conformance])
            # The same answer, checked against another operation's schema, must fail.
            other = schema["/api/v1/me/sessions"]["GET"].Case(headers=bearer(api.operator))
            try:
                other.validate_response(response, checks=[schemathesis.checks.response_schema_conformance])
            except FailureGroup as group:
                return [f.title for f in group.exceptions]
        return []

    titles = await asyncio.to_thread(probe)
    assert titles, "a response that does not match the schema passed response_schema_conformance"
