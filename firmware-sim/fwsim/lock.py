"""A simulated front-door lock with a battery sensor; it can jam."""

from __future__ import annotations

from typing import Unpack

from devices import Command, EntityState, LockCommand, LockConfig, LockState, LockStatus

from .address import BrokerAddress
from .battery import BATTERY, BatteryPowered
from .device import DeviceOptions
from .faults import Fault, FaultKind

__all__ = ["LockSim"]

_LOCK = "lock"


class LockSim(BatteryPowered):
    """A door lock (LOCKING/UNLOCKING while the bolt moves) plus a battery-level sensor."""

    model = "fwsim door lock"

    def __init__(
        self, address: BrokerAddress, *, unit: str, name: str = "lock", **options: Unpack[DeviceOptions]
    ) -> None:
        super().__init__(address, unit=unit, name=name, **options)
        self.config = LockConfig(
            command_topic=self.topic("set"), state_topic=self.topic("state"), **self.entity_fields(_LOCK, "Front door")
        )
        self.add_entity(_LOCK, self.config)
        self.add_battery()
        self._state = LockState(status=LockStatus.LOCKED)
        self._jam_next = False

    @property
    def state(self) -> LockState:
        """The lock's status now."""
        return self._state

    def entity_state(self, object_id: str) -> EntityState:
        """Lock status or battery reading."""
        if object_id == BATTERY:
            return self.battery_state()
        return self._state

    def jam_next_command(self) -> None:
        """Make the next lock or unlock end in JAMMED."""
        self._jam_next = True

    async def jam(self) -> None:
        """Jam the bolt now and report it."""
        self._state = LockState(status=LockStatus.JAMMED)
        await self.publish_state(_LOCK)

    async def execute(self, object_id: str, command: Command) -> None:
        """Report LOCKING/UNLOCKING, move the bolt for the command delay, then report the result."""
        if not isinstance(command, LockCommand):
            return
        target = LockStatus.LOCKED if command.action == "lock" else LockStatus.UNLOCKED
        moving = LockStatus.LOCKING if command.action == "lock" else LockStatus.UNLOCKING
        if self._state.status is not target or self._jam_next:
            self._state = LockState(status=moving)
            await self.publish_state(_LOCK)
        await self.settle()
        if self._jam_next:
            self._jam_next = False
            target = LockStatus.JAMMED
        self._state = LockState(status=target)
        await self.publish_state(_LOCK)

    async def apply_kind_fault(self, fault: Fault) -> bool:
        """Jam now, jam on the next command, or change the battery level."""
        if fault.fault is FaultKind.JAM:
            await self.jam()
        elif fault.fault is FaultKind.JAM_NEXT:
            self.jam_next_command()
        else:
            return await super().apply_kind_fault(fault)
        return True
