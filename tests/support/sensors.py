"""Temperature sensors announced by hand (discovery config and reading), for tests that flood a broker with them."""

from __future__ import annotations

import json

from devices import SensorState
from gateway.app import Gateway

__all__ = ["sensor_config", "sensor_values"]


def sensor_config(base: str, node: str) -> bytes:
    """The discovery config of a temperature sensor reporting JSON ``{"t": ...}`` on ``{base}/{node}/state``."""
    return json.dumps(
        {
            "state_topic": f"{base}/{node}/state",
            "device_class": "temperature",
            "unit_of_measurement": "°C",
            "value_template": "{{ value_json.t }}",
            "device": {"identifiers": [f"{base}-{node}"]},
        }
    ).encode()


def sensor_values(gw: Gateway, nodes: list[str]) -> list[float | None]:
    """Each node's sensor reading as the gateway holds it (None: not known yet)."""
    values: list[float | None] = []
    for node in nodes:
        entity = gw.registry.get(f"sensor/{node}/t")
        state = None if entity is None else entity.state
        values.append(state.value if isinstance(state, SensorState) else None)  # type: ignore[arg-type]
    return values
