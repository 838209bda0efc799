"""Response bodies of a bound device's pinned wiring: held devices and what changed, as staff see them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["WiringChangeOut", "WiringEntityOut", "WiringOut"]


class _Response(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class WiringChangeOut(_Response):
    """One wiring field as pinned and as the device says now (null: absent on that side)."""

    field: str = Field(description="e.g. payload_lock, command_topic, state_locked, device_id")
    pinned: Any
    now: Any


class WiringEntityOut(_Response):
    """One entity of the device: its wiring as pinned, changed, added since binding, or removed (config gone)."""

    entity_id: str
    status: Literal["pinned", "changed", "added", "removed"]
    changes: list[WiringChangeOut]


class WiringOut(_Response):
    """The device's wiring, pinned when staff bound it. ``held``: a change awaits approval (no command is sent, no
    report trusted); ``removed``: a pinned entity's config was removed (its topics stay reserved until unbound)."""

    status: Literal["pinned", "held", "removed", "unpinned"]
    digest: str | None = Field(description="Digest of the pinned wiring")
    held_since: datetime | None
    rejected_at: datetime | None = Field(description="When staff rejected the change it is held for, if they did")
    entities: list[WiringEntityOut]
