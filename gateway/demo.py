"""``gateway demo``: a simulated unit, a handful of commands, and what became of each."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from .app import Gateway
from .config import GatewaySettings
from .core.commands import CommandResult

__all__ = ["run_demo"]

EXPECTED_ENTITIES = 7  # light, dimmer, lock + battery, thermostat, leak + battery


async def run_demo(stack: contextlib.AsyncExitStack, settings: GatewaySettings) -> int:
    """Run the scripted demo; return the process exit code."""
    from .service import simulated_unit

    gateway = await stack.enter_async_context(Gateway(settings))
    await gateway.wait_connected(10)
    b = settings.broker
    unit = await stack.enter_async_context(simulated_unit(b, settings.discovery_prefix, command_delay=0.05))
    await unit.wait_online()
    async with asyncio.timeout(15):
        while not _ready(gateway):
            await asyncio.sleep(0.05)
    print(f"gateway up on {b.url}; discovered {len(gateway.registry.entities())} entities:\n")
    for entity in gateway.registry.entities():
        s = entity.summary()
        print(f"  {s['id']:<36} {s['kind']:<20} {'online' if s['available'] else 'offline':<8} {s['state']}")
    print()

    light, dimmer = _find(gateway, "u101-light", "light"), _find(gateway, "u101-dimmer", "light")
    lock, thermostat = _find(gateway, "u101-lock", "lock"), _find(gateway, "u101-thermostat", "thermostat")
    script: list[tuple[str, str, dict[str, Any], float | None]] = [
        ("turn the light on", light, {"on": True}, None),
        ("dim to 50 % at 2700 K", dimmer, {"brightness": 128, "color_temp_kelvin": 2700}, None),
        ("heat to 21.5 °C", thermostat, {"mode": "heat", "target_temperature": 21.5}, None),
        ("lock the front door", lock, {"action": "lock"}, None),
        ("set 35 °C (device max is 30)", thermostat, {"target_temperature": 35}, None),
        ("brightness 300 (scale is 1-255)", dimmer, {"brightness": 300}, None),
    ]
    results: list[tuple[str, CommandResult]] = []
    for label, entity_id, command, timeout in script:
        results.append((label, await gateway.commands.execute(entity_id, command, actor="demo", timeout=timeout)))
    unit.lock.jam_next_command()
    results.append(
        ("unlock, but the bolt jams", await gateway.commands.execute(lock, {"action": "unlock"}, actor="demo"))
    )
    unit.light.ignore_commands = True
    results.append(
        ("light ignores commands", await gateway.commands.execute(light, {"on": False}, actor="demo", timeout=1.0))
    )
    print(f"  {'what':<34} {'outcome':<10} {'reason':<22} latency")
    for label, r in results:
        latency = f"{r.latency_ms:.0f} ms" if r.latency_ms is not None else "-"
        print(f"  {label:<34} {r.status:<10} {r.reason or '':<22} {latency}")
    print(f"\nmessages received {gateway.metrics.received}, refused {sum(gateway.metrics.rejected.values())}")
    expected = ["confirmed"] * 4 + ["rejected", "rejected", "refused", "timed_out"]
    return 0 if [str(r.status) for _, r in results] == expected else 1


def _ready(gateway: Gateway) -> bool:
    entities = [e for e in gateway.registry.entities() if (e.key.node_id or "").startswith("u101-")]
    return len(entities) >= EXPECTED_ENTITIES and all(e.available and e.state is not None for e in entities)


def _find(gateway: Gateway, node_id: str, kind: str) -> str:
    return next(e.id for e in gateway.registry.entities() if e.key.node_id == node_id and e.kind == kind)
