"""Simulated lights: an on/off light and a dimmer with colour temperature (HA JSON light schema)."""

from __future__ import annotations

from typing import Unpack

from devices import Command, EntityState, LightCommand, LightConfig, LightState

from .address import BrokerAddress
from .device import DeviceOptions, SimulatedDevice

__all__ = ["DimmerSim", "LightSim"]

_LIGHT = "light"
_WARM_WHITE_MIREDS = 370


class LightSim(SimulatedDevice):
    """An on/off light (``supported_color_modes: [onoff]``)."""

    model = "fwsim on/off light"

    def __init__(
        self, address: BrokerAddress, *, unit: str, name: str = "light", **options: Unpack[DeviceOptions]
    ) -> None:
        super().__init__(address, unit=unit, name=name, **options)
        self.config = LightConfig(
            schema_="json",
            command_topic=self.topic("set"),
            state_topic=self.topic("state"),
            supported_color_modes=("onoff",),
            **self.entity_fields(_LIGHT, "Light"),
        )
        self.add_entity(_LIGHT, self.config)
        self._state = LightState(on=False)

    @property
    def state(self) -> LightState:
        """What the light is doing now."""
        return self._state

    def entity_state(self, object_id: str) -> EntityState:
        """The light's state."""
        return self._state

    async def execute(self, object_id: str, command: Command) -> None:
        """Switch on or off after the command delay, then report."""
        if not isinstance(command, LightCommand):
            return
        await self.settle()
        self._state = LightState(on=command.on is not False)
        await self.publish_state()


class DimmerSim(SimulatedDevice):
    """A dimmable white light: brightness (scale 255) and colour temperature 153..500 mireds."""

    model = "fwsim dimmer"

    def __init__(
        self, address: BrokerAddress, *, unit: str, name: str = "dimmer", **options: Unpack[DeviceOptions]
    ) -> None:
        super().__init__(address, unit=unit, name=name, **options)
        self.config = LightConfig(
            schema_="json",
            command_topic=self.topic("set"),
            state_topic=self.topic("state"),
            supported_color_modes=("color_temp",),
            brightness_scale=255,
            min_mireds=153,
            max_mireds=500,
            **self.entity_fields(_LIGHT, "Dimmer"),
        )
        self.add_entity(_LIGHT, self.config)
        self._state = LightState(on=False, brightness=255, color_temp_kelvin=round(1_000_000 / _WARM_WHITE_MIREDS))

    @property
    def state(self) -> LightState:
        """What the dimmer is doing now."""
        return self._state

    def entity_state(self, object_id: str) -> EntityState:
        """The dimmer's state."""
        return self._state

    async def execute(self, object_id: str, command: Command) -> None:
        """Apply on/off, brightness and colour temperature (clamped to the advertised range), then report."""
        if not isinstance(command, LightCommand):
            return
        await self.settle()
        previous = self._state
        warm, cold = self.config.kelvin_range
        kelvin = command.color_temp_kelvin or previous.color_temp_kelvin
        self._state = LightState(
            on=command.on is not False,
            brightness=command.brightness or previous.brightness,
            color_temp_kelvin=None if kelvin is None else min(max(kelvin, warm), cold),
        )
        await self.publish_state()
