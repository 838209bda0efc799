"""The broadband check: reach the uplink target, and damp single results into up and down."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ..clock import Clock
from ..config import UplinkSettings, UplinkTarget

__all__ = ["ProbeResult", "UplinkMonitor", "UplinkState", "probe"]


class UplinkState(StrEnum):
    """What the damped checks say about the broadband."""

    UNKNOWN = "unknown"  # no verdict yet
    UP = "up"
    DOWN = "down"
    NOT_CONFIGURED = "not_configured"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One reachability check."""

    ok: bool
    at: datetime
    latency_ms: float
    error: str | None = None


async def probe(target: UplinkTarget, timeout: float, clock: Clock) -> ProbeResult:
    """Try the target once: a TCP connect, or for a URL a HEAD request that gets any HTTP answer."""
    at = clock.now()
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            if target.url is None:
                _, writer = await asyncio.open_connection(target.host, target.port)
                writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                writer.close()
                await writer.wait_closed()
            else:
                failed = await _head(target.url, timeout)
                if failed is not None:
                    return ProbeResult(False, at, _ms(started), f"{target}: {failed}"[:300])
    except TimeoutError:
        return ProbeResult(False, at, _ms(started), f"no answer from {target} within {timeout:g} s")
    except OSError as exc:
        return ProbeResult(False, at, _ms(started), f"{target}: {type(exc).__name__}: {exc}"[:300])
    return ProbeResult(True, at, _ms(started))


async def _head(url: str, timeout: float) -> str | None:
    """A HEAD request that gets any HTTP answer: None, or what failed."""
    # Imported here: httpx brings its command line's rich, click and pygments (~70 modules, ~5 MB) into every
    # gateway, most of which never probes a URL.
    import httpx

    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            await client.head(url)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


Transition = Callable[[UplinkState, ProbeResult, datetime], None]
"""Called with the new state, the probe that decided it, and when the streak that led there began."""


class UplinkMonitor:
    """Runs the check every ``interval``; ``fail_threshold`` failures in a row mean down, ``recover_threshold``
    successes in a row mean up again."""

    def __init__(self, settings: UplinkSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.state = UplinkState.UNKNOWN if settings.target is not None else UplinkState.NOT_CONFIGURED
        self.last: ProbeResult | None = None
        self._streak_ok: bool | None = None
        self._streak = 0
        self._streak_start: datetime | None = None
        self._listeners: list[Transition] = []
        self._up = asyncio.Event()
        self._checked = asyncio.Condition()

    @property
    def configured(self) -> bool:
        """Whether a target is set."""
        return self.settings.target is not None

    def on_transition(self, listener: Transition) -> None:
        """Call ``listener`` on every change between up and down."""
        self._listeners.append(listener)

    def is_down(self) -> bool:
        """Whether the damped verdict is that the broadband is down."""
        return self.state is UplinkState.DOWN

    async def wait_not_down(self) -> None:
        """Return once the broadband is not known to be down."""
        while self.is_down():
            await self._up.wait()

    async def wait_checks(self, count: int = 1) -> None:
        """Wait until ``count`` more checks have finished."""
        async with self._checked:
            for _ in range(count):
                await self._checked.wait()

    async def check(self) -> ProbeResult | None:
        """Run one check now and update the damped state (None when no target is configured)."""
        target = self.settings.target
        if target is None:
            return None
        result = await probe(target, self.settings.timeout_seconds, self.clock)
        self._record(result)
        async with self._checked:
            self._checked.notify_all()
        return result

    async def run(self) -> None:
        """Check forever, every ``interval_seconds``."""
        if self.settings.target is None:
            return
        while True:
            await self.check()
            await asyncio.sleep(self.settings.interval_seconds)

    def _record(self, result: ProbeResult) -> None:
        self.last = result
        if self._streak_ok is result.ok:
            self._streak += 1
        else:
            self._streak_ok, self._streak, self._streak_start = result.ok, 1, result.at
        assert self._streak_start is not None
        if result.ok and self._streak >= self.settings.recover_threshold and self.state is not UplinkState.UP:
            self._move(UplinkState.UP, result, self._streak_start)
        elif not result.ok and self._streak >= self.settings.fail_threshold and self.state is not UplinkState.DOWN:
            self._move(UplinkState.DOWN, result, self._streak_start)

    def _move(self, state: UplinkState, result: ProbeResult, since: datetime) -> None:
        previous, self.state = self.state, state
        if state is UplinkState.DOWN:
            self._up.clear()
        else:
            self._up.set()
        if previous is UplinkState.UNKNOWN and state is UplinkState.UP:
            return  # the first verdict; nothing was down
        for listener in self._listeners:
            listener(state, result, since)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
