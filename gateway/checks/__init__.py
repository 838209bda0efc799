"""Rule 5: the self-test, compliance with the testing rule, reminders, and the failure-report outbox."""

from .checks_service import ChecksService, NotificationListener
from .compliance import ComplianceRules, Requirement, evaluate, requirements
from .models import (
    NOT_AN_ALARM,
    CheckStatus,
    Compliance,
    ComplianceStatus,
    DeviceCheck,
    Notification,
    Report,
    ReportKind,
    SelfTestResult,
    StepCheck,
    Trigger,
)
from .outbox import Outbox
from .selftest import SelfTestRunner
from .upstream import MqttUpstream, Upstream, WebhookUpstream, report_payload

__all__ = [
    "NOT_AN_ALARM",
    "CheckStatus",
    "ChecksService",
    "Compliance",
    "ComplianceRules",
    "ComplianceStatus",
    "DeviceCheck",
    "MqttUpstream",
    "Notification",
    "NotificationListener",
    "Outbox",
    "Report",
    "ReportKind",
    "Requirement",
    "SelfTestResult",
    "SelfTestRunner",
    "StepCheck",
    "Trigger",
    "Upstream",
    "WebhookUpstream",
    "evaluate",
    "report_payload",
    "requirements",
]
