"""The audit log: every privileged action, and every staff read or change of a resident's data."""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from ..clock import Clock
from ..storage import Database
from . import store

__all__ = ["Actor", "AuditLog"]

log = logging.getLogger("gateway.audit")


class _ActorAccount(Protocol):
    @property
    def id(self) -> str: ...


class Actor(Protocol):
    """Who acted: a signed-in account and its role (an accounts Principal); the audit log needs no more of it."""

    @property
    def account(self) -> _ActorAccount: ...

    @property
    def role(self) -> object: ...


class AuditLog:
    """Appends audit entries (who, what, which property/unit, target, details) and pages through them."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def record(
        self,
        principal: Actor | None,
        action: str,
        *,
        property_id: str | None = None,
        unit_id: str | None = None,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append one entry; ``principal`` None means the gateway itself (e.g. the bootstrap)."""
        row = {
            "at": self._clock.now().isoformat(),
            "actor_id": principal.account.id if principal else None,
            "actor_role": str(principal.role) if principal else "system",
            "action": action,
            "property_id": property_id,
            "unit_id": unit_id,
            "target": target,
            "detail": json.dumps(detail or {}, default=str),
        }
        await self._db.run(lambda db: store.insert_audit(db, row))
        log.info("audit %s", action, extra={k: v for k, v in row.items() if k != "detail"})

    async def entries(self, property_id: str | None, before: int | None, limit: int) -> list[dict[str, Any]]:
        """Entries newest first, optionally for one property."""
        return await self._db.run(lambda db: store.audit_entries(db, property_id, before, limit))
