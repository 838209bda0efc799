"""The API side of the gateway: accounts, building layout, audit, live streams, command runner and server."""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Self

from ..accounts import AccountService, AuthSettings, Passwords, Role
from ..building import AuditLog, BuildingService
from ..checks import ChecksService
from ..config import ApiSettings
from ..errors import GatewayError
from ..policy import PolicyService
from .app import create_app
from .context import ApiContext
from .runner import CommandRunner
from .server import ApiServer
from .stream import StreamHub

if TYPE_CHECKING:
    from ..app import Gateway

__all__ = ["ApiService"]

log = logging.getLogger(__name__)


class ApiService:
    """``async with ApiService(gateway, settings) as api``: serves the local API until the block ends."""

    def __init__(self, gateway: Gateway, settings: ApiSettings, passwords: Passwords | None = None) -> None:
        self.settings = settings
        self.gateway = gateway
        clock = gateway.clock
        auth = AuthSettings(
            session_ttl=timedelta(seconds=settings.session_ttl_seconds),
            idle_timeout=timedelta(seconds=settings.idle_timeout_seconds),
        )
        self.accounts = AccountService(gateway.db, clock, passwords, auth)
        self.building = BuildingService(gateway.db, clock, gateway.persister.flush)
        self.audit = AuditLog(gateway.db, clock)
        self.policy = PolicyService(gateway.db, clock, self.building, gateway.registry)
        self.checks = ChecksService(gateway, self.building, self.policy)
        stale_after = timedelta(seconds=settings.stale_after_seconds)
        self.hub = StreamHub(self.building, clock, stale_after, settings.stream_keepalive_seconds)
        self.runner = CommandRunner(gateway.commands, clock)
        self.accounts.on_sessions_revoked(self.hub.close_account)
        gateway.registry.add_listener(self.hub)
        self.checks.on_notification(self.hub.notify)
        self.context = ApiContext(
            gateway=gateway,
            accounts=self.accounts,
            building=self.building,
            audit=self.audit,
            policy=self.policy,
            checks=self.checks,
            hub=self.hub,
            runner=self.runner,
            stale_after=stale_after,
            low_battery_percent=settings.low_battery_percent,
        )
        self.app = create_app(self.context, settings.max_body_bytes)
        self.server = ApiServer(self.app, settings.host, settings.port)
        self._stack: contextlib.AsyncExitStack | None = None

    @property
    def url(self) -> str:
        """Base URL of the API (port known once started)."""
        return self.server.url

    async def __aenter__(self) -> Self:
        await self.building.load()
        await self.policy.load()
        await self._bootstrap_operator()
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(self.runner)
            await stack.enter_async_context(self.checks)
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

    async def _bootstrap_operator(self) -> None:
        name, password = self.settings.bootstrap_operator, self.settings.bootstrap_password
        if name is None or password is None:
            if not await self.accounts.find("role = ?", [str(Role.OPERATOR)]):
                log.warning(
                    "no operator account yet: set GATEWAY_OPERATOR_USERNAME and GATEWAY_OPERATOR_PASSWORD at start, "
                    "or run `gateway create-operator`"
                )
            return
        if await self.accounts.find("role = ?", [str(Role.OPERATOR)]):
            return  # only ever at first start
        try:
            account = await self.accounts.create_operator(name, password.get_secret_value(), created_by="bootstrap")
        except GatewayError as exc:
            log.error("bootstrap operator not created: %s", exc, extra={"code": exc.code})  # noqa: TRY400
            raise
        await self.audit.record(None, "account.bootstrap_operator", target=account.id)
