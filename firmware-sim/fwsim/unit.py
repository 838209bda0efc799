"""The five simulated devices of one apartment unit, started and stopped together."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self

from .address import BrokerAddress
from .backoff import Backoff
from .device import DeviceIdentity, DeviceOptions, SimulatedDevice
from .leak import LeakSensorSim
from .lights import DimmerSim, LightSim
from .lock import LockSim
from .thermostat import ThermostatSim

__all__ = ["UNIT_DEVICES", "Login", "UnitSim"]

UNIT_DEVICES = ("light", "dimmer", "lock", "thermostat", "leak")
"""Device names of a unit, in start order."""

Login = tuple[str, str]
"""A broker username and password."""


class UnitSim:
    """One apartment unit: ``light``, ``dimmer``, ``lock``, ``thermostat`` and ``leak``, each its own MQTT client.

    ``logins`` gives devices a broker login of their own by device name (as a broker that scopes each client to
    its own topics needs); a device not named there logs in with the address's username and password.
    """

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
        connect_gate: asyncio.Semaphore | None = None,
        logins: Mapping[str, Login] | None = None,
    ) -> None:
        unknown = set(logins or ()) - set(UNIT_DEVICES)
        if unknown:
            raise ValueError(f"logins for devices a unit does not have: {', '.join(sorted(unknown))}")
        options: DeviceOptions = {
            "discovery_prefix": discovery_prefix,
            "base_topic": base_topic,
            "command_delay": command_delay,
        }
        if backoff is not None:
            options["backoff"] = backoff
        if connect_gate is not None:
            options["connect_gate"] = connect_gate
        self.unit = unit
        self.address = address

        def login(name: str) -> BrokerAddress:
            if logins is None or name not in logins:
                return address
            username, password = logins[name]
            return address.with_options(username=username, password=password)

        self.light = LightSim(login("light"), unit=unit, **options)
        self.dimmer = DimmerSim(login("dimmer"), unit=unit, **options)
        self.lock = LockSim(login("lock"), unit=unit, **options)
        self.thermostat = ThermostatSim(
            login("thermostat"),
            unit=unit,
            drift_interval=drift_interval,
            drift_step=drift_step,
            temperature_sensor=temperature_sensor,
            **options,
        )
        self.leak = LeakSensorSim(login("leak"), unit=unit, **options)
        self.devices: dict[str, SimulatedDevice] = {
            "light": self.light,
            "dimmer": self.dimmer,
            "lock": self.lock,
            "thermostat": self.thermostat,
            "leak": self.leak,
        }
        self._stack: AsyncExitStack | None = None

    @staticmethod
    def identities(unit: str = "u101", base_topic: str = "fwsim") -> dict[str, DeviceIdentity]:
        """Who each device of ``unit`` will be on the broker, by device name, before any is started."""
        return {name: DeviceIdentity(unit, name, base_topic) for name in UNIT_DEVICES}

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
