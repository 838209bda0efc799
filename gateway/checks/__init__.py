"""Rule 5: the self-test, compliance with the testing rule, reminders, and the failure-report outbox."""

from .alerts import HOME_AUTOMATION_ONLY, AlertService, situations
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
    "HOME_AUTOMATION_ONLY",
    "NOT_AN_ALARM",
    "AlertService",
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
    "situations",
]
