"""Device health of a property: which devices are offline, stale or low on battery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from devices import DeviceKind, SensorState

from ..core.registry import Registry
from .building_service import BuildingService

__all__ = ["HealthIssue", "HealthReport", "property_health"]


@dataclass(frozen=True, slots=True)
class HealthIssue:
    """One entity needing attention."""

    unit_id: str | None
    device_id: str
    entity_id: str
    name: str
    kind: str
    problems: tuple[str, ...]
    battery: float | None


@dataclass(frozen=True, slots=True)
class HealthReport:
    """Counts and issues for a property's bound devices."""

    devices: int
    offline: int
    stale: int
    low_battery: int
    issues: tuple[HealthIssue, ...]
    held: int = 0


def property_health(
    registry: Registry,
    building: BuildingService,
    property_id: str,
    now: datetime,
    stale_after: timedelta,
    low_battery_percent: float,
) -> HealthReport:
    """Health of every device bound to a unit of the property."""
    issues: list[HealthIssue] = []
    offline = stale = low = devices = held = 0
    for unit in building.units(property_id):
        for device_id in building.devices_of_unit(unit.id):
            devices += 1
            entities = registry.entities_of_device(device_id)
            device_offline = device_stale = device_low = device_held = False
            for entity in entities:
                problems: list[str] = []
                reason = entity.stale_reason(now, stale_after)
                if reason == "held":
                    problems.append("held")  # its wiring changed: staff approve or reject it (see wiring)
                    device_held = True
                elif reason == "offline":
                    problems.append("offline")
                    device_offline = True
                elif reason is not None:
                    problems.append(f"stale:{reason}")
                    device_stale = True
                battery = None
                if entity.kind is DeviceKind.BATTERY_SENSOR and isinstance(entity.state, SensorState):
                    value = entity.state.value
                    battery = value if isinstance(value, float) else None
                    if battery is not None and battery < low_battery_percent:
                        problems.append("low_battery")
                        device_low = True
                if problems:
                    issues.append(
                        HealthIssue(
                            unit.id, device_id, entity.id, entity.name, str(entity.kind), tuple(problems), battery
                        )
                    )
            offline += device_offline
            stale += device_stale
            low += device_low
            held += device_held
    return HealthReport(devices, offline, stale, low, tuple(issues), held)
