"""The five simulated devices of one apartment unit, started and stopped together."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self

from .address import BrokerAddress
from .backoff import Backoff
from .device import DeviceOptions, SimulatedDevice
from .leak import LeakSensorSim
from .lights import DimmerSim, LightSim
from .lock import LockSim
from .thermostat import ThermostatSim

__all__ = ["UNIT_DEVICES", "UnitSim"]

UNIT_DEVICES = ("light", "dimmer", "lock", "thermostat", "leak")
"""Device names of a unit, in start order."""


class UnitSim:
    """One apartment unit: ``light``, ``dimmer``, ``lock``, ``thermostat`` and ``leak``, each its own MQTT client."""

    def __init__(
        self,
        address: BrokerAddress,
        unit: str = "u101",
        discovery_prefix: str = "homeassistant",
        base_topic: str = "fwsim",
        command_delay: float = 0.2,
        drift_interval: float = 5.0,
        *,
        drift_step: float = 0.5,
        temperature_sensor: bool = False,
        backoff: Backoff | None = None,
    ) -> None:
        options: DeviceOptions = {
            "discovery_prefix": discovery_prefix,
            "base_topic": base_topic,
            "command_delay": command_delay,
        }
        if backoff is not None:
            options["backoff"] = backoff
        self.unit = unit
        self.address = address
        self.light = LightSim(address, unit=unit, **options)
        self.dimmer = DimmerSim(address, unit=unit, **options)
        self.lock = LockSim(address, unit=unit, **options)
        self.thermostat = ThermostatSim(
            address,
            unit=unit,
            drift_interval=drift_interval,
            drift_step=drift_step,
            temperature_sensor=temperature_sensor,
            **options,
        )
        self.leak = LeakSensorSim(address, unit=unit, **options)
        self.devices: dict[str, SimulatedDevice] = {
            "light": self.light,
            "dimmer": self.dimmer,
            "lock": self.lock,
            "thermostat": self.thermostat,
            "leak": self.leak,
        }
        self._stack: AsyncExitStack | None = None

    @property
    def is_online(self) -> bool:
        """Whether every device is connected and announced."""
        return all(d.is_online for d in self.devices.values())

    async def wait_online(self, timeout: float | None = None) -> None:
        """Wait until every device is online; raise TimeoutError after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            for device in self.devices.values():
                await device.wait_online()

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError(f"unit {self.unit} is already running")
        async with AsyncExitStack() as stack:
            for device in self.devices.values():
                await stack.enter_async_context(device)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)
