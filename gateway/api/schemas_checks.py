"""Request and response bodies of the self-test, compliance, connectivity and failure reports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints

from ..checks import Compliance, ComplianceStatus
from .schemas import Reason, Request, Response

__all__ = [
    "ComplianceReportOut",
    "ConnectivityOut",
    "DeviceUptimeOut",
    "EndStormRequest",
    "MySelfTestOut",
    "OutageOut",
    "ReportRequest",
    "ShareOut",
    "StormRequest",
    "UnitUptimeOut",
    "UptimeOut",
]

Month = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
Description = Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]


class MySelfTestOut(Response):
    """My unit's testing status, and what the test is (and is not)."""

    compliance: Compliance
    note: str


class ComplianceReportOut(Response):
    """The property's units by testing status, worst first."""

    property_id: str
    generated_at: datetime
    counts: dict[ComplianceStatus, int]
    units: list[Compliance]
    note: str


class ReportRequest(Request):
    """A failure a resident reports by hand."""

    description: Description


class StormRequest(Request):
    """A weather event the property manager declares (it makes every unit's test due once it is over)."""

    started_at: AwareDatetime | None = None  # default: now
    ended_at: AwareDatetime | None = None  # default: still going on
    description: Reason | None = None


class EndStormRequest(Request):
    """When a declared storm ended (default: now)."""

    ended_at: AwareDatetime | None = None


class OutageOut(Response):
    """One interval during which something was down."""

    id: int
    kind: str
    started_at: datetime
    ended_at: datetime | None
    cause: str
    property_id: str | None
    device_id: str | None
    detail: str | None
    declared_by: str | None


class ShareOut(Response):
    """The share of a period something was up."""

    uptime: float
    down_seconds: float


class DeviceUptimeOut(ShareOut):
    """One device's share (its own outages plus the gateway's)."""

    device_id: str


class UnitUptimeOut(ShareOut):
    """A unit's share: time every one of its devices could be reached."""

    unit_id: str
    label: str
    broadband: ShareOut
    devices: list[DeviceUptimeOut]


class UptimeOut(Response):
    """Monthly uptime computed from the outage intervals."""

    month: str
    start: datetime
    end: datetime
    units: list[UnitUptimeOut]


class ConnectivityOut(Response):
    """The gateway's own view: broadband check, broker link, open outages, report upstream."""

    uplink_state: str
    uplink_target: str | None
    last_probe_at: datetime | None
    last_probe_ok: bool | None
    last_probe_error: str | None
    broker_connected: bool
    resyncs: dict[str, int] = Field(
        default_factory=dict,
        description="Resyncs of retained state by kind: gap (event loop held up), drop (the broker said it dropped "
        "messages while the gateway was behind), reconnect, periodic, manual",
    )
    recovered: dict[str, int] = Field(
        default_factory=dict,
        description="Changes first learned from a retained copy (missed live), by what: states, availability",
    )
    broker_dropped: dict[str, int] = Field(
        default_factory=dict,
        description="Messages the broker said it dropped (Mosquitto's $SYS/broker/publish/messages/dropped; the "
        "embedded broker does not drop): while_behind (the gateway was behind: its loss, resynced for), not_behind "
        "(some other client's)",
    )
    last_resync_at: datetime | None = None
    last_resync_reason: str | None = None
    open_outages: list[OutageOut]
    report_upstream: str | None
    reports_pending: int
