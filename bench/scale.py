"""``./bench.sh --scale 500,2000,5000``: how the gateway comes online, and back after a broker restart, as the
building grows; a run that always finishes.

For each size, on a broker of its own: the building (``firmware-sim fleet``), then a bare subscriber (aiomqtt)
timed until it has seen every device's retained discovery configs (the reference: what any client needs to merely
see the same devices), then the gateway timed from its spawn until every device is stored discovered and online,
then the broker restarted and the gateway timed until every device is online and seen again; its peak RSS. Every
step has a timeout; a step that misses it is reported as not finished (with how far it got) and the run goes on
to the next size.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt

from .broker import BrokerUnderTest
from .building import FleetProcess, GatewayProcess, fleet_devices
from .footprint import peak_rss
from .gatewaydb import GatewayDb
from .process import TCP_NODELAY, BenchError
from .storms import reconnect_storm, start_storm

__all__ = ["ONLINE_TARGET_S", "RSS_TARGET_MB", "ScaleStep", "run_scale_step"]

ONLINE_TARGET_S = 5.0
RSS_TARGET_MB = 150.0
FLEET_PROCESS_UNITS = 250  # 1,250 devices per building process


@dataclass
class ScaleStep:
    """One building size and what it reached."""

    devices: int
    entities: int
    fleet_start_s: float | None = None
    bare_seen_s: float | None = None
    start_s: float | None = None
    start_online: int = 0
    reconnect_s: float | None = None
    reconnect_online: int = 0
    bare_reconnect_s: float | None = None  # a bare subscriber, from its reconnection to every device online again
    bare_reconnect_online: int = 0
    peak_rss_mb: float | None = None
    load_avg: list[float] = field(default_factory=list)  # at each step's end
    unfinished: list[str] = field(default_factory=list)


async def _bare_sees_configs(broker: BrokerUnderTest, entities: int, timeout: float) -> float | None:
    """Seconds until a bare aiomqtt subscriber has every retained discovery config (None past ``timeout``)."""
    started = time.monotonic()
    seen: set[str] = set()
    client = aiomqtt.Client(
        broker.host, broker.port, identifier=f"bench-scale-bare-{time.time_ns()}", socket_options=[TCP_NODELAY]
    )
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout), client:
            await client.subscribe([("homeassistant/+/+/config", 0), ("homeassistant/+/+/+/config", 0)])
            async for message in client.messages:
                if message.payload:
                    seen.add(message.topic.value)
                if len(seen) >= entities:
                    return time.monotonic() - started
    return None


class _OnlineWatch:
    """A bare subscriber to every device's availability topic, reconnecting as soon as the broker is back; times
    its second connection (the one after the restart) to every device saying online."""

    def __init__(self, broker: BrokerUnderTest, devices: int) -> None:
        self._broker = broker
        self._devices = devices
        self.seconds: float | None = None
        self.online = 0
        self.subscribed = asyncio.Event()  # the first connection is up: the broker may be restarted

    async def run(self) -> None:
        connections = 0
        while self.seconds is None:
            online: set[str] = set()
            client = aiomqtt.Client(
                self._broker.host, self._broker.port, identifier=f"bench-scale-watch-{time.time_ns()}", timeout=5
            )
            try:
                async with client:
                    connections += 1
                    started = time.monotonic()
                    await client.subscribe("fwsim/+/+/availability", qos=1)
                    self.subscribed.set()
                    async for message in client.messages:
                        device = message.topic.value.rsplit("/", 1)[0]
                        if message.payload == b"online":
                            online.add(device)
                        else:
                            online.discard(device)
                        if connections >= 2:
                            self.online = len(online)
                            if len(online) >= self._devices:
                                self.seconds = time.monotonic() - started
                                return
            except aiomqtt.MqttError:
                await asyncio.sleep(0.05)


async def run_scale_step(broker: BrokerUnderTest, devices: int, workdir: Path, say: object = None) -> ScaleStep:
    """One size, bounded in time at every step; never raises for a step that did not finish."""
    units = max(1, devices // 5)
    fleet_ids = fleet_devices(units)
    step = ScaleStep(devices=len(fleet_ids), entities=sum(fleet_ids.values()))
    timeout = 60.0 + units * 0.3
    async with contextlib.AsyncExitStack() as stack:
        await broker.start()
        stack.push_async_callback(broker.stop)
        fleets = [
            FleetProcess(n, broker.url, workdir, first_unit=first, name=f"fleet-{i + 1}")
            for i, (first, n) in enumerate(_fleet_shares(units))
        ]
        for fleet in fleets:
            stack.push_async_callback(fleet.stop)
        _say(say, f"scale {step.devices:,} devices: starting the building ({len(fleets)} processes)")
        try:
            step.fleet_start_s = max(await asyncio.gather(*(f.start(timeout=timeout) for f in fleets)))
        except BenchError as exc:
            step.unfinished.append(f"the building did not come online within {timeout:g} s: {str(exc)[:200]}")
            step.load_avg.append(os.getloadavg()[0])
            return step
        step.bare_seen_s = await _bare_sees_configs(broker, step.entities, timeout)
        if step.bare_seen_s is None:
            step.unfinished.append(f"the bare subscriber did not see every config within {timeout:g} s")
        _say(say, f"scale {step.devices:,} devices: start storm")
        gateway = GatewayProcess(broker.url, workdir)
        stack.push_async_callback(gateway.stop)
        db = GatewayDb(gateway.db_path)
        stack.callback(db.close)
        start = await start_storm(gateway, db, fleet_ids, timeout=timeout)
        step.start_s, step.start_online = start.seconds, start.online
        step.load_avg.append(os.getloadavg()[0])
        if start.seconds is None:
            step.unfinished.append(f"start: {start.online:,}/{start.devices:,} online after {timeout:g} s")
        elif broker.restartable:
            _say(say, f"scale {step.devices:,} devices: reconnect storm")
            watch = _OnlineWatch(broker, step.devices)
            async with asyncio.TaskGroup() as group:
                watching = group.create_task(watch.run(), name="bench-scale-online-watch")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(10):
                        await watch.subscribed.wait()
                again = await reconnect_storm(broker, gateway, db, fleet_ids, timeout=timeout)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(1.0, timeout - (again.seconds or timeout))):
                        await asyncio.shield(watching)
                watching.cancel()
            step.bare_reconnect_s, step.bare_reconnect_online = watch.seconds, watch.online
            step.reconnect_s, step.reconnect_online = again.seconds, again.online
            step.load_avg.append(os.getloadavg()[0])
            if again.seconds is None:
                step.unfinished.append(f"reconnect: {again.online:,}/{again.devices:,} online after {timeout:g} s")
        else:
            step.unfinished.append("reconnect: not run (the bench does not restart an external broker)")
        step.peak_rss_mb = peak_rss(gateway.pid).mb
    return step


def _fleet_shares(units: int) -> list[tuple[int, int]]:
    """(first unit, units) of each building process: at most ``FLEET_PROCESS_UNITS`` units each.

    One Python process runs its MQTT clients one at a time: at 5,000 devices a single one took 15-22 s to bring
    them all back after a broker restart, which bounded every figure measured after it.
    """
    shares = max(1, -(-units // FLEET_PROCESS_UNITS))
    size, extra = divmod(units, shares)
    out: list[tuple[int, int]] = []
    first = 1
    for i in range(shares):
        n = size + (1 if i < extra else 0)
        out.append((first, n))
        first += n
    return out


def _say(say: object, text: str) -> None:
    if callable(say):
        say(text)
