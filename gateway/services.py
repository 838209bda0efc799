"""The composition root: the device core and the domain services around it, built once and started as one, below
every edge (the HTTP API, the CLI, the demo, a schedule), so that each runs the same with or without HTTP."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from types import TracebackType
from typing import Self

from .accounts import AccountService, AuthSettings, Passwords
from .app import Gateway
from .audit import AuditLog
from .building import BuildingService, WiringService
from .checks import AlertService, ChecksService, SelfTestRunner
from .clock import Clock, SystemClock
from .config import GatewaySettings
from .errors import BrokerUnavailable, GatewayError
from .firmware import FirmwareService
from .mqtt.credential_service import BrokerCredentialService
from .mqtt.credentials import BrokerCredentials
from .mqtt.dynsec_sync import DynsecSync, dynsec_admin
from .policy import CommandGate, PolicyService
from .privacy import PrivacyService, RequestHolds
from .retention import RetentionService

__all__ = ["Services"]

log = logging.getLogger(__name__)


class Services:
    """``async with Services(settings) as services``: the device core, accounts, building, audit, policy, the
    command gate, broker credentials and the checks (self-tests, reminders, failure reports), started in order and
    stopped in reverse; with ``settings.dynsec``, Mosquitto's dynamic security kept in step with the broker
    credentials."""

    def __init__(
        self, settings: GatewaySettings, *, clock: Clock | None = None, passwords: Passwords | None = None
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.gateway = Gateway(settings, self.clock)
        core = self.gateway
        auth = AuthSettings(
            session_ttl=timedelta(seconds=settings.accounts.session_ttl_seconds),
            idle_timeout=timedelta(seconds=settings.accounts.idle_timeout_seconds),
        )
        # One audit log, handed to every use case that records staff actions (the routes record nothing).
        self.audit = AuditLog(core.db, self.clock)
        self.accounts = AccountService(core.db, self.clock, passwords, auth, audit=self.audit)
        self.building = BuildingService(core.db, self.clock, core.persister.flush, audit=self.audit)
        # Before anything binds: it pins a device's wiring as it is bound, and holds a later change of it.
        self.wiring = WiringService(core.db, self.clock, core.registry, self.building, audit=self.audit)
        if core.acceptance is not None:
            core.acceptance.use_bindings(lambda device_id: self.building.unit_of_device(device_id) is not None)
        self.policy = PolicyService(core.db, self.clock, self.building, core.registry, audit=self.audit)
        self.gate = CommandGate(core.commands, self.clock)
        # Who may log in to the broker and what each may do there (the embedded broker asks it on every CONNECT);
        # the registry's owners index hears of every change at once.
        self.broker_credentials = BrokerCredentials(core.db, self.clock, passwords)
        self.broker_credentials.add_listener(core.owners.credential_changed)
        # The staff use cases; the edge that runs a gated broker attaches it (``attach``) to cut revoked logins.
        self.device_credentials = BrokerCredentialService(
            self.broker_credentials,
            audit=self.audit,
            discovery_prefix=settings.discovery_prefix,
            broker_url=settings.broker.url,
            reserved_usernames=tuple(n for n in (settings.broker.username, settings.client_id) if n),
        )
        checks = settings.checks
        self.checks = ChecksService(
            checks,
            client_id=settings.client_id,
            db=core.db,
            clock=self.clock,
            registry=core.registry,
            connectivity=core.connectivity,
            runner=SelfTestRunner(
                registry=core.registry,
                publisher=core.link,
                echo=core.echo,
                uplink=core.connectivity.uplink,
                db=core.db,
                clock=self.clock,
                building=self.building,
                report_interval=timedelta(seconds=settings.device_silence_seconds),
                device_timeout=checks.device_timeout_seconds,
            ),
            building=self.building,
            policy=self.policy,
            audit=self.audit,
        )
        # Retention and the size budget: the purge runs in the background; rights requests add hold sources to it.
        self.retention = RetentionService(core.db, self.clock, self.audit, settings.purge)
        # Residents' rights; every report delivered upstream about a unit is logged as a disclosure to its
        # residents, in the transaction that records the delivery.
        self.privacy = PrivacyService(
            core.db,
            self.clock,
            self.accounts,
            self.building,
            audit=self.audit,
            settle=self.gate.settle,
            forget=self.policy.forget,
        )
        self.checks.outbox.on_delivered(
            lambda db, report, to, at: self.privacy.report_delivered(
                db, report.unit_id, report.id, str(report.kind), f"the operator ({to})", at
            )
        )
        # What a request waiting for staff or a restriction in force concerns is kept from the purge.
        self.retention.add_hold_source(RequestHolds(self.privacy))
        # Leaks, jammed or offline locks and low batteries, queued once per situation for the unit's notifications.
        self.alerts = AlertService(core.db, self.clock, self.building, checks.low_battery_percent)
        core.registry.add_listener(self.alerts)
        # Staged firmware rollouts: installs as recorded commands, residents told through the checks' notifications,
        # each updated device probed by the self-test's runner, a stopped rollout reported through its outbox.
        self.firmware = FirmwareService(
            core.db, self.clock, core.registry, core.commands, self.building, self.checks, self.checks.runner,
            self.audit,
        )  # fmt: skip
        self._stack: contextlib.AsyncExitStack | None = None

    async def __aenter__(self) -> Self:
        # Whatever started is stopped in reverse order, whether the start completes or fails half-way.
        async with contextlib.AsyncExitStack() as stack:
            dynsec = await self._dynsec(stack) if self.settings.dynsec else None
            await stack.enter_async_context(self.gateway)
            await self._load()
            if dynsec is not None:
                await dynsec.remove(await self.device_credentials.revoked_usernames())
                self.device_credentials.attach(dynsec)
                stack.callback(self.device_credentials.attach, None)
            await self._bootstrap_operator()
            await stack.enter_async_context(self.wiring)
            await stack.enter_async_context(self.gate)
            await stack.enter_async_context(self.checks)
            await stack.enter_async_context(self.retention)
            await stack.enter_async_context(self.alerts)
            await stack.enter_async_context(self.firmware)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    @classmethod
    @contextlib.asynccontextmanager
    async def offline(
        cls, settings: GatewaySettings, *, clock: Clock | None = None, passwords: Passwords | None = None
    ) -> AsyncIterator[Self]:
        """The services over the open database with nothing running (no broker link, no checks, no gate): for
        one-off administration such as ``gateway create-operator``."""
        services = cls(settings, clock=clock, passwords=passwords)
        await services.gateway.db.open()
        try:
            await services._load()
            yield services
        finally:
            await services.gateway.db.close()

    async def _dynsec(self, stack: contextlib.AsyncExitStack) -> DynsecSync:
        """Mosquitto's dynamic security, set up before the gateway connects (it then may publish anywhere)."""
        broker = self.settings.broker
        async with dynsec_admin(broker) as setup:
            # Giving the gateway's login its role makes Mosquitto drop that login's connections, this one too.
            changed = await DynsecSync(setup, broker.username or "").prepare()
        client = await stack.enter_async_context(dynsec_admin(broker))
        sync = DynsecSync(client, broker.username or "")
        if changed and await sync.prepare():
            raise BrokerUnavailable("Mosquitto did not keep the gateway's role (dynamic security)")
        return sync

    async def _load(self) -> None:
        await self.building.load()
        await self.policy.load()
        await self.wiring.load()
        await self.retention.load()

    async def _bootstrap_operator(self) -> None:
        name, password = self.settings.accounts.bootstrap_operator, self.settings.accounts.bootstrap_password
        if name is None or password is None:
            if not await self.accounts.has_operator():
                log.warning(
                    "no operator account yet: set GATEWAY_OPERATOR_USERNAME and GATEWAY_OPERATOR_PASSWORD at start, "
                    "or run `gateway create-operator`"
                )
            return
        if await self.accounts.has_operator():
            return  # only ever at first start
        try:
            await self.accounts.create_operator(name, password.get_secret_value(), created_by="bootstrap")
        except GatewayError as exc:
            log.error("bootstrap operator not created: %s", exc, extra={"code": exc.code})  # noqa: TRY400
            raise
