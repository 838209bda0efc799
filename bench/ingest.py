"""Telemetry ingest: the gateway's rate of taking in and persisting state, beside a bare MQTT subscriber's.

One publisher process sends the same rounds twice: first on a mirror topic tree nobody but a bare aiomqtt
subscriber (counting, nothing else; subscribed topic by topic at QoS 0, as the gateway is) listens to, then on
the devices' real state topics, which the gateway subscribes to. Each rate is messages / (time from ``go``
until the last message was counted, or until the last device's last state was in the gateway's SQLite
``entities`` table).
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt

from .broker import BrokerUnderTest
from .footprint import cpu_seconds
from .gatewaydb import GatewayDb
from .load import expected_states, reporters, round_publishes
from .process import TCP_NODELAY, BenchError, Child

__all__ = ["MIRROR_TOPIC", "IngestResult", "run_ingest"]

MIRROR_TOPIC = "bench-mirror"
_POLL = 0.05
_SETTLE = 0.5
_CHUNK = 200  # topic filters per SUBSCRIBE, as the gateway sends them


@dataclass
class Pass:
    """One run of the publisher and what received it."""

    messages: int
    seconds: float | None  # from go to the last message counted / persisted; None when it never got there
    publisher_send_s: float
    publisher_acked_s: float

    @property
    def rate(self) -> float | None:
        """Messages per second, or None when the pass did not complete."""
        return None if self.seconds is None or self.seconds <= 0 else self.messages / self.seconds


@dataclass
class IngestResult:
    """Both passes, and whether the gateway kept every device's last state."""

    devices: int
    rounds: int
    device_rate: float
    bare: Pass
    gateway: Pass
    bare_received: int
    bare_stale: int  # topics whose last message at the bare subscriber was not the last one published
    timeout: float
    lost: int  # devices whose stored state is not the last one published
    state_events: int  # state changes the gateway recorded during its pass (one per message, each being a change)
    gateway_cpu_s: float | None = None  # the gateway's CPU time during its pass
    mismatches: list[dict[str, object]] = field(default_factory=list)


class _Counter:
    """Counts every message one aiomqtt client receives (keeping each topic's latest), notes when a target was met."""

    def __init__(self) -> None:
        self.count = 0
        self.target: int | None = None
        self.reached_at: float | None = None
        self.reached = asyncio.Event()
        self.latest: dict[str, object] = {}

    async def run(self, client: aiomqtt.Client) -> None:
        loop = asyncio.get_running_loop()
        async for message in client.messages:
            self.count += 1
            self.latest[message.topic.value] = message.payload
            if self.target is not None and self.count >= self.target and self.reached_at is None:
                self.reached_at = loop.time()
                self.reached.set()
                return


def _publisher(name: str, broker: BrokerUnderTest, units: int, rounds: int, rate: float, logdir: Path) -> Child:
    argv = [sys.executable, "-m", "bench.publisher", "--host", broker.host, "--port", str(broker.port)]
    argv += ["--units", str(units), "--rounds", str(rounds), "--device-rate", f"{rate:g}"]
    if name == "bare":
        argv += ["--base-topic", MIRROR_TOPIC, "--clear-retained"]
    return Child(f"publisher-{name}", argv, logdir, interactive=True)


async def _finish_publisher(pub: Child, timeout: float) -> tuple[float, float]:
    sent = await pub.event(timeout)
    done = await pub.event(timeout)
    await pub.stop()
    if sent.get("acked") != sent.get("messages") or not done.get("acked"):
        raise BenchError(f"publisher: only {sent.get('acked')} of {sent.get('messages')} messages acknowledged")
    return float(sent["send_seconds"]), float(sent["ack_seconds"])


async def _bare_pass(
    broker: BrokerUnderTest, units: int, rounds: int, rate: float, logdir: Path, timeout: float
) -> tuple[Pass, int, int]:
    counter = _Counter()
    client = aiomqtt.Client(broker.host, broker.port, identifier="bench-bare-subscriber", socket_options=[TCP_NODELAY])
    loop = asyncio.get_running_loop()
    pub = _publisher("bare", broker, units, rounds, rate, logdir)
    try:
        async with client, asyncio.TaskGroup() as group:
            topics = sorted(p.topic for p in round_publishes(reporters(units, MIRROR_TOPIC), 0))
            for start in range(0, len(topics), _CHUNK):
                await client.subscribe([(t, 0) for t in topics[start : start + _CHUNK]])
            counting = group.create_task(counter.run(client), name="bench-bare-counter")
            await pub.start()
            ready = await pub.event(timeout)
            messages = int(ready["messages"])
            await asyncio.sleep(_SETTLE)  # anything retained from an earlier, interrupted run arrives first
            counter.target = counter.count + messages
            baseline = counter.count
            started = loop.time()
            await pub.send("go")
            try:
                async with asyncio.timeout(timeout):
                    await counter.reached.wait()
            except TimeoutError:
                counting.cancel()
            send_s, acked_s = await _finish_publisher(pub, timeout)
    finally:
        await pub.stop()
    seconds = None if counter.reached_at is None else counter.reached_at - started
    last = {p.topic: p.payload for p in round_publishes(reporters(units, MIRROR_TOPIC), rounds - 1)}
    stale = sum(counter.latest.get(topic) != payload for topic, payload in last.items())
    return Pass(messages, seconds, send_s, acked_s), counter.count - baseline, stale


async def _gateway_pass(
    broker: BrokerUnderTest, db: GatewayDb, units: int, rounds: int, rate: float, logdir: Path, timeout: float
) -> tuple[Pass, dict[str, str], int]:
    expected = expected_states(reporters(units), rounds)
    keys = set(expected)
    loop = asyncio.get_running_loop()
    before = db.last_event_id()
    pub = _publisher("gateway", broker, units, rounds, rate, logdir)
    try:
        await pub.start()
        ready = await pub.event(timeout)
        messages = int(ready["messages"])
        started = loop.time()
        await pub.send("go")
        seconds: float | None = None
        while loop.time() - started < timeout:
            stored = db.states(keys)
            if all(stored.get(k) == v for k, v in expected.items()):
                seconds = loop.time() - started
                break
            await asyncio.sleep(_POLL)
        send_s, acked_s = await _finish_publisher(pub, timeout)
    finally:
        await pub.stop()
    return Pass(messages, seconds, send_s, acked_s), expected, before


async def run_ingest(
    broker: BrokerUnderTest, db: GatewayDb, gateway_pid: int, units: int, rounds: int, device_rate: float, logdir: Path
) -> IngestResult:
    """Both passes; then compare every device's stored state with the last one published."""
    devices = units * 5
    timeout = max(60.0, devices * rounds / 200)
    bare, received, stale = await _bare_pass(broker, units, rounds, device_rate, logdir, timeout)
    cpu = cpu_seconds(gateway_pid)
    gateway, expected, before = await _gateway_pass(broker, db, units, rounds, device_rate, logdir, timeout)
    cpu = cpu_seconds(gateway_pid) - cpu
    stored = db.states(set(expected))
    mismatches: list[dict[str, object]] = []
    for key, want in expected.items():
        have = stored.get(key)
        if have is None or json.loads(have) != json.loads(want):
            mismatches.append({"entity": key, "stored": have, "published_last": want})
    return IngestResult(
        devices=devices,
        rounds=rounds,
        device_rate=device_rate,
        bare=bare,
        gateway=gateway,
        bare_received=received,
        bare_stale=stale,
        timeout=timeout,
        gateway_cpu_s=cpu,
        lost=len(mismatches),
        state_events=db.count_events("state", before),
        mismatches=mismatches[:10],
    )
