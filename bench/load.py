"""The ingest load: which devices, on which topics, report which states, built with the devices' own codecs.

Every round gives every device a state that differs from its previous round's (lights, locks and leak sensors
alternate, dimmers and thermostats count), so each message is a real change and a lost last message shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from fwsim import BrokerAddress, UnitSim
from fwsim.device import SimulatedDevice
from fwsim.fleet import unit_id

from devices import (
    BinarySensorState,
    ClimateState,
    EntityConfig,
    EntityState,
    LightState,
    LockState,
    LockStatus,
    Publish,
)

__all__ = ["Reporter", "expected_states", "reporters", "round_publishes", "state_for"]

_NOWHERE = BrokerAddress("127.0.0.1", 1)  # the simulators here are never connected: only their codecs are used


@dataclass(frozen=True, slots=True)
class Reporter:
    """One simulated device's main entity: where it reports and how its reports are encoded and decoded."""

    unit_number: int
    name: str  # light, dimmer, lock, thermostat, leak
    device_id: str
    entity_key: str  # the discovery path, the gateway's entity id (and key in its ``entities`` table)
    config: EntityConfig

    @property
    def api_id(self) -> str:
        """The entity id as the HTTP API spells it (dots for slashes)."""
        return self.entity_key.replace("/", ".")


def _main_entity(unit_number: int, device: SimulatedDevice) -> Reporter:
    object_id, config = next(iter(device.configs.items()))
    return Reporter(unit_number, device.name, device.client_id, device.discovery_key(object_id).key, config)


def reporters(units: int, base_topic: str = "fwsim", first_unit: int = 1) -> list[Reporter]:
    """The main entity of every device of units ``first_unit``.. as ``firmware-sim fleet`` names them."""
    out: list[Reporter] = []
    for number in range(first_unit, first_unit + units):
        sim = UnitSim(_NOWHERE, unit_id(number), base_topic=base_topic)
        out.extend(_main_entity(number, device) for device in sim.devices.values())
    return out


def state_for(reporter: Reporter, round_: int) -> EntityState:
    """The state ``reporter`` reports in round ``round_``: never the same as in the round before."""
    step = round_ + reporter.unit_number
    if reporter.name == "light":
        return LightState(on=round_ % 2 == 0)
    if reporter.name == "dimmer":
        return LightState(on=True, brightness=1 + step % 254, color_temp_kelvin=2700)
    if reporter.name == "lock":
        return LockState(status=LockStatus.UNLOCKED if round_ % 2 == 0 else LockStatus.LOCKED)
    if reporter.name == "thermostat":
        current = round(12.0 + (step % 50) / 10, 1)  # 12.0..16.9: never the simulator's own 20.0
        return ClimateState(mode="heat", target_temperature=21.0, current_temperature=current, fan_mode="auto")
    if reporter.name == "leak":
        return BinarySensorState(on=round_ % 2 == 0)
    raise ValueError(f"no load defined for a {reporter.name}")


def round_publishes(fleet: list[Reporter], round_: int) -> list[Publish]:
    """Every message of one round, in device order (the codec's QoS and retain flag: 1, retained)."""
    return [p for r in fleet for p in r.config.encode_state(state_for(r, round_))]


def expected_states(fleet: list[Reporter], rounds: int) -> dict[str, str]:
    """What the gateway must hold for each entity after the last round: the codec's reading of the last report."""
    out: dict[str, str] = {}
    for reporter in fleet:
        state: EntityState | None = None
        for p in reporter.config.encode_state(state_for(reporter, rounds - 1)):
            state = reporter.config.decode_state(p.topic, p.payload, state)
        if state is None:
            raise ValueError(f"{reporter.entity_key} reports nothing")
        out[reporter.entity_key] = state.model_dump_json()
    return out
