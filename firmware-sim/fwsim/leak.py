"""A simulated battery-powered water-leak sensor."""

from __future__ import annotations

from typing import Unpack

from devices import BinarySensorConfig, BinarySensorState, EntityState, SensorState

from .address import BrokerAddress
from .device import DeviceOptions, SimulatedDevice
from .faults import Fault, FaultKind

__all__ = ["LeakSensorSim"]

_LEAK = "leak"
_BATTERY = "battery"


class LeakSensorSim(SimulatedDevice):
    """A moisture binary sensor plus a battery-level sensor; takes no commands."""

    model = "fwsim leak sensor"

    def __init__(
        self, address: BrokerAddress, *, unit: str, name: str = "leak", **options: Unpack[DeviceOptions]
    ) -> None:
        super().__init__(address, unit=unit, name=name, **options)
        self.config = BinarySensorConfig(
            state_topic=self.topic("state"), device_class="moisture", **self.entity_fields(_LEAK, "Leak")
        )
        self.battery_sensor = self.battery_config(_BATTERY)
        self.add_entity(_LEAK, self.config)
        self.add_entity(_BATTERY, self.battery_sensor)
        self._leak = False
        self._battery = 100.0

    @property
    def state(self) -> BinarySensorState:
        """Whether a leak is detected, as the binary sensor reports it."""
        return BinarySensorState(on=self._leak)

    @property
    def leak(self) -> bool:
        """Whether water is detected."""
        return self._leak

    @property
    def battery(self) -> float:
        """Battery level in percent."""
        return self._battery

    def entity_state(self, object_id: str) -> EntityState:
        """Leak flag or battery reading."""
        if object_id == _BATTERY:
            return SensorState(value=self._battery, unit="%")
        return BinarySensorState(on=self._leak)

    async def set_leak(self, wet: bool) -> None:
        """Detect (or stop detecting) water and report it."""
        self._leak = wet
        await self.publish_state(_LEAK)

    async def set_battery(self, percent: float) -> None:
        """Set and report the battery level (0..100)."""
        if not 0 <= percent <= 100:
            raise ValueError("battery percent must be within 0..100")
        self._battery = float(percent)
        await self.publish_state(_BATTERY)

    async def apply_kind_fault(self, fault: Fault) -> bool:
        """Flood or dry the sensor, or change the battery level."""
        if fault.fault is FaultKind.LEAK:
            await self.set_leak(fault.switch)
        elif fault.fault is FaultKind.BATTERY:
            await self.set_battery(fault.percent)
        else:
            return False
        return True
