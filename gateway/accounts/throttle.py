"""The sign-in throttle: failures per username and source address, growing waits, then a lock for a while.

Two counts are kept. From one source address a username gets ``throttle_after`` free failures, then waits of
1, 2, 4 … 60 s, and after ``lock_after`` failures a lock of ``lock_duration``: the lock an attacker earns is theirs,
and the owner signing in from another address is not kept out. Across every source the username-wide count only
slows: after ``slow_after`` failures each attempt waits ``slow_wait`` after the last one, so guessing from many
addresses is bounded without anyone being able to lock the owner out.

An attempt is counted as a failure before the password is checked (in the same transaction as the check) and the
counts are cleared when it succeeds: attempts sent at once cannot all pass a check made before any of them failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from ..clock import Clock
from ..errors import TooManyAttempts
from ..storage import Database
from ..storage.records import transaction
from . import store
from .models import AuthSettings

__all__ = ["SignInThrottle"]

log = logging.getLogger(__name__)


class SignInThrottle:
    """Reserves sign-in attempts per (username, source address) and per username; see the module's docstring."""

    def __init__(self, db: Database, clock: Clock, settings: AuthSettings) -> None:
        self._db = db
        self._clock = clock
        self.settings = settings

    async def attempt(self, username: str, source: str) -> None:
        """TooManyAttempts while ``username`` is locked or must still wait from ``source``; otherwise count this
        attempt as a failure now, in one transaction with the check (``succeeded`` clears it)."""
        now = self._clock.now()
        refusal = await self._db.run(lambda db: self._reserve(db, username, source, now))
        if refusal is not None:
            raise refusal

    async def succeeded(self, username: str, source: str) -> None:
        """The attempt from ``source`` was right: forget the username's failures, there and username-wide."""
        await self._db.run(lambda db: store.clear_attempts(db, username, source))

    def _reserve(self, db: sqlite_utils.Database, username: str, source: str, now: datetime) -> TooManyAttempts | None:
        settings = self.settings
        with transaction(db):
            own = store.get_attempts(db, username, source)
            refusal = self._locked(own, now) or self._waiting(own, now, settings.throttle_after, _doubling)
            wide = store.get_attempts(db, username)
            refusal = refusal or self._waiting(wide, now, settings.slow_after, lambda _: settings.slow_wait)
            if refusal is not None:
                return refusal
            until = (now + settings.lock_duration).isoformat()
            failures = store.count_failure(
                db, username, source, now.isoformat(),
                restart=self._restart(own, now), lock_after=settings.lock_after, locked_until=until,
            )  # fmt: skip
            store.count_failure(
                db,
                username,
                None,
                now.isoformat(),
                restart=self._restart(wide, now),
                lock_after=None,
                locked_until=until,
            )
        if failures >= settings.lock_after:
            log.warning("sign-in locked after repeated failures", extra={"username": username[:64], "source": source})
        return None

    def _locked(self, row: dict[str, Any] | None, now: datetime) -> TooManyAttempts | None:
        if row is None or row["locked_until"] is None:
            return None
        until = datetime.fromisoformat(row["locked_until"])
        if now >= until:
            return None  # the lock has passed; the count starts afresh
        return TooManyAttempts(
            "too many failed sign-ins; try again later", code="account_locked", retry_after=_seconds(until - now)
        )

    def _waiting(
        self, row: dict[str, Any] | None, now: datetime, free: int, wait: Callable[[int], timedelta]
    ) -> TooManyAttempts | None:
        if row is None or self._restart(row, now) or int(row["failures"]) < free:
            return None
        ready = datetime.fromisoformat(row["last_failure_at"]) + wait(int(row["failures"]) - free)
        if now >= ready:
            return None
        return TooManyAttempts("too many failed sign-ins; wait before trying again", retry_after=_seconds(ready - now))

    def _restart(self, row: dict[str, Any] | None, now: datetime) -> bool:
        """Whether the next failure counts from 1: a lock has passed, or the last failure is a lock's length ago."""
        if row is None:
            return True
        if row["locked_until"] is not None:
            return now >= datetime.fromisoformat(row["locked_until"])
        return now - datetime.fromisoformat(row["last_failure_at"]) >= self.settings.lock_duration


def _doubling(beyond: int) -> timedelta:
    return timedelta(seconds=min(2**beyond, 60))


def _seconds(delta: timedelta) -> int:
    return max(1, int(delta.total_seconds() + 0.999))
