"""Self-test results, compliance status, failure reports and notifications, as stored and as shown."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from devices import QueryMethod

__all__ = [
    "NOT_AN_ALARM",
    "CheckStatus",
    "Compliance",
    "ComplianceStatus",
    "DeviceCheck",
    "Notification",
    "Report",
    "ReportKind",
    "SelfTestResult",
    "StepCheck",
    "Trigger",
]

NOT_AN_ALARM = (
    "This checks that your home automation (lights, locks, thermostats) can be reached and controlled. "
    "It is not a security or alarm system: nobody is alerted and nothing is monitored."
)
"""Said wherever the self-test, its reminders and its reports are shown (rule 4)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Trigger(StrEnum):
    """Who started a self-test."""

    RESIDENT = "resident"
    MANAGER = "manager"
    AUTOMATIC = "automatic"


class CheckStatus(StrEnum):
    """The outcome of one step of a self-test."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # could not be checked, and says why; does not fail the test


class StepCheck(_Frozen):
    """The uplink or broker step."""

    status: CheckStatus
    latency_ms: float | None = None
    reason: str | None = None
    detail: str | None = None


class DeviceCheck(_Frozen):
    """One device's check: asked for its state (never actuated), or, where no safe request is known, judged by how
    recent its latest valid report is."""

    device_id: str
    name: str
    kind: str | None
    status: CheckStatus
    method: QueryMethod | None = None  # asked, or fresh_report; None when neither was tried (offline, no broker)
    firmware: str | None = None  # what speaks for the device (zigbee2mqtt, tasmota, esphome, fwsim, unknown, ...)
    latency_ms: float | None = None
    reason: str | None = None
    detail: str | None = None


class SelfTestResult(_Frozen):
    """A finished self-test of one unit."""

    id: str
    unit_id: str
    property_id: str
    trigger: Trigger
    actor_id: str | None
    started_at: datetime
    finished_at: datetime
    passed: bool
    uplink: StepCheck
    broker: StepCheck
    devices: tuple[DeviceCheck, ...]
    note: str = NOT_AN_ALARM

    def failures(self) -> list[str]:
        """One line per failed step: what failed and why."""
        steps = (("uplink", self.uplink), ("broker", self.broker))
        lines = [f"{name}: {step.reason}" for name, step in steps if step.status is CheckStatus.FAILED]
        lines += [f"device {d.device_id}: {d.reason}" for d in self.devices if d.status is CheckStatus.FAILED]
        return lines


class ComplianceStatus(StrEnum):
    """Where a unit stands with the agreement's testing rule."""

    OK = "ok"
    DUE = "due"  # a test is owed; the deadline has not passed
    OVERDUE = "overdue"  # the deadline passed without a passing test
    FAILING = "failing"  # the latest test failed and none has passed since


class Compliance(_Frozen):
    """A unit's testing status, with why, and by when."""

    unit_id: str
    status: ComplianceStatus
    reason: str
    detail: str
    due_at: datetime | None
    deadline: datetime | None
    overdue_since: datetime | None
    last_passed_at: datetime | None
    last_test: SelfTestResult | None


class ReportKind(StrEnum):
    """Why a failure report was filed."""

    SELF_TEST_FAILED = "self_test_failed"
    OUTAGE = "outage"
    RESIDENT = "resident"
    FIRMWARE_UPDATE_FAILED = "firmware_update_failed"


class Report(_Frozen):
    """A failure report in the outbox."""

    id: str
    idempotency_key: str
    kind: ReportKind
    property_id: str | None
    unit_id: str | None
    created_at: datetime
    created_by: str | None
    body: dict[str, object]
    attempts: int
    last_attempt_at: datetime | None
    last_error: str | None
    delivered_at: datetime | None


class Notification(_Frozen):
    """A message queued for the residents' app."""

    id: int
    unit_id: str
    kind: str
    message: Annotated[str, Field(max_length=2000)]
    data: dict[str, object]
    created_at: datetime
