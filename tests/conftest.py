"""Fixtures: brokers, the gateway, raw MQTT clients, and a guard against tasks left behind."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from gateway.accounts import Passwords
from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.config import BrokerSettings, GatewaySettings
from gateway.mqtt.broker import EmbeddedBroker
from gateway.services import Services
from tests.brokers import BrokerHandle, MosquittoProcess, mosquitto_binary

BROKERS = ["embedded", pytest.param("mosquitto", marks=pytest.mark.mosquitto)]


@pytest.fixture(autouse=True)
async def no_tasks_left_behind() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running after its fixtures are torn down."""
    yield
    current = asyncio.current_task()
    deadline = asyncio.get_running_loop().time() + 2.0
    while True:
        left = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        # amqtt's broker finishes closing client sessions shortly after shutdown(); give it a moment.
        if not left or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.02)
    ours = [t for t in left if not _is_amqtt(t)]
    for task in left:
        task.cancel()
    if ours:
        pytest.fail(f"test left tasks behind: {[(t.get_name(), _where(t)) for t in ours]}")


def _where(task: asyncio.Task[Any]) -> str:
    code = getattr(task.get_coro(), "cr_code", None)
    return "?" if code is None else f"{code.co_qualname} ({code.co_filename}:{code.co_firstlineno})"


def _is_amqtt(task: asyncio.Task[Any]) -> bool:
    coro = task.get_coro()
    code = getattr(coro, "cr_code", None)
    if code is None:
        return False
    if "amqtt" in code.co_filename:
        return True
    # amqtt retries in-flight messages of a resumed session in tasks running asyncio.wait_for(…, 10): judge such a
    # task by the task it waits for (an unnamed "Task-N" left behind once in a CI run of the SIGKILL test).
    frame = getattr(coro, "cr_frame", None)
    inner = frame.f_locals.get("fut") if code.co_name == "wait_for" and frame is not None else None
    return isinstance(inner, asyncio.Task) and inner is not task and _is_amqtt(inner)


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


class GatewayFactory:
    """Starts the gateway on the test's broker, database and clock, connected; keyword arguments override settings.

    ``async with make_gateway() as gw`` is the device core alone; ``make_gateway.services()`` the whole composition.
    """

    def __init__(self, clock: ManualClock, values: dict[str, Any]) -> None:
        self.clock = clock
        self._values = values

    def using(self, **overrides: Any) -> GatewayFactory:
        """The same factory with more settings overridden."""
        return GatewayFactory(self.clock, {**self._values, **overrides})

    def settings(self, **overrides: Any) -> GatewaySettings:
        """The settings a start with these overrides uses."""
        return GatewaySettings(**{**self._values, **overrides})

    @contextlib.asynccontextmanager
    async def __call__(self, **overrides: Any) -> AsyncIterator[Gateway]:
        async with Gateway(self.settings(**overrides), clock=self.clock) as gw:
            await gw.wait_connected(10)
            yield gw

    @contextlib.asynccontextmanager
    async def services(self, passwords: Passwords | None = None, **overrides: Any) -> AsyncIterator[Services]:
        """The composed services over the gateway, connected."""
        async with Services(self.settings(**overrides), clock=self.clock, passwords=passwords) as services:
            await services.gateway.wait_connected(10)
            yield services


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
        },
    )


@pytest.fixture
async def mqtt(broker: BrokerHandle) -> AsyncIterator[aiomqtt.Client]:
    """A plain MQTT client on the test's broker, as mosquitto_pub would be."""
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"raw-{uuid.uuid4().hex[:8]}") as client:
        yield client


async def eventually(check: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``check`` until it holds; fail the test with ``what`` after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout} s waiting for {what}")


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll an async ``check`` until it holds; fail the test with ``what`` after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout} s waiting for {what}")
