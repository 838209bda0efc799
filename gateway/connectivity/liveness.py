"""The broker link's liveness: an echo through the broker at an interval, and a fresh session when none comes back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from ..clock import Clock
from ..errors import BrokerUnavailable
from ..mqtt.transport import MqttLink
from .echo import BrokerEcho

__all__ = ["DeafListener", "LinkLiveness"]

log = logging.getLogger(__name__)

DeafListener = Callable[[datetime, str], None]
"""Told when the link was found deaf: since when (the failed check's start) and why; before the reconnect."""


class LinkLiveness:
    """Checks that a connected link still delivers; when it does not, says why and has the supervisor reconnect.

    A connection can stay up while the broker no longer delivers to it: on amqtt a client that connects with the
    gateway's client id takes the session (and its subscriptions) while the gateway's socket stays open, and the
    broker never says so. Only a round trip through the broker shows it.
    """

    def __init__(
        self,
        link: MqttLink,
        echo: BrokerEcho,
        clock: Clock,
        *,
        interval: float,
        timeout: float,
        on_deaf: DeafListener | None = None,
    ) -> None:
        self.link = link
        self.echo = echo
        self.clock = clock
        self.interval = interval
        self.timeout = timeout
        self._on_deaf = on_deaf
        self.last_echo: datetime | None = None
        self.checks = 0
        self.resets = 0

    async def run(self) -> None:
        """Check every ``interval`` seconds, for ever (a task of the gateway)."""
        while True:
            await asyncio.sleep(self.interval)  # a steady pace, not a wait for a condition
            await self.check()

    async def check(self) -> bool:
        """One check: True when the echo came back or the link is not up (nothing to check); False after a reset."""
        if not self.link.connected:
            return True  # down or reconnecting: the supervisor knows, and the broker outage is already open
        connection, started = self.link.connections, self.clock.now()
        self.checks += 1
        try:
            await self.echo.round_trip(self.timeout)
        except BrokerUnavailable as exc:
            if not self.link.connected or self.link.connections != connection:
                return True  # the link saw the loss itself meanwhile and reconnects on its own
            if self.link.was_behind(self.timeout):
                # A deaf link reads nothing; this one reads a backlog the echo waits behind (or was dropped from, and
                # the drop detector resyncs): a reconnect would only add a retained flood to it.
                log.warning(
                    "the echo did not come back within %g s while the gateway was reading a backlog: not taken for "
                    "a lost session",
                    self.timeout,
                    extra={"client_id": self.link.client_id},
                )
                return True
            return self._reset(started, str(exc))
        self.last_echo = self.clock.now()
        return True

    def _reset(self, started: datetime, failure: str) -> bool:
        last = self.last_echo.isoformat() if self.last_echo is not None else "never since this start"
        reason = (
            f"the broker no longer delivers to this gateway although its connection is up ({failure}; last echo: "
            f"{last}): another client probably connected with the gateway's client id and took its session, or "
            "the broker dropped its subscriptions; connecting again"
        )
        log.error("%s", reason, extra={"client_id": self.link.client_id, "since": started.isoformat()})
        if self._on_deaf is not None:
            self._on_deaf(started, reason)  # recorded before the reconnect, so the outage has its cause
        if self.link.reconnect(reason):
            self.resets += 1
        return False
