"""A simulated thermostat: one shared JSON state topic (like Zigbee2MQTT), plain per-attribute command topics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, Unpack

from devices import ClimateCommand, ClimateConfig, ClimateState, Command, EntityState, SensorConfig, SensorState

from .address import BrokerAddress
from .device import DeviceOptions, SimulatedDevice

__all__ = ["ThermostatSim"]

log = logging.getLogger(__name__)

_CLIMATE = "climate"
_TEMPERATURE = "temperature"
_ACTIVE_MODES = frozenset({"heat", "cool", "auto"})


class ThermostatSim(SimulatedDevice):
    """A heat/cool thermostat whose room temperature drifts toward the target while it runs."""

    model = "fwsim thermostat"

    def __init__(
        self,
        address: BrokerAddress,
        *,
        unit: str,
        name: str = "thermostat",
        drift_interval: float = 5.0,
        drift_step: float = 0.5,
        temperature_sensor: bool = False,
        **options: Unpack[DeviceOptions],
    ) -> None:
        super().__init__(address, unit=unit, name=name, **options)
        if drift_interval <= 0 or drift_step <= 0:
            raise ValueError("drift_interval and drift_step must be positive")
        self.drift_interval = drift_interval
        self.drift_step = drift_step
        self.config = self.climate_config()
        self.add_entity(_CLIMATE, self.config)
        self.temperature_sensor: SensorConfig | None = None
        if temperature_sensor:
            self.temperature_sensor = SensorConfig(
                state_topic=self.topic(_TEMPERATURE),
                device_class="temperature",
                unit_of_measurement="°C",
                **self.entity_fields(_TEMPERATURE, "Temperature"),
            )
            self.add_entity(_TEMPERATURE, self.temperature_sensor)
        self._state = ClimateState(mode="heat", target_temperature=21.0, current_temperature=20.0, fan_mode="auto")

    def climate_config(self) -> ClimateConfig:
        """The thermostat entity's discovery config (subclasses lay its topics out as their firmware does)."""
        state_topic = self.topic("state")
        return ClimateConfig(
            modes=("off", "heat", "cool", "auto"),
            mode_command_topic=self.topic("set", "mode"),
            mode_state_topic=state_topic,
            mode_state_template="{{ value_json.mode }}",
            temperature_command_topic=self.topic("set", "temperature"),
            temperature_state_topic=state_topic,
            temperature_state_template="{{ value_json.target }}",
            current_temperature_topic=state_topic,
            current_temperature_template="{{ value_json.current }}",
            fan_modes=("auto", "low", "high"),
            fan_mode_command_topic=self.topic("set", "fan_mode"),
            fan_mode_state_topic=state_topic,
            fan_mode_state_template="{{ value_json.fan }}",
            min_temp=10.0,
            max_temp=30.0,
            temp_step=0.5,
            temperature_unit="C",
            **self.entity_fields(_CLIMATE, "Thermostat"),
        )

    @property
    def state(self) -> ClimateState:
        """Mode, target, room temperature and fan mode now."""
        return self._state

    def entity_state(self, object_id: str) -> EntityState:
        """The thermostat's state, or the room temperature reading."""
        if object_id == _TEMPERATURE:
            return SensorState(value=self._state.current_temperature or 0.0, unit="°C")
        return self._state

    async def set_current_temperature(self, celsius: float) -> None:
        """Force the room temperature (as if a window were opened) and report it."""
        self._state = self._state.model_copy(update={"current_temperature": round(celsius, 2)})
        await self.publish_state()

    async def execute(self, object_id: str, command: Command) -> None:
        """Apply mode, target (clamped and snapped to the step) and fan mode, then report."""
        if not isinstance(command, ClimateCommand):
            return
        await self.settle()
        update: dict[str, Any] = {}
        if command.mode is not None:
            if command.mode in self.config.modes:
                update["mode"] = command.mode
            else:
                log.warning("%s: unsupported mode %r ignored", self.client_id, command.mode)
        if command.target_temperature is not None:
            update["target_temperature"] = self._snap(command.target_temperature)
        if command.fan_mode is not None:
            if command.fan_mode in self.config.fan_modes:
                update["fan_mode"] = command.fan_mode
            else:
                log.warning("%s: unsupported fan mode %r ignored", self.client_id, command.fan_mode)
        self._state = self._state.model_copy(update=update)
        await self.publish_state()

    def _snap(self, target: float) -> float:
        low, high, step = self.config.min_temperature, self.config.max_temperature, self.config.temp_step
        clamped = min(max(target, low), high)
        return round(low + round((clamped - low) / step) * step, 3)

    def drift_once(self) -> bool:
        """Move the room temperature one step toward the target if running; return whether it moved."""
        state = self._state
        current, target = state.current_temperature, state.target_temperature
        if state.mode not in _ACTIVE_MODES or current is None or target is None or current == target:
            return False
        step = min(self.drift_step, abs(target - current))
        moved = current + step if target > current else current - step
        self._state = state.model_copy(update={"current_temperature": round(moved, 3)})
        return True

    def extra_tasks(self) -> dict[str, Coroutine[Any, Any, None]]:
        """The drift loop."""
        return {"drift": self._drift()}

    async def _drift(self) -> None:
        while True:
            await asyncio.sleep(self.drift_interval)
            if self.drift_once():
                await self.publish_state()
