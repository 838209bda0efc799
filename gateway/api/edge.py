"""The HTTP edge over the composed services: the live-stream hub, the application and its server."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Self

from ..config import ApiSettings
from .app import create_app
from .context import ApiContext
from .hosts import default_allowed_hosts
from .server import ApiServer
from .stream import StreamHub

if TYPE_CHECKING:
    from ..services import Services

__all__ = ["ApiService"]


class ApiService:
    """``async with ApiService(services, settings) as api``: serves the local API over running ``services`` until
    the block ends (the services outlive it: they are started before and stopped after)."""

    def __init__(self, services: Services, settings: ApiSettings) -> None:
        self.settings = settings
        self.services = services
        stale_after = timedelta(seconds=settings.stale_after_seconds)
        self.hub = StreamHub(
            services.building,
            services.clock,
            stale_after,
            settings.stream_keepalive_seconds,
            per_account=settings.max_streams_per_account,
            per_source=settings.max_streams_per_source,
        )
        services.accounts.on_sessions_revoked(self.hub.close_account)
        services.gateway.registry.add_listener(self.hub)
        services.checks.on_notification(self.hub.notify)
        services.alerts.on_notification(self.hub.notify)
        self.context = ApiContext.of(services, self.hub, stale_after, services.alerts.low_battery_percent)
        hosts = settings.allowed_hosts if settings.allowed_hosts is not None else default_allowed_hosts(settings.host)
        self.app = create_app(self.context, settings.max_body_bytes, hosts)
        self.server = ApiServer(self.app, settings)
        self._stack: contextlib.AsyncExitStack | None = None

    @property
    def url(self) -> str:
        """Base URL of the API (port known once started)."""
        return self.server.url

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(self.hub.close_all)  # open streams end before the server waits for connections
            await stack.enter_async_context(self.server)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._stack is not None
        self.hub.close_all()
        await self._stack.aclose()
