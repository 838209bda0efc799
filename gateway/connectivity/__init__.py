"""Connectivity tracking: outage intervals (broadband, broker, power, devices, storms) and uptime."""

from ..config import UplinkSettings, UplinkTarget
from .echo import BrokerEcho
from .liveness import DeafListener, LinkLiveness
from .models import (
    GATEWAY_WIDE,
    TEST_EVENTS,
    Outage,
    OutageKind,
    add_months,
    downtime,
    month_window,
)
from .tracker import ConnectivityTracker, OutageListener
from .uplink import ProbeResult, UplinkMonitor, UplinkState, probe

__all__ = [
    "GATEWAY_WIDE",
    "TEST_EVENTS",
    "BrokerEcho",
    "ConnectivityTracker",
    "DeafListener",
    "LinkLiveness",
    "Outage",
    "OutageKind",
    "OutageListener",
    "ProbeResult",
    "UplinkMonitor",
    "UplinkSettings",
    "UplinkState",
    "UplinkTarget",
    "add_months",
    "downtime",
    "month_window",
    "probe",
]
