"""Many simulated units on one machine, connected in bounded batches (400 units = 2,000 MQTT clients)."""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self

from .address import BrokerAddress
from .backoff import Backoff
from .device import SimulatedDevice
from .unit import UNIT_DEVICES, UnitSim

__all__ = ["Fleet", "raise_fd_limit", "unit_id"]

log = logging.getLogger(__name__)

_FD_HEADROOM = 256


def unit_id(number: int) -> str:
    """The id of unit ``number``: ``u001``, ``u002``, ..."""
    return f"u{number:03d}"


def raise_fd_limit(needed: int) -> int:
    """Raise the soft open-files limit toward ``needed`` (up to the hard limit); return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


class Fleet:
    """``units`` simulated units (ids ``u001``...), started ``batch_size`` units at a time."""

    def __init__(
        self,
        address: BrokerAddress,
        units: int,
        *,
        first_unit: int = 1,
        discovery_prefix: str = "homeassistant",
        base_topic: str = "fwsim",
        command_delay: float = 0.2,
        drift_interval: float = 5.0,
        batch_size: int = 20,
        batch_timeout: float = 30.0,
        backoff: Backoff | None = None,
        connect_concurrency: int = 32,
    ) -> None:
        if units < 1 or first_unit < 0 or batch_size < 1 or connect_concurrency < 1:
            raise ValueError("units, batch_size and connect_concurrency must be at least 1, first_unit not negative")
        self.address = address
        self.batch_size = batch_size
        self.batch_timeout = batch_timeout
        # At most this many of the fleet's clients connecting at once, at start and when they all reconnect.
        gate = asyncio.Semaphore(connect_concurrency)
        self.units = [
            UnitSim(
                address,
                unit_id(n),
                discovery_prefix=discovery_prefix,
                base_topic=base_topic,
                command_delay=command_delay,
                drift_interval=drift_interval,
                backoff=backoff,
                connect_gate=gate,
            )
            for n in range(first_unit, first_unit + units)
        ]
        self._by_id = {u.unit: u for u in self.units}
        self._stack: AsyncExitStack | None = None

    def unit(self, unit: str) -> UnitSim:
        """The unit with id ``unit``; raise KeyError."""
        return self._by_id[unit]

    @property
    def devices(self) -> list[SimulatedDevice]:
        """Every device of every unit."""
        return [d for u in self.units for d in u.devices.values()]

    @property
    def online_count(self) -> int:
        """How many devices are online now."""
        return sum(d.is_online for d in self.devices)

    async def wait_online(self, timeout: float | None = None) -> None:
        """Wait until every device is online; raise TimeoutError after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            for unit in self.units:
                await unit.wait_online()

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError("fleet is already running")
        raise_fd_limit(len(self.units) * len(UNIT_DEVICES) * 2 + _FD_HEADROOM)
        started = time.monotonic()
        async with AsyncExitStack() as stack:
            for index in range(0, len(self.units), self.batch_size):
                batch = self.units[index : index + self.batch_size]
                for unit in batch:
                    await stack.enter_async_context(unit)
                await self._settle_batch(batch)
            self._stack = stack.pop_all()
        log.info(
            "fleet of %d units started: %d/%d devices online in %.1f s",
            len(self.units),
            self.online_count,
            len(self.devices),
            time.monotonic() - started,
        )
        return self

    async def _settle_batch(self, batch: list[UnitSim]) -> None:
        try:
            async with asyncio.timeout(self.batch_timeout):
                for unit in batch:
                    await unit.wait_online()
        except TimeoutError:
            online = sum(u.is_online for u in batch)
            log.warning(
                "units %s..%s: only %d/%d online after %.0f s; going on (they keep retrying)",
                batch[0].unit,
                batch[-1].unit,
                online,
                len(batch),
                self.batch_timeout,
            )

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)
