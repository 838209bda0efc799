"""What route handlers reach: the gateway's services (the dependencies that hand them out are in ``deps``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from ..accounts import AccountService
from ..building import AuditLog, BuildingService
from ..checks import ChecksService
from ..policy import PolicyService

if TYPE_CHECKING:
    from ..app import Gateway
    from .runner import CommandRunner
    from .stream import StreamHub

__all__ = ["ApiContext"]


@dataclass(frozen=True, slots=True)
class ApiContext:
    """The services behind the API."""

    gateway: Gateway
    accounts: AccountService
    building: BuildingService
    audit: AuditLog
    policy: PolicyService
    checks: ChecksService
    hub: StreamHub
    runner: CommandRunner
    stale_after: timedelta
    low_battery_percent: float
