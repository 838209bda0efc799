"""``python -m bench.baresub``: a bare subscriber that only counts, the reference the gateway is measured against.

``--client`` picks the library: ``paho`` (its own network thread, as paho is usually run), ``aiomqtt`` (``async
for`` over ``client.messages``) or ``gmqtt`` (an ``on_message`` callback; the bench extra). Each subscribes topic
by topic, 200 filters per SUBSCRIBE, at ``--qos`` (0, as the gateway does by default), counts every message per
topic, and reports when it has ``--expect`` messages or when none has come for ``--idle`` seconds.

Protocol on stdout (JSON lines): ``ready`` once subscribed; ``done`` with the count, the monotonic time of the
first and last message, the topics that got fewer or more than ``--per-topic`` messages, and its CPU seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from collections import Counter
from typing import Any

from .load import reporters, round_publishes

__all__ = ["CLIENTS", "main"]

CLIENTS = ("gmqtt", "paho", "aiomqtt")
_CHUNK = 200


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class _Tally:
    """Counts per topic; notes the first and last arrival; sets ``done`` at ``expect``."""

    def __init__(self, expect: int) -> None:
        self.expect = expect
        self.count = 0
        self.per_topic: Counter[str] = Counter()
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.done = threading.Event()

    def add(self, topic: str) -> None:
        now = time.monotonic()
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        self.count += 1
        self.per_topic[topic] += 1
        if self.count >= self.expect:
            self.done.set()

    def wait(self, idle: float, limit: float) -> None:
        """Until ``expect`` messages, ``idle`` seconds without one once they flow, or ``limit`` seconds in all."""
        deadline = time.monotonic() + limit
        while not self.done.wait(0.1):
            now = time.monotonic()
            if now > deadline or (self.last_at is not None and now - self.last_at > idle):
                return


def _report(tally: _Tally, topics: list[str], per_topic: int) -> None:
    short = sum(max(0, per_topic - tally.per_topic[t]) for t in topics)
    extra = sum(max(0, tally.per_topic[t] - per_topic) for t in topics)
    _emit(
        "done",
        count=tally.count,
        first_at=tally.first_at,
        last_at=tally.last_at,
        lost=short,
        duplicated=extra,
        cpu_seconds=time.process_time(),
    )


def _run_paho(args: argparse.Namespace, topics: list[str], tally: _Tally) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-bare-paho-{time.time_ns()}")
    client.on_message = lambda _c, _u, m: tally.add(m.topic)
    subscribed = threading.Event()
    chunks = len(range(0, len(topics), _CHUNK))
    acked = Counter[str]()

    def on_subscribe(*_a: object) -> None:
        acked["subacks"] += 1  # paho's network thread; CPython makes the increment safe enough for a count
        if acked["subacks"] >= chunks:
            subscribed.set()

    client.on_subscribe = on_subscribe
    client.connect(args.host, args.port, keepalive=60)
    client.loop_start()
    for start in range(0, len(topics), _CHUNK):
        client.subscribe([(t, args.qos) for t in topics[start : start + _CHUNK]])
    if not subscribed.wait(30):
        raise SystemExit("paho: subscriptions not acknowledged within 30 s")
    _emit("ready")
    tally.wait(args.idle, args.limit)
    _report(tally, topics, args.per_topic)
    client.disconnect()
    client.loop_stop()


async def _run_aiomqtt(args: argparse.Namespace, topics: list[str], tally: _Tally) -> None:
    import aiomqtt

    async with aiomqtt.Client(args.host, args.port, identifier=f"bench-bare-aiomqtt-{time.time_ns()}") as client:
        for start in range(0, len(topics), _CHUNK):
            await client.subscribe([(t, args.qos) for t in topics[start : start + _CHUNK]])
        _emit("ready")

        async def count() -> None:
            async for message in client.messages:
                tally.add(message.topic.value)
                if tally.done.is_set():
                    return

        counting = asyncio.create_task(count())
        await asyncio.to_thread(tally.wait, args.idle, args.limit)
        counting.cancel()
        await asyncio.gather(counting, return_exceptions=True)
    _report(tally, topics, args.per_topic)


async def _run_gmqtt(args: argparse.Namespace, topics: list[str], tally: _Tally) -> None:
    import gmqtt  # type: ignore[import-untyped, import-not-found, unused-ignore]

    client = gmqtt.Client(f"bench-bare-gmqtt-{time.time_ns()}")

    def on_message(_client: object, topic: str, _payload: bytes, _qos: int, _properties: object) -> int:
        tally.add(topic)
        return 0

    acked: set[int] = set()
    all_acked = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_subscribe(_client: object, mid: int, _qos: object, _properties: object) -> None:
        acked.add(mid)
        if len(acked) >= chunks:
            loop.call_soon(all_acked.set)

    client.on_message = on_message
    client.on_subscribe = on_subscribe
    await client.connect(args.host, args.port, version=gmqtt.constants.MQTTv311)
    starts = range(0, len(topics), _CHUNK)
    chunks = len(starts)
    for start in starts:
        client.subscribe([gmqtt.Subscription(t, qos=args.qos) for t in topics[start : start + _CHUNK]])
    async with asyncio.timeout(30):
        await all_acked.wait()
    _emit("ready")
    await asyncio.to_thread(tally.wait, args.idle, args.limit)
    _report(tally, topics, args.per_topic)
    await client.disconnect()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bench.baresub``."""
    parser = argparse.ArgumentParser(prog="python -m bench.baresub")
    parser.add_argument("--client", choices=CLIENTS, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--units", type=int, required=True)
    parser.add_argument("--first-unit", type=int, default=1)
    parser.add_argument("--base-topic", required=True)
    parser.add_argument("--per-topic", type=int, required=True, help="messages each topic will get")
    parser.add_argument("--qos", type=int, default=0, choices=(0, 1))
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--limit", type=float, default=300.0)
    args = parser.parse_args(argv)
    topics = sorted({p.topic for p in round_publishes(reporters(args.units, args.base_topic, args.first_unit), 0)})
    tally = _Tally(len(topics) * args.per_topic)
    if args.client == "paho":
        _run_paho(args, topics, tally)
    elif args.client == "aiomqtt":
        asyncio.run(_run_aiomqtt(args, topics, tally))
    else:
        asyncio.run(_run_gmqtt(args, topics, tally))
    return 0


if __name__ == "__main__":
    sys.exit(main())
