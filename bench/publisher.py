"""``python -m bench.publisher``: the ingest load generator, a separate process with one paho client.

It connects, builds every message, prints ``{"event": "ready"}``, waits for ``go`` on stdin, publishes the
rounds (each at least ``1 / device-rate`` seconds long, so no device reports faster than that), waits for
every PUBACK and prints what it did as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from .load import reporters, round_publishes

__all__ = ["main"]

_ACK_TIMEOUT = 300.0
# At most this many messages awaiting their PUBACK: paho numbers messages 1..65,535 and keeps those not yet
# acknowledged by number, so a message queued 65,535 publishes after one still unacknowledged replaced it and its
# PUBACK never came (1,000 units x 20 rounds = 100,000 messages: the publisher waited for ever).
_WINDOW = 30_000


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class _Acks:
    """Counts PUBACKs (paho's network thread) and wakes the main thread when ``target`` have come."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._acked = threading.Condition(self._lock)

    def expect(self, target: int) -> None:
        with self._lock:
            self.target = target
            if self.count >= target:
                self.done.set()

    def on_publish(self, *_args: Any) -> None:
        with self._lock:
            self.count += 1
            if self.target and self.count >= self.target:
                self.done.set()
            self._acked.notify_all()

    def wait_below(self, sent: int, window: int, timeout: float) -> bool:
        """Wait until fewer than ``window`` of ``sent`` messages await their PUBACK; False after ``timeout``."""
        with self._acked:
            return self._acked.wait_for(lambda: sent - self.count < window, timeout)


def _connect(host: str, port: int, acks: _Acks) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-publisher-{time.time_ns()}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.on_publish = acks.on_publish
    connected = threading.Event()
    client.on_connect = lambda *_a: connected.set()
    client.connect(host, port, keepalive=60)
    sock = client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.loop_start()
    if not connected.wait(10):
        raise SystemExit(f"publisher: no CONNACK from {host}:{port} within 10 s")
    return client


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bench.publisher``."""
    parser = argparse.ArgumentParser(prog="python -m bench.publisher")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--units", type=int, required=True)
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--base-topic", default="fwsim")
    parser.add_argument("--device-rate", type=float, default=20.0, help="most messages per device per second")
    parser.add_argument("--clear-retained", action="store_true", help="afterwards, clear the retained messages")
    args = parser.parse_args(argv)

    fleet = reporters(args.units, args.base_topic)
    rounds = [round_publishes(fleet, r) for r in range(args.rounds)]
    total = sum(len(r) for r in rounds)
    acks = _Acks()
    client = _connect(args.host, args.port, acks)
    _emit("ready", messages=total, devices=len(fleet))
    if sys.stdin.readline().strip() != "go":
        return 1
    started = time.monotonic()
    min_round = 1.0 / args.device_rate
    sent_count = 0
    stalled = False
    for messages in rounds:
        round_start = time.monotonic()
        for p in messages:
            if sent_count - acks.count >= _WINDOW and not acks.wait_below(sent_count, _WINDOW, _ACK_TIMEOUT):
                stalled = True  # reported below as not acknowledged
                break
            client.publish(p.topic, p.payload, qos=p.qos, retain=p.retain)
            sent_count += 1
        if stalled:
            break
        pause = round_start + min_round - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    sent = time.monotonic() - started
    acks.expect(total)
    acked = acks.done.wait(_ACK_TIMEOUT)
    _emit("sent", messages=total, send_seconds=sent, ack_seconds=time.monotonic() - started, acked=acks.count)
    if args.clear_retained:
        acks.done.clear()
        acks.expect(total + len(fleet))
        for topic in {p.topic for p in rounds[0]}:
            client.publish(topic, b"", qos=1, retain=True)
        acks.done.wait(_ACK_TIMEOUT)
    client.disconnect()
    client.loop_stop()
    _emit("done", acked=acked)
    return 0 if acked else 2


if __name__ == "__main__":
    sys.exit(main())
