"""Properties, units and which devices are bound to which unit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["Binding", "Property", "Unit"]


@dataclass(frozen=True, slots=True)
class Property:
    """A building (or estate) under one lessor's contract."""

    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Unit:
    """One apartment of a property."""

    id: str
    property_id: str
    label: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Binding:
    """A device bound to a unit, from ``bound_at`` until it is unbound."""

    device_id: str
    unit_id: str
    bound_at: datetime
    bound_by: str
