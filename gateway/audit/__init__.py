"""The audit log: every privileged action, and every staff read or change of a resident's data (below the
domain packages, which all record into it)."""

from .log import Actor, AuditLog

__all__ = ["Actor", "AuditLog"]
