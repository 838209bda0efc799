"""Fixtures: brokers, the gateway, its HTTP API, raw MQTT clients, and a guard against tasks left behind."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from gateway.clock import ManualClock
from gateway.config import BrokerSettings
from gateway.mqtt.broker import EmbeddedBroker
from tests.support.api import Api, ApiFactory, running_api
from tests.support.brokers import BrokerHandle, MosquittoProcess, mosquitto_binary
from tests.support.gateway import GatewayFactory
from tests.support.tasks import describe, left_behind

BROKERS = ["embedded", pytest.param("mosquitto", marks=pytest.mark.mosquitto)]


@pytest.fixture(autouse=True)
async def no_tasks_left_behind() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running after its fixtures are torn down."""
    yield
    ours = await left_behind()
    if ours:
        pytest.fail(f"test left tasks behind: {[describe(t) for t in ours]}")


@pytest.fixture(params=BROKERS)
async def broker(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BrokerHandle]:
    """A running broker: the embedded one, or a private Mosquitto (skipped where it is not installed)."""
    handle: BrokerHandle
    if request.param == "embedded":
        handle = EmbeddedBroker()
    else:
        binary = mosquitto_binary()
        if binary is None:
            pytest.skip("mosquitto is not installed")
        handle = MosquittoProcess(tmp_path, binary)
    await handle.start()
    try:
        yield handle
    finally:
        await handle.stop()


@pytest.fixture
def prefix() -> str:
    """A discovery prefix of this test's own (shared brokers keep other tests' retained configs)."""
    return f"ha{uuid.uuid4().hex[:8]}"


@pytest.fixture
def clock() -> ManualClock:
    """The injectable clock the gateway runs on."""
    return ManualClock()


@pytest.fixture
def make_gateway(broker: BrokerHandle, tmp_path: Path, prefix: str, clock: ManualClock) -> GatewayFactory:
    """Build a started gateway on the test's broker and database; keyword arguments override settings."""
    return GatewayFactory(
        clock,
        {
            "broker": BrokerSettings(host=broker.host, port=broker.port),
            "database": tmp_path / "gateway.sqlite3",
            "discovery_prefix": prefix,
            "client_id": f"gw-{uuid.uuid4().hex[:8]}",
            "command_timeout": 2.0,
            "state_flush_interval": 0.05,
            # Held reads (gateway.mqtt.hold) have tests of their own (test_read_hold, test_quiet_reads; the `gateway
            # run` tests use the shipped default): elsewhere every report a test waits for would wait for the hold.
            "read_hold_seconds": 0.0,
        },
    )


@pytest.fixture
def start_api(make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock) -> ApiFactory:
    """Start the gateway (``make_gateway``) with its API; keyword arguments override the API's settings."""

    def factory(**settings: Any) -> contextlib.AbstractAsyncContextManager[Api]:
        return running_api(make_gateway, broker, prefix, clock, **settings)

    return factory


@pytest.fixture
async def api(start_api: ApiFactory) -> AsyncIterator[Api]:
    """The gateway with its API on a free port and a signed-in bootstrap operator."""
    async with start_api() as running:
        yield running


@pytest.fixture
async def mqtt(broker: BrokerHandle) -> AsyncIterator[aiomqtt.Client]:
    """A plain MQTT client on the test's broker, as mosquitto_pub would be."""
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"raw-{uuid.uuid4().hex[:8]}") as client:
        yield client
