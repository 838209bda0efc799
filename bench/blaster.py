"""``python -m bench.blaster``: a publisher that is never the bottleneck, for the ingest references.

Every PUBLISH packet (MQTT 3.1.1, QoS 1, retained, as devices report) is encoded before ``go``; each round is then
one ``sendall`` of its packets, paced so that no device reports faster than ``--device-rate``. A thread counts the
PUBACKs as they come. No client library sits between the packets and the socket, so the publisher costs about a
microsecond per message, and it prints its own send rate so that the bench can check it was never the limit.

Protocol on stdin/stdout (JSON lines): ``ready`` (messages, devices) -> ``go`` -> ``sent`` (send and ack times)
-> ``clear`` or ``quit`` -> ``done``. ``clear`` first empties every topic's retained message.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import threading
import time
from typing import Any

from .load import reporters, round_publishes

__all__ = ["connect_packet", "main", "publish_packet"]

_ACK_TIMEOUT = 300.0
_PUBACK_SIZE = 4


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str) -> bytes:
    """CONNECT, MQTT 3.1.1, clean session, no keep-alive (the run is short and the broker local)."""
    body = _string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 0) + _string(client_id)
    return b"\x10" + _remaining_length(len(body)) + body


def publish_packet(topic: str, payload: bytes, packet_id: int, *, retain: bool = True) -> bytes:
    """PUBLISH at QoS 1."""
    body = _string(topic) + struct.pack("!H", packet_id) + payload
    return bytes([0x32 | (1 if retain else 0)]) + _remaining_length(len(body)) + body


class _Acks(threading.Thread):
    """Counts PUBACKs (the only packets a publisher with no subscription receives) until the socket closes."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(name="blaster-acks", daemon=True)
        self._sock = sock
        self._bytes = 0
        self._cond = threading.Condition()

    @property
    def count(self) -> int:
        return self._bytes // _PUBACK_SIZE

    def run(self) -> None:
        while True:
            try:
                data = self._sock.recv(1 << 16)
            except OSError:
                data = b""
            with self._cond:
                self._bytes += len(data)
                self._cond.notify_all()
            if not data:
                return

    def wait_for(self, target: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.count >= target, timeout)


def _connect(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(connect_packet(f"bench-blaster-{time.time_ns()}"))
    connack = b""
    while len(connack) < _PUBACK_SIZE:
        chunk = sock.recv(_PUBACK_SIZE - len(connack))
        if not chunk:
            raise SystemExit(f"blaster: {host}:{port} closed the connection before CONNACK")
        connack += chunk
    if connack[0] != 0x20 or connack[3] != 0:
        raise SystemExit(f"blaster: connection refused: {connack!r}")
    sock.settimeout(None)
    return sock


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bench.blaster``."""
    parser = argparse.ArgumentParser(prog="python -m bench.blaster")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--units", type=int, required=True)
    parser.add_argument("--first-unit", type=int, default=1)
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--base-topic", default="fwsim")
    parser.add_argument("--device-rate", type=float, default=50.0, help="most messages per device per second")
    parser.add_argument(
        "--spread", action="store_true", help="each round's messages evenly over the round (a steady rate), not at once"
    )
    args = parser.parse_args(argv)

    fleet = reporters(args.units, args.base_topic, args.first_unit)
    rounds: list[list[bytes]] = []
    packet_id = 0
    topics: list[str] = []
    total = 0
    for r in range(args.rounds):
        packets = []
        for p in round_publishes(fleet, r):
            packet_id = packet_id % 65535 + 1
            packets.append(publish_packet(p.topic, p.payload, packet_id))
            if r == 0:
                topics.append(p.topic)
        total += len(packets)
        rounds.append(packets if args.spread else [b"".join(packets)])
    sock = _connect(args.host, args.port)
    acks = _Acks(sock)
    acks.start()
    _emit("ready", messages=total, devices=len(fleet), bytes=sum(len(p) for r in rounds for p in r))
    if sys.stdin.readline().strip() != "go":
        return 1
    started = time.monotonic()
    min_round = 1.0 / args.device_rate
    busy = 0.0  # time spent sending, without the pacing pauses
    for packets in rounds:
        round_start = time.monotonic()
        step = min_round / len(packets)  # a round sent at once is one packet of all its messages
        for n, data in enumerate(packets):
            wait = round_start + n * step - time.monotonic()
            if wait > 0 and n:
                time.sleep(wait)
            sent_at = time.monotonic()
            sock.sendall(data)
            busy += time.monotonic() - sent_at
        pause = round_start + min_round - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    sent = time.monotonic() - started
    acked = acks.wait_for(total, _ACK_TIMEOUT)
    _emit(
        "sent",
        messages=total,
        started_at=started,
        send_seconds=sent,
        busy_seconds=busy,
        ack_seconds=time.monotonic() - started,
        acked=acks.count,
        cpu_seconds=time.process_time(),
    )
    command = sys.stdin.readline().strip()
    if command == "clear":
        for n, topic in enumerate(topics):
            sock.sendall(publish_packet(topic, b"", n % 65535 + 1))
        acks.wait_for(total + len(topics), _ACK_TIMEOUT)
    sock.sendall(b"\xe0\x00")
    sock.close()
    _emit("done", acked=acked)
    return 0 if acked else 2


if __name__ == "__main__":
    sys.exit(main())
