"""Start and reconnect storms: how long until the gateway has every device discovered and online.

Both are read from the gateway's own database (read-only), i.e. what it has stored, not merely received:
every entity of every fleet device present and ``available``, and, after a broker restart, seen since then.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .broker import BrokerUnderTest
from .building import GatewayProcess
from .gatewaydb import Fleetview, GatewayDb

__all__ = ["StormResult", "reconnect_storm", "start_storm"]

_POLL = 0.05


@dataclass
class StormResult:
    """Seconds until every device was discovered and online (None if not within ``timeout``)."""

    seconds: float | None
    devices: int
    online: int
    timeout: float
    details: dict[str, float | None] = field(default_factory=dict)


async def _until_online(
    db: GatewayDb,
    gateway: GatewayProcess,
    fleet: dict[str, int],
    since: datetime | None,
    started: float,
    timeout: float,
    api_seconds: dict[str, float | None] | None = None,
) -> tuple[float | None, Fleetview]:
    """Poll until every device is online (seen after ``since``); return (seconds since ``started``, last view)."""
    loop = asyncio.get_running_loop()
    ids = set(fleet)
    while True:
        view = db.fleet(ids, fleet, since)
        now = loop.time()
        if api_seconds is not None and api_seconds.get("api_ready_s") is None and gateway.api_ready():
            api_seconds["api_ready_s"] = now - started
        if view.devices == len(ids) and view.online == len(ids):
            return now - started, view
        if now - started > timeout:
            return None, view
        gateway.child.check_alive()
        await asyncio.sleep(_POLL)


async def start_storm(gateway: GatewayProcess, db: GatewayDb, fleet: dict[str, int], timeout: float) -> StormResult:
    """Start the gateway (fresh database, every device already on the broker) and time it to all online."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    await gateway.start()
    details: dict[str, float | None] = {"api_ready_s": None}
    seconds, view = await _until_online(db, gateway, fleet, None, started, timeout, details)
    return StormResult(seconds, len(fleet), view.online, timeout, details)


async def reconnect_storm(
    broker: BrokerUnderTest, gateway: GatewayProcess, db: GatewayDb, fleet: dict[str, int], timeout: float
) -> StormResult:
    """Restart the broker and time it, from spawning it again, to every device online and seen again."""
    loop = asyncio.get_running_loop()
    if not broker.restartable:
        await broker.restart()  # says why not
    before = db.last_event_id()
    down = loop.time()
    await broker.stop()
    # Anything seen from here on came through the new broker; the clock starts before it does, since clients
    # already retrying get in before the bench itself sees its port open (a device seen then and not again would
    # otherwise never count as seen since).
    up_at = datetime.now(UTC)
    started = loop.time()
    await broker.start()
    down_seconds = loop.time() - down
    seconds, view = await _until_online(db, gateway, fleet, up_at, started, timeout)
    linked = db.first_event_at("broker_connected", before)
    details: dict[str, float | None] = {
        "broker_down_s": down_seconds,
        "gateway_link_back_s": None if linked is None else (linked - up_at).total_seconds(),
    }
    return StormResult(seconds, len(fleet), view.online, timeout, details)
