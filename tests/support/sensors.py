"""Temperature sensors announced by hand (discovery config and reading), for tests that flood a broker with them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devices import SensorState
from gateway.app import Gateway

__all__ = ["flood_readings", "sensor_config", "sensor_values"]


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


def flood_readings(
    host: str, port: int, base: str, nodes: list[str], rounds: int, value: Callable[[int], float], pad: str, wait: float
) -> None:
    """Publish ``rounds`` retained QoS 0 readings per node on ``{base}/{node}/state`` (round r reads ``value(r)``,
    padded with ``pad``) from a paho client, as fast as it goes; return once the last is sent (at most ``wait`` s)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"burst-{uuid.uuid4().hex[:8]}")
    client.connect(host, port)
    client.loop_start()
    try:
        info = None
        for r in range(1, rounds + 1):
            for node in nodes:
                report = json.dumps({"t": value(r), "pad": pad}).encode()
                info = client.publish(f"{base}/{node}/state", report, qos=0, retain=True)
        assert info is not None
        info.wait_for_publish(wait)
    finally:
        client.disconnect()
        client.loop_stop()
