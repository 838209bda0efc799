"""The sign-in throttle: failures per username, growing waits, then a lock for a while."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from ..clock import Clock
from ..errors import TooManyAttempts
from ..storage import Database
from . import store
from .models import AuthSettings

__all__ = ["SignInThrottle"]

log = logging.getLogger(__name__)


class SignInThrottle:
    """After ``throttle_after`` failures each attempt waits 1, 2, 4 … 60 s; after ``lock_after`` the username is
    locked for ``lock_duration``."""

    def __init__(self, db: Database, clock: Clock, settings: AuthSettings) -> None:
        self._db = db
        self._clock = clock
        self.settings = settings

    async def check(self, username: str) -> None:
        """TooManyAttempts while the username is locked or must still wait after its last failure."""
        row = await self._db.run(lambda db: store.get_attempts(db, username))
        if row is None:
            return
        now = self._clock.now()
        if row["locked_until"] is not None:
            until = datetime.fromisoformat(row["locked_until"])
            if now < until:
                raise TooManyAttempts(
                    "too many failed sign-ins; try again later",
                    code="account_locked",
                    retry_after=_seconds(until - now),
                )
            return  # the lock has passed; _fail starts counting afresh
        failures = int(row["failures"])
        if failures >= self.settings.throttle_after:
            wait = timedelta(seconds=min(2 ** (failures - self.settings.throttle_after), 60))
            ready = datetime.fromisoformat(row["last_failure_at"]) + wait
            if now < ready:
                raise TooManyAttempts(
                    "too many failed sign-ins; wait before trying again", retry_after=_seconds(ready - now)
                )

    async def fail(self, username: str) -> None:
        """Count a failed sign-in of ``username``; lock it once the failures reach the limit."""
        row = await self._db.run(lambda db: store.get_attempts(db, username))
        now = self._clock.now()
        failures = 1
        if row is not None:
            stale = now - datetime.fromisoformat(row["last_failure_at"]) >= self.settings.lock_duration
            failures = 1 if stale or row["locked_until"] is not None else int(row["failures"]) + 1
        locked_until = None
        if failures >= self.settings.lock_after:
            locked_until = (now + self.settings.lock_duration).isoformat()
            log.warning("sign-in locked after repeated failures", extra={"username": username[:64]})
        await self._db.run(lambda db: store.record_failure(db, username, failures, now.isoformat(), locked_until))


def _seconds(delta: timedelta) -> int:
    return max(1, int(delta.total_seconds() + 0.999))
