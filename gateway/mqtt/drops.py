"""The broker's own count of the messages it dropped (Mosquitto's ``$SYS``), read as a sign the gateway missed some.

Mosquitto drops a QoS 0 message to a subscriber whose socket buffers are full and whose queue holds
``max_queued_messages`` already, says so only in its log, and counts it in ``$SYS/broker/publish/messages/dropped``
(every ``sys_interval`` seconds, default 10, retained, published only when it changed). The counter covers every
client of the broker: an increase is the gateway's loss only if the gateway was behind meanwhile (``MqttLink``
decides). The embedded broker (amqtt) publishes no such counter (its queues have no limit): nothing is read there.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DROPPED_TOPIC", "DropCounter", "DropReport"]

DROPPED_TOPIC = "$SYS/broker/publish/messages/dropped"
"""Mosquitto's running count of messages it dropped (to any client), since it started."""


@dataclass(frozen=True, slots=True)
class DropReport:
    """The broker said it dropped ``count`` more messages; ``behind``: while the gateway was behind (its loss)."""

    count: int
    behind: bool


class DropCounter:
    """Follows the broker's dropped-messages counter: each reading's increase over the one before."""

    def __init__(self) -> None:
        self.last: int | None = None

    def forget(self) -> None:
        """A new connection: the next reading is a new baseline (the broker may have restarted, its count at 0)."""
        self.last = None

    def read(self, payload: bytes) -> int:
        """The increase since the previous reading; 0 for the first one, an unreadable one or a lower count (a
        restarted broker counts from 0 again)."""
        try:
            value = int(payload.strip())
        except ValueError:
            return 0
        last, self.last = self.last, value
        if last is None or value <= last:
            return 0
        return value - last
