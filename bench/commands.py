"""Command round trips: HTTP command -> gateway -> MQTT -> simulator -> confirming state -> HTTP answer,
beside the bare MQTT round trip (publish the same command on the device's command topic at QoS 1, wait for
the state that confirms it) over the same devices, in the same order, at the same pace.

The commands go round-robin over every device that takes commands in one gateway unit (up to the plan's 20
devices: the fleet units u001..u004), and no device gets more than one command per ``1 / device_rate`` s:
each command makes its device report back, and the gateway throttles a device above 50 messages/s.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import httpx

from devices import Command, DeviceCodecError, EntityState, OutcomeStatus

from .http11 import Http11Client
from .load import Reporter, reporters
from .process import TCP_NODELAY, BenchError

__all__ = [
    "Latencies",
    "Poster",
    "command_plan",
    "gateway_round_trips",
    "h11_poster",
    "httpx_poster",
    "mqtt_round_trips",
    "percentile",
]

_COMMANDABLE = ("light", "dimmer", "lock", "thermostat")
_TIMEOUT = 10.0
MAX_UNITS = 4  # 4 units x 5 devices = the default plan's 20 devices per unit


@dataclass
class Latencies:
    """Round-trip times in milliseconds, and what did not come back confirmed."""

    ms: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def fail(self, reason: str) -> None:
        """Count one command that did not end confirmed."""
        self.failures[reason] = self.failures.get(reason, 0) + 1

    def p(self, q: float) -> float | None:
        """The ``q`` quantile (nearest rank), or None with no samples."""
        return percentile(self.ms, q)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank quantile ``q`` (0..1) of ``values``."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def command_plan(units: int) -> list[Reporter]:
    """The devices commands go to: those that take commands in the first ``min(units, 4)`` fleet units."""
    return [r for r in reporters(min(units, MAX_UNITS)) if r.name in _COMMANDABLE]


def command_for(reporter: Reporter, k: int) -> dict[str, Any]:
    """The ``k``-th command for ``reporter``: it always changes something, so the device always reports."""
    if reporter.name == "light":
        return {"on": k % 2 == 0}
    if reporter.name == "dimmer":
        return {"on": True, "brightness": 1 + k % 254}
    if reporter.name == "lock":
        return {"action": "lock" if k % 2 == 0 else "unlock"}
    return {"target_temperature": 20.0 if k % 2 == 0 else 21.0}


class _Pacer:
    """Keeps each device to at most ``rate`` commands per second."""

    def __init__(self, rate: float) -> None:
        self._gap = 1.0 / rate
        self._last: dict[str, float] = {}

    async def wait(self, device: str) -> None:
        last = self._last.get(device)
        if last is not None:
            pause = last + self._gap - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
        self._last[device] = time.perf_counter()


Poster = Callable[[str, dict[str, Any]], Awaitable[tuple[int, Any]]]


def h11_poster(client: Http11Client, token: str) -> Poster:
    """POST through the lean h11 client (the timed figure)."""

    async def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        reply = await client.post_json(path, body, token)
        return reply.status, reply.json()

    return post


def httpx_poster(client: httpx.AsyncClient, token: str) -> Poster:
    """POST through httpx (the note: what a heavier client adds)."""
    headers = {"Authorization": f"Bearer {token}"}

    async def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        response = await client.post(path, json=body, headers=headers)
        return response.status_code, response.json()

    return post


async def gateway_round_trips(post: Poster, plan: list[Reporter], count: int, device_rate: float) -> Latencies:
    """``count`` sequential commands through the API (``POST /me/entities/{id}/commands``, waiting for the outcome)."""
    out = Latencies()
    pacer = _Pacer(device_rate)
    started = time.perf_counter()
    for i in range(count):
        reporter = plan[i % len(plan)]
        body = {"command": command_for(reporter, i // len(plan))}
        await pacer.wait(reporter.device_id)
        t0 = time.perf_counter()
        try:
            status, answer = await post(f"/me/entities/{reporter.api_id}/commands", body)
        except (httpx.HTTPError, BenchError, OSError) as exc:
            out.fail(type(exc).__name__)
            continue
        elapsed = (time.perf_counter() - t0) * 1000
        if status == 200 and answer.get("status") == "confirmed":
            out.ms.append(elapsed)
        else:
            out.fail(f"{status} {answer.get('code') or answer.get('status')}")
    out.seconds = time.perf_counter() - started
    return out


class _Confirmations:
    """Feeds state reports to the one command waiting on that topic; resolves it when the state confirms."""

    def __init__(self) -> None:
        self.previous: dict[str, EntityState] = {}
        self.waiting: tuple[Reporter, Command, asyncio.Future[None]] | None = None

    async def run(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            waiting = self.waiting
            if waiting is None or not isinstance(message.payload, bytes | bytearray):
                continue
            reporter, command, future = waiting
            topic = message.topic.value
            if topic not in reporter.config.state_topics():
                continue
            previous = self.previous.get(reporter.entity_key)
            try:
                state = reporter.config.decode_state(topic, bytes(message.payload), previous)
            except DeviceCodecError:
                continue  # not a confirmation; the command times out if none comes
            self.previous[reporter.entity_key] = state
            if reporter.config.outcome(command, state).status is OutcomeStatus.CONFIRMED and not future.done():
                future.set_result(None)


async def mqtt_round_trips(host: str, port: int, plan: list[Reporter], count: int, device_rate: float) -> Latencies:
    """``count`` sequential commands straight over MQTT (aiomqtt, QoS 1, TCP_NODELAY), each until confirmed."""
    out = Latencies()
    pacer = _Pacer(device_rate)
    confirmations = _Confirmations()
    client = aiomqtt.Client(host, port, identifier="bench-bare-commander", socket_options=[TCP_NODELAY])
    loop = asyncio.get_running_loop()
    async with client, asyncio.TaskGroup() as group:
        topics = sorted({t for r in plan for t in r.config.state_topics()})
        await client.subscribe([(t, 0) for t in topics])
        receiver = group.create_task(confirmations.run(client), name="bench-bare-confirmations")
        await asyncio.sleep(0.3)  # the retained states arrive first
        started = time.perf_counter()
        for i in range(count):
            reporter = plan[i % len(plan)]
            model = reporter.config.command_model
            if model is None:
                raise BenchError(f"{reporter.entity_key} takes no commands")
            command = model.model_validate(command_for(reporter, i // len(plan)))
            await pacer.wait(reporter.device_id)
            future: asyncio.Future[None] = loop.create_future()
            confirmations.waiting = (reporter, command, future)
            t0 = time.perf_counter()
            try:
                for p in reporter.config.encode_command(command):
                    await client.publish(p.topic, p.payload, qos=p.qos, retain=False)
                async with asyncio.timeout(_TIMEOUT):
                    await future
            except TimeoutError:
                out.fail("timeout")
                continue
            finally:
                confirmations.waiting = None
            out.ms.append((time.perf_counter() - t0) * 1000)
        out.seconds = time.perf_counter() - started
        receiver.cancel()
    return out
