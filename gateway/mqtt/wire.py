"""The received message, and the one MQTT packet the gateway parses itself: a plain QoS 0 PUBLISH (MQTT 3.1.1).

Nearly everything the gateway receives is a device's state at QoS 0, and paho spent more CPU on each than the rest
of the client path together (a message object with a ``threading.Condition``, a generic decoder, locks, a log
call, callback matching). ``take_publishes`` reads such packets straight from the receive buffer; it stops at the
first packet that is anything else (another type, QoS 1 or 2, DUP set, an empty or non-UTF-8 topic, a remaining
length that is malformed or not all there yet), which the caller hands to paho in stream order, so that whatever
paho accepts, refuses or treats as a lost connection is exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["InboundMessage", "take_publishes"]


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message received from the broker."""

    topic: str
    payload: bytes
    retain: bool
    qos: int


def take_publishes(data: bytes, pos: int, limit: int, sink: Callable[[InboundMessage], None]) -> tuple[int, int]:
    """Hand each complete QoS 0 PUBLISH in ``data[pos:]`` to ``sink``, at most ``limit``; return (the offset of the
    first packet not taken, how many were taken)."""
    end = len(data)
    taken = 0
    message = InboundMessage
    while taken < limit:
        if end - pos < 2:
            break
        first = data[pos]
        if first & 0xFE != 0x30:  # PUBLISH, QoS 0, no DUP; the low bit is retain
            break
        # The remaining length: 1 to 4 bytes of 7 bits each, least significant first.
        byte = data[pos + 1]
        if byte < 0x80:
            length, start = byte, pos + 2
        else:
            length, shift, start = byte & 0x7F, 7, pos + 2
            while True:
                if start >= end or start - pos > 4:  # not all here yet, or longer than MQTT allows: paho's call
                    return pos, taken
                byte = data[start]
                start += 1
                length |= (byte & 0x7F) << shift
                if byte < 0x80:
                    break
                shift += 7
        stop = start + length
        if stop > end or length < 2:
            break
        topic_stop = start + 2 + ((data[start] << 8) | data[start + 1])
        if topic_stop > stop or topic_stop == start + 2:  # a topic longer than its packet, or empty: paho's call
            break
        try:
            topic = data[start + 2 : topic_stop].decode()
        except UnicodeDecodeError:
            break  # paho's path reports it
        sink(message(topic, data[topic_stop:stop], first == 0x31, 0))
        pos = stop
        taken += 1
    return pos, taken
