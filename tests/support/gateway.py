"""The ``make_gateway`` fixture's factory: the device core alone, or the whole composition, on the test's broker."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from gateway.accounts import Passwords
from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.config import GatewaySettings
from gateway.services import Services

__all__ = ["GatewayFactory"]


class GatewayFactory:
    """Starts the gateway on the test's broker, database and clock, connected; keyword arguments override settings.

    ``async with make_gateway() as gw`` is the device core alone; ``make_gateway.services()`` the whole composition.
    """

    def __init__(self, clock: ManualClock, values: dict[str, Any]) -> None:
        self.clock = clock
        self._values = values

    def using(self, **overrides: Any) -> GatewayFactory:
        """The same factory with more settings overridden."""
        return GatewayFactory(self.clock, {**self._values, **overrides})

    def settings(self, **overrides: Any) -> GatewaySettings:
        """The settings a start with these overrides uses."""
        return GatewaySettings(**{**self._values, **overrides})

    @contextlib.asynccontextmanager
    async def __call__(self, **overrides: Any) -> AsyncIterator[Gateway]:
        async with Gateway(self.settings(**overrides), clock=self.clock) as gw:
            await gw.wait_connected(10)
            yield gw

    @contextlib.asynccontextmanager
    async def services(self, passwords: Passwords | None = None, **overrides: Any) -> AsyncIterator[Services]:
        """The composed services over the gateway, connected."""
        async with Services(self.settings(**overrides), clock=self.clock, passwords=passwords) as services:
            await services.gateway.wait_connected(10)
            yield services
