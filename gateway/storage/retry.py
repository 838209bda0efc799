"""A background writer's pace and voice after StorageError: capped backoff, and a log that does not flood."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..backoff import Backoff
from ..errors import StorageError

__all__ = ["StorageRetry"]


class StorageRetry:
    """Tracks one writer's consecutive storage failures: ``failed`` logs (the first, a new code, then at most one
    every ``log_every`` seconds) and returns the delay before the next try; ``succeeded`` says when it writes again."""

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        *,
        initial: float = 1.0,
        cap: float = 30.0,
        log_every: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self.what = what
        self._backoff = Backoff(initial, 2.0, cap)  # the link's pace, without its jitter: one writer per loop
        self.log_every = log_every
        self._monotonic = monotonic
        self.failures = 0
        self.last_error: StorageError | None = None
        self._logged_at = 0.0
        self._unsaid = 0

    def failed(self, exc: StorageError) -> float:
        """Note a failure (logged unless one was said lately); the seconds to wait before trying again."""
        now = self._monotonic()
        self.failures += 1
        changed = self.last_error is None or self.last_error.code != exc.code
        if changed or now - self._logged_at >= self.log_every:
            self._log.error(
                "%s: %s", self.what, exc, extra={"code": exc.code, "failures": self.failures, "unsaid": self._unsaid}
            )
            self._logged_at, self._unsaid = now, 0
        else:
            self._unsaid += 1
        self.last_error = exc
        return self.delay()

    def delay(self) -> float:
        """Seconds to wait before the next try: doubling from ``initial`` with each failure, at most ``cap``."""
        return 0.0 if self.failures == 0 else self._backoff.ceiling(self.failures - 1)

    def succeeded(self) -> None:
        """Note a write that went through (logged once if it ends a run of failures)."""
        if self.failures:
            self._log.info("%s: storage writable again", self.what, extra={"after_failures": self.failures})
        self.failures, self.last_error, self._unsaid = 0, None, 0
