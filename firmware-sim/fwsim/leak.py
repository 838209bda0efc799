"""A simulated battery-powered water-leak sensor."""

from __future__ import annotations

from typing import Unpack

from devices import BinarySensorConfig, BinarySensorState, EntityState

from .address import BrokerAddress
from .battery import BATTERY, BatteryPowered
from .device import DeviceOptions
from .faults import Fault, FaultKind

__all__ = ["LeakSensorSim"]

_LEAK = "leak"


class LeakSensorSim(BatteryPowered):
    """A moisture binary sensor plus a battery-level sensor; takes no commands."""

    model = "fwsim leak sensor"

    def __init__(
        self, address: BrokerAddress, *, unit: str, name: str = "leak", **options: Unpack[DeviceOptions]
    ) -> None:
        super().__init__(address, unit=unit, name=name, **options)
        self.config = BinarySensorConfig(
            state_topic=self.topic("state"), device_class="moisture", **self.entity_fields(_LEAK, "Leak")
        )
        self.add_entity(_LEAK, self.config)
        self.add_battery()
        self._leak = False

    @property
    def state(self) -> BinarySensorState:
        """Whether a leak is detected, as the binary sensor reports it."""
        return BinarySensorState(on=self._leak)

    @property
    def leak(self) -> bool:
        """Whether water is detected."""
        return self._leak

    def entity_state(self, object_id: str) -> EntityState:
        """Leak flag or battery reading."""
        if object_id == BATTERY:
            return self.battery_state()
        return BinarySensorState(on=self._leak)

    async def set_leak(self, wet: bool) -> None:
        """Detect (or stop detecting) water and report it."""
        self._leak = wet
        await self.publish_state(_LEAK)

    async def apply_kind_fault(self, fault: Fault) -> bool:
        """Flood or dry the sensor, or change the battery level."""
        if fault.fault is FaultKind.LEAK:
            await self.set_leak(fault.switch)
        else:
            return await super().apply_kind_fault(fault)
        return True
