"""Read coalescing: at a quiet rate the reader lets messages gather for a moment and reads them in one wake-up.

A lone message costs far more than one of a batch: each wake-up of the event loop runs the whole receive path with
cold caches (measured on the bench, 2,000 devices reporting every 30 s: about 440 µs of CPU a message read one at a
time, 26 µs in a saturated stream). So when the last reads were small, the first byte to arrive does not wake the
reader at once: the socket's receive low-water mark (``SO_RCVLOWAT``) is raised and a timer set; the reader wakes at
the timer, or earlier when enough bytes are waiting (a burst starts), and reads everything in one go. It is the
kernel's own batching (as NIC interrupt moderation, or a Kafka consumer's ``fetch.max.wait.ms``): nothing is lost,
the broker's queue never grows for it (the low-water mark releases at a few KiB), and a held message waits at most
``seconds``.

Whoever needs an answer at once (a command waiting for its PUBACK and its device's confirming state, a
subscription's SUBACK, the liveness echo) runs inside ``expedite()``: no read is held meanwhile, and one held now is
released at the next turn of the loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

__all__ = ["EARLY_BYTES", "LIGHT_PACKETS", "STREAM_SECONDS", "ReadHold"]

EARLY_BYTES = 16384
"""A held socket wakes the reader once this much is waiting (~160 state reports): a burst is read at once."""
LIGHT_PACKETS = 64
"""A read of at least this many packets (or ``early_bytes``), or a hold ended early by ``early_bytes`` waiting,
means a stream: no read is held for ``STREAM_SECONDS``."""
STREAM_SECONDS = 2.0
"""No read is held this long after a sign of a stream (its tail is read as it comes, not a hold later)."""

Release = Callable[[], None]


class ReadHold:
    """How long the reader may let messages gather (0: never), and whether anyone needs them at once now."""

    def __init__(self, seconds: float = 0.0, *, early_bytes: int = EARLY_BYTES) -> None:
        if seconds < 0:
            raise ValueError("a read hold cannot be negative")
        self.seconds = seconds
        self.early_bytes = early_bytes
        self._urgent = 0
        self._releases: list[Release] = []
        self.stream_until = 0.0  # loop time: the reader saw a stream, and holds nothing before it
        self.holds = 0  # reads held (for tests and the operator)
        self.early = 0  # held reads released before their time (a burst, an expedite)

    @property
    def urgent(self) -> bool:
        """Whether someone waits for an answer now."""
        return self._urgent > 0

    def may_hold(self, now: float) -> bool:
        """Whether a read may be held at loop time ``now``: reads are quiet and nobody waits for an answer."""
        return self.quiet(now) and self._urgent == 0

    def quiet(self, now: float) -> bool:
        """Whether reads are held at a quiet rate at loop time ``now``: holding is on and no stream was seen lately."""
        return self.seconds > 0 and now >= self.stream_until

    @contextlib.contextmanager
    def expedite(self) -> Iterator[None]:
        """Within this block nothing is held, and a read held when it starts is released (at the loop's next turn)."""
        self._urgent += 1
        try:
            for release in tuple(self._releases):
                release()
            yield
        finally:
            self._urgent -= 1

    def attach(self, release: Release) -> None:
        """``release`` ends the reader's hold, if any (it must not read synchronously: it runs inside callers)."""
        self._releases.append(release)

    def detach(self, release: Release) -> None:
        """The reader is gone (its socket closed)."""
        with contextlib.suppress(ValueError):
            self._releases.remove(release)
