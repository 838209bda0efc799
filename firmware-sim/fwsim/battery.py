"""A simulated device that also reports its battery level as a sensor entity."""

from __future__ import annotations

from typing import Unpack

from devices import SensorState

from .address import BrokerAddress
from .device import DeviceOptions, SimulatedDevice
from .faults import Fault, FaultKind

__all__ = ["BATTERY", "BatteryPowered"]

BATTERY = "battery"
"""Object id of the battery sensor entity."""


class BatteryPowered(SimulatedDevice):
    """A device with a battery-level sensor (device class battery, unit %) beside its main entity."""

    def __init__(self, address: BrokerAddress, *, unit: str, name: str, **options: Unpack[DeviceOptions]) -> None:
        super().__init__(address, unit=unit, name=name, **options)
        self.battery_sensor = self.battery_config(BATTERY)
        self._battery = 100.0

    def add_battery(self) -> None:
        """Register the battery entity (after the main one, so discovery announces that first)."""
        self.add_entity(BATTERY, self.battery_sensor)

    @property
    def battery(self) -> float:
        """Battery level in percent."""
        return self._battery

    def battery_state(self) -> SensorState:
        """The battery entity's state."""
        return SensorState(value=self._battery, unit="%")

    async def set_battery(self, percent: float) -> None:
        """Set and report the battery level (0..100)."""
        if not 0 <= percent <= 100:
            raise ValueError("battery percent must be within 0..100")
        self._battery = float(percent)
        await self.publish_state(BATTERY)

    async def apply_kind_fault(self, fault: Fault) -> bool:
        """Change the battery level; subclasses add their own faults."""
        if fault.fault is FaultKind.BATTERY:
            await self.set_battery(fault.percent)
            return True
        return False
