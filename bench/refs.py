"""The ingest references: the gateway beside bare gmqtt, paho and aiomqtt subscribers, fed by a publisher that is
never the bottleneck, every message counted.

Each pass runs alone (nothing else measured at the same time): one ``bench.blaster`` process sends the same rounds,
once per bare subscriber on a topic tree of its own (a mirror of the devices' state topics nobody else listens to)
and once on the devices' real state topics, which the gateway subscribes to. For each: messages per second from
``go`` to the last message counted (bare) or to every device's last state and every state event stored (gateway);
CPU microseconds per message (the process's CPU time over the pass / messages); messages lost, counted per message:
a bare subscriber counts every topic's messages, the gateway's ``events`` table must hold one ``state`` event per
published change, once. The publisher's own send rate is printed beside each pass: a consumer within 80 % of it
may have been held back by the publisher, and the figure says so. Every figure carries the load average it was
measured under (the machine is shared: only ratios within one run mean anything).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .broker import BrokerUnderTest
from .footprint import cpu_seconds
from .gatewaydb import GatewayDb
from .load import reporters, round_publishes
from .process import BenchError, Child

__all__ = [
    "CpuPass",
    "RefPass",
    "RefsResult",
    "available_clients",
    "blaster",
    "expected_changes",
    "load_average",
    "run_refs",
]

PUBLISHER_HEADROOM = 0.8  # a consumer above this share of the publisher's send rate may be publisher-bound
_POLL = 0.05
_SETTLE = 0.6  # the gateway flushes every 0.2 s
_REALISTIC_SETTLE = 10.0  # the longest wait for the last quiet reports (held, then written)
STILL_SECONDS = 25.0
"""The gateway pass ends this long after the publisher is done and no state event came: what is missing by then was
lost (Mosquitto reports drops every sys_interval, 10 s by default, and the gateway resyncs once caught up)."""
RECOVERED_STILL_SECONDS = 5.0  # as above once every final state is stored: only the events of the changes missed
DROPPED_STILL_SECONDS = 80.0
"""As above once the gateway journalled a drop of its own and the final states are not all stored yet: its resync
may wait for the once-a-minute limit (a stall or a reconnection resynced shortly before)."""


def available_clients() -> list[str]:
    """The bare references this environment can run: gmqtt only with the bench extra installed."""
    clients = ["paho", "aiomqtt"]
    if importlib.util.find_spec("gmqtt") is not None:
        clients.insert(0, "gmqtt")
    return clients


def load_average() -> float:
    """The 1-minute load average now."""
    return os.getloadavg()[0]


@dataclass
class RefPass:
    """One consumer's pass: what it took in, how fast, at what CPU cost, and what it lost."""

    consumer: str  # gmqtt, paho, aiomqtt or gateway
    messages: int
    received: int
    seconds: float | None
    cpu_s: float | None
    lost: int
    duplicated: int
    publisher_rate: float  # messages / the publisher's time from go to its last send
    load_avg: float
    timed_out: bool = False
    # The gateway's pass only: what it detected and recovered of what it lost (its journal: resync and
    # broker_dropped events), and whether every device's final state was stored in the end.
    resyncs: list[str] = field(default_factory=list)
    broker_dropped: int = 0
    final_states: bool | None = None

    @property
    def rate(self) -> float | None:
        """Messages per second, or None when the pass did not complete."""
        return None if self.seconds is None or self.seconds <= 0 else self.received / self.seconds

    @property
    def cpu_us_per_message(self) -> float | None:
        """CPU microseconds per message taken in."""
        return None if self.cpu_s is None or not self.received else 1e6 * self.cpu_s / self.received

    @property
    def publisher_bound(self) -> bool:
        """Whether the consumer came so close to the publisher's rate that the publisher may have been the limit."""
        rate = self.rate
        return rate is not None and rate >= PUBLISHER_HEADROOM * self.publisher_rate


@dataclass
class CpuPass:
    """The gateway at a realistic rate: CPU per message over a window of slow, steady reports."""

    messages: int
    seconds: float
    cpu_s: float
    lost: int
    load_avg: float

    @property
    def cpu_us_per_message(self) -> float:
        """CPU microseconds per message, idle work included (that is the point)."""
        return 1e6 * self.cpu_s / max(self.messages, 1)


@dataclass
class RefsResult:
    """Every pass of one run."""

    devices: int
    rounds: int
    device_rate: float
    passes: list[RefPass] = field(default_factory=list)
    realistic: CpuPass | None = None
    skipped: list[str] = field(default_factory=list)

    def of(self, consumer: str) -> RefPass | None:
        """The pass of ``consumer``, if it ran."""
        return next((p for p in self.passes if p.consumer == consumer), None)


def blaster(
    broker: BrokerUnderTest, units: int, rounds: int, rate: float, base: str, logdir: Path, *, spread: bool = False
) -> Child:
    """The raw-socket publisher (``bench.blaster``) of ``rounds`` reports per device of ``units``, paced at ``rate``
    rounds a second (``spread``: each round's reports evenly over its time), as a child process not started yet."""
    argv = [sys.executable, "-m", "bench.blaster", "--host", broker.host, "--port", str(broker.port)]
    argv += ["--units", str(units), "--rounds", str(rounds), "--device-rate", f"{rate:g}", "--base-topic", base]
    argv += ["--spread"] if spread else []
    return Child(f"blaster-{base.replace('/', '-')}", argv, logdir, interactive=True)


async def _bare_pass(
    client: str, broker: BrokerUnderTest, units: int, rounds: int, rate: float, logdir: Path, timeout: float
) -> RefPass:
    base = f"bench-{client}-{time.time_ns() % 10**9}"  # a tree of its own: no retained message of another pass
    argv = [sys.executable, "-m", "bench.baresub", "--client", client, "--host", broker.host]
    argv += ["--port", str(broker.port), "--units", str(units), "--base-topic", base, "--per-topic", str(rounds)]
    argv += ["--limit", f"{timeout:g}"]
    sub = Child(f"bare-{client}", argv, logdir, interactive=True)
    pub = blaster(broker, units, rounds, rate, base, logdir)
    try:
        await sub.start()
        await sub.event(timeout)  # ready: subscribed
        await pub.start()
        ready = await pub.event(timeout)
        cpu0 = cpu_seconds(sub.pid)
        go = time.monotonic()
        await pub.send("go")
        sent = await pub.event(timeout)
        done = await sub.event(timeout + 10)
        await pub.send("clear")
        await pub.event(timeout)
    finally:
        await sub.stop()
        await pub.stop()
    last = done.get("last_at")
    return RefPass(
        consumer=client,
        messages=int(ready["messages"]),
        received=int(done["count"]),
        seconds=None if last is None else float(last) - go,
        cpu_s=float(done["cpu_seconds"]) - cpu0,
        lost=int(done["lost"]),
        duplicated=int(done["duplicated"]),
        publisher_rate=int(ready["messages"]) / max(float(sent["send_seconds"]), 1e-9),
        load_avg=load_average(),
        timed_out=int(done["count"]) < int(ready["messages"]),
    )


def expected_changes(units: int, rounds: int, before: dict[str, str | None]) -> dict[str, int]:
    """State changes each entity's reports make, given its stored state ``before``: one per report that differs
    from the one before it (the first compared with what the gateway holds)."""
    out: dict[str, int] = {}
    for reporter in reporters(units):
        stored = before.get(reporter.entity_key)
        previous = None if stored is None else json.loads(stored)
        changes = 0
        for r in range(rounds):
            state = None
            for p in round_publishes([reporter], r):
                state = reporter.config.decode_state(p.topic, p.payload, state)
            now = None if state is None else json.loads(state.model_dump_json())
            changes += now != previous
            previous = now
        out[reporter.entity_key] = changes
    return out


def _final_states(units: int, rounds: int) -> dict[str, object]:
    out: dict[str, object] = {}
    for reporter in reporters(units):
        state = None
        for p in round_publishes([reporter], rounds - 1):
            state = reporter.config.decode_state(p.topic, p.payload, state)
        out[reporter.entity_key] = None if state is None else json.loads(state.model_dump_json())
    return out


def _states_match(db: GatewayDb, want: dict[str, object]) -> bool:
    stored = db.states(set(want))
    return all(stored.get(k) is not None and json.loads(str(stored[k])) == v for k, v in want.items())


async def _gateway_pass(
    broker: BrokerUnderTest,
    db: GatewayDb,
    gateway_pid: int,
    units: int,
    rounds: int,
    rate: float,
    logdir: Path,
    timeout: float,
) -> RefPass:
    keys = {r.entity_key for r in reporters(units)}
    expected = expected_changes(units, rounds, db.states(keys))
    want = _final_states(units, rounds)
    before = db.last_event_id()
    pub = blaster(broker, units, rounds, rate, "fwsim", logdir)
    seconds: float | None = None
    total = sum(expected.values())
    try:
        await pub.start()
        ready = await pub.event(timeout)
        cpu0 = cpu_seconds(gateway_pid)
        go = time.monotonic()
        await pub.send("go")
        sending = asyncio.ensure_future(pub.event(timeout))
        try:
            # Bounded: once the publisher is done, a pass whose events stop growing has ended, complete or not (a
            # burst beyond the broker's queue limit loses messages for good; the resync brings back final states).
            count, moved = -1, time.monotonic()
            while time.monotonic() - go < timeout:
                now_count = db.count_events("state", before)
                matched = _states_match(db, want)
                if matched and now_count >= total:
                    seconds = time.monotonic() - go
                    break
                if now_count != count:
                    count, moved = now_count, time.monotonic()
                still = time.monotonic() - moved
                if sending.done() and still >= _still_limit(db, before, matched):
                    break
                await asyncio.sleep(_POLL)
            cpu = cpu_seconds(gateway_pid) - cpu0
            sent = await sending
        finally:
            sending.cancel()
        await pub.send("quit")
        await pub.event(timeout)
    finally:
        await pub.stop()
    await asyncio.sleep(_SETTLE)  # anything still on its way (a duplicate would show now)
    got = db.state_events_by_entity(before)
    lost = sum(max(0, n - got.get(k, 0)) for k, n in expected.items())
    duplicated = sum(max(0, got.get(k, 0) - n) for k, n in expected.items())
    messages = int(ready["messages"])
    return RefPass(
        consumer="gateway",
        messages=messages,
        received=messages if seconds is not None else messages - lost,
        seconds=seconds,
        cpu_s=cpu,
        lost=lost,
        duplicated=duplicated,
        publisher_rate=messages / max(float(sent["send_seconds"]), 1e-9),
        load_avg=load_average(),
        timed_out=seconds is None,
        resyncs=[str(e.get("kind")) for e in db.event_data("resync", before)],
        broker_dropped=sum(
            int(str(e.get("count", 0))) for e in db.event_data("broker_dropped", before) if e.get("while_behind")
        ),
        final_states=_states_match(db, want),
    )


def _still_limit(db: GatewayDb, before: int, matched: bool) -> float:
    """How long the gateway pass waits with no new state event before it ends (see ``STILL_SECONDS``)."""
    if matched:
        return RECOVERED_STILL_SECONDS
    if any(e.get("while_behind") for e in db.event_data("broker_dropped", before)):
        return DROPPED_STILL_SECONDS
    return STILL_SECONDS


async def _realistic_pass(
    broker: BrokerUnderTest, db: GatewayDb, gateway_pid: int, units: int, window: float, logdir: Path
) -> CpuPass:
    """Two reports per device spread over ``window`` seconds (a report every window/2 s): the gateway's CPU over
    the whole window, idle work included, per message."""
    rounds = 2
    rate = rounds / window
    keys = {r.entity_key for r in reporters(units)}
    expected = expected_changes(units, rounds, db.states(keys))
    before = db.last_event_id()
    # Spread: the devices' reports one after another at the steady rate (a round sent at once would be two bursts
    # and an idle window, not a realistic rate).
    pub = blaster(broker, units, rounds, rate, "fwsim", logdir, spread=True)
    try:
        await pub.start()
        ready = await pub.event(60)
        cpu0, go = cpu_seconds(gateway_pid), time.monotonic()
        await pub.send("go")
        await pub.event(window + 60)
        await asyncio.sleep(max(0.0, go + window - time.monotonic()))
        cpu, seconds = cpu_seconds(gateway_pid) - cpu0, time.monotonic() - go
        await pub.send("quit")
        await pub.event(60)
    finally:
        await pub.stop()
    got = await db.state_events_settled(before, expected, _REALISTIC_SETTLE)
    lost = sum(max(0, n - got.get(k, 0)) for k, n in expected.items())
    return CpuPass(int(ready["messages"]), seconds, cpu, lost, load_average())


async def run_refs(
    broker: BrokerUnderTest,
    db: GatewayDb,
    gateway_pid: int,
    units: int,
    rounds: int,
    device_rate: float,
    logdir: Path,
    *,
    realistic_seconds: float,
    clients: tuple[str, ...] | None = None,
    say: object = None,
) -> RefsResult:
    """Every bare reference this environment has, then the gateway, then (if asked) the realistic-rate window."""
    devices = units * 5
    timeout = max(60.0, devices * rounds / 500)
    result = RefsResult(devices, rounds, device_rate)
    installed = available_clients()
    chosen = [c for c in installed if clients is None or c in clients]
    if "gmqtt" not in installed:
        result.skipped.append("gmqtt: not installed (pip install -e '.[bench]'; ./bench.sh installs it)")
    for client in chosen:
        _say(say, f"ingest reference: bare {client} subscriber, {devices * rounds:,} messages")
        result.passes.append(await _bare_pass(client, broker, units, rounds, device_rate, logdir, timeout))
    _say(say, f"ingest: the gateway, {devices * rounds:,} messages")
    result.passes.append(await _gateway_pass(broker, db, gateway_pid, units, rounds, device_rate, logdir, timeout))
    if realistic_seconds > 0:
        _say(say, f"realistic rate: 2 reports per device over {realistic_seconds:g} s")
        result.realistic = await _realistic_pass(broker, db, gateway_pid, units, realistic_seconds, logdir)
    if result.of("gateway") is None:
        raise BenchError("the gateway's ingest pass did not run")
    return result


def _say(say: object, text: str) -> None:
    if callable(say):
        say(text)
