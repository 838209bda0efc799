"""The gateway's own session: a client that borrows its client id for a moment does not leave it deaf; the liveness
check through the echo topic notices, reconnects through the one supervisor, and the outage is on record."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import partial

import aiomqtt
import pytest

from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.config import BrokerSettings
from gateway.connectivity import Outage, OutageKind
from gateway.core.commands import CommandStatus
from gateway.core.entity import Entity
from gateway.errors import BrokerUnavailable
from gateway.mqtt.broker import EmbeddedBroker, free_port
from gateway.mqtt.transport import LinkState
from tests.support.api import sim_unit
from tests.support.brokers import BrokerHandle
from tests.support.gateway import GatewayFactory
from tests.support.polling import eventually

INTERVAL = 0.3  # seconds between liveness checks in these tests (30 by default)
ECHO_TIMEOUT = 0.5
BACK_WITHIN = INTERVAL + ECHO_TIMEOUT + 2.5  # a check, its timeout, the reconnect and resubscription, with slack
LOCK = "lock/u101-lock/lock"
THERMOSTAT = "climate/u101-thermostat/climate"


def broker_outages(seen: list[Outage]) -> list[Outage]:
    """The broker outages as last told (opened, then closed), by id."""
    latest = {o.id: o for o in seen if o.kind is OutageKind.BROKER}
    return sorted(latest.values(), key=lambda o: o.id)


def ready(gw: Gateway) -> bool:
    """Whether the simulated unit's lock and thermostat are known, online, with states."""
    entities = [gw.registry.get(LOCK), gw.registry.get(THERMOSTAT)]
    return all(e is not None and e.available and e.state is not None for e in entities)


def reports(thermostat: Entity, celsius: float) -> bool:
    """Whether the thermostat's latest state has this room temperature."""
    return getattr(thermostat.state, "current_temperature", None) == celsius


async def hears_again(gw: Gateway, start: float, set_temperature: Callable[[float], Awaitable[None]]) -> None:
    """Publish new room temperatures until the gateway has seen one (a report after the takeover, end to end)."""
    thermostat = gw.registry.get(THERMOSTAT)
    assert thermostat is not None
    async with asyncio.timeout(BACK_WITHIN):
        celsius = start
        while True:
            celsius = round(celsius + 0.25, 2)
            await set_temperature(celsius)
            try:
                await eventually(partial(reports, thermostat, celsius), timeout=INTERVAL, what="the report")
            except AssertionError:
                continue  # still deaf: a new report, as a device would send later anyway
            return


async def test_a_client_borrowing_the_gateways_client_id_leaves_it_deaf_only_until_the_next_check(
    broker: BrokerHandle, make_gateway: GatewayFactory, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Outage] = []
    async with (
        sim_unit(broker, prefix, "u101") as sim,
        make_gateway(liveness_seconds=INTERVAL, liveness_timeout_seconds=ECHO_TIMEOUT) as gw,
    ):
        gw.connectivity.on_outage(seen.append)
        await sim.wait_online()
        await eventually(lambda: ready(gw), what="the unit discovered, online, with states")
        connections = gw.link.connections
        # The attack from the issue: a two-second connection with the gateway's own client id, then gone.
        async with aiomqtt.Client(broker.host, broker.port, identifier=gw.settings.client_id):
            await asyncio.sleep(2.0)  # the borrower's stay, as in the report
        left = time.monotonic()
        await hears_again(gw, 20.0, sim.thermostat.set_current_temperature)
        assert time.monotonic() - left < BACK_WITHIN
        result = await gw.commands.execute(LOCK, {"action": "unlock"}, actor="resident")
        assert result.status is CommandStatus.CONFIRMED, result
        assert gw.link.connections > connections and gw.link.state is LinkState.CONNECTED
        await gw.connectivity.flush()
        outages = broker_outages(seen)
        assert outages and all(o.ended_at is not None for o in outages), outages
    if isinstance(broker, EmbeddedBroker):
        # amqtt hands the session over and leaves the gateway's socket open: only the echo shows it.
        assert gw.liveness.resets >= 1
        assert outages[0].cause == "session_lost" and "client id" in (outages[0].detail or "")
        assert any("took its session" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    else:
        # Mosquitto drops the older connection itself: the supervisor reconnects on its own.
        assert outages[0].cause in ("connection_lost", "session_lost")


async def test_a_healthy_link_is_checked_and_never_reset(broker: BrokerHandle, make_gateway: GatewayFactory) -> None:
    async with make_gateway(liveness_seconds=0.05, liveness_timeout_seconds=2.0) as gw:
        connections = gw.link.connections
        await eventually(lambda: gw.liveness.checks >= 5, what="five liveness checks")
        assert gw.liveness.resets == 0 and gw.link.connections == connections
        assert gw.liveness.last_echo is not None
        assert gw.connectivity.open_now() == []


async def test_reconnect_is_refused_when_the_link_is_not_up(broker: BrokerHandle, make_gateway: GatewayFactory) -> None:
    async with make_gateway(liveness_seconds=3600) as gw:
        connections = gw.link.connections
        assert gw.link.reconnect("test: a fresh session")
        assert not gw.link.reconnect("a second request while the first is under way")
        await gw.wait_connected(5)
        await eventually(lambda: gw.link.connections == connections + 1, what="one reconnect")
        assert await gw.echo.round_trip(5) >= 0  # subscribed again: the echo comes back
    assert not gw.link.reconnect("closed")
    assert gw.link.state is LinkState.CLOSED


@pytest.mark.parametrize("broker", ["embedded"], indirect=True)
async def test_a_link_that_is_down_is_not_checked(make_gateway: GatewayFactory, clock: ManualClock) -> None:
    nowhere = BrokerSettings(host="127.0.0.1", port=free_port())  # nothing listens: the link never comes up
    async with Gateway(make_gateway.settings(broker=nowhere, liveness_seconds=3600), clock=clock) as gw:
        with pytest.raises(BrokerUnavailable):
            await gw.wait_connected(0.3)
        assert await gw.liveness.check() is True
        assert gw.liveness.checks == 0 and gw.liveness.resets == 0
