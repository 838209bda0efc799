"""What route handlers reach: the composed services, and the API's own stream hub."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from ..accounts import AccountService
from ..audit import AuditLog
from ..building import BuildingService, WiringService
from ..checks import ChecksService
from ..policy import CommandGate, PolicyService
from ..privacy import PrivacyService

if TYPE_CHECKING:
    from ..app import Gateway
    from ..services import Services
    from .stream import StreamHub

__all__ = ["ApiContext"]


@dataclass(frozen=True, slots=True)
class ApiContext:
    """The services behind the API (each also reachable by its own name, as the routes use them)."""

    services: Services
    gateway: Gateway
    accounts: AccountService
    building: BuildingService
    wiring: WiringService
    audit: AuditLog
    policy: PolicyService
    checks: ChecksService
    privacy: PrivacyService
    hub: StreamHub
    runner: CommandGate
    stale_after: timedelta
    low_battery_percent: float

    @classmethod
    def of(cls, services: Services, hub: StreamHub, stale_after: timedelta, low_battery_percent: float) -> ApiContext:
        """The context over the composed services and the API's own stream hub."""
        return cls(
            services=services,
            gateway=services.gateway,
            accounts=services.accounts,
            building=services.building,
            wiring=services.wiring,
            audit=services.audit,
            policy=services.policy,
            checks=services.checks,
            privacy=services.privacy,
            hub=hub,
            runner=services.gate,
            stale_after=stale_after,
            low_battery_percent=low_battery_percent,
        )
