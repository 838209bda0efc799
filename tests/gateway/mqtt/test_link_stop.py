"""The link stops when asked, even when a cancellation is swallowed on the way (as 3.11's asyncio.wait_for does)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from gateway.config import BrokerSettings
from gateway.mqtt.fastclient import BulkReadClient
from gateway.mqtt.transport import Birth, LinkState, MqttLink
from tests.support.brokers import BrokerHandle


class _SwallowingClient(BulkReadClient):
    """A publish that returns when cancelled, as aiomqtt's wait_for does when the PUBACK lands with the cancel."""

    started: asyncio.Event

    async def publish(self, *args: Any, **kwargs: Any) -> None:
        self.started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return  # swallowed: the caller goes on as if it had never been cancelled


class _Link(MqttLink):
    def __init__(self, broker: BrokerHandle, started: asyncio.Event) -> None:
        super().__init__(
            BrokerSettings(host=broker.host, port=broker.port),
            client_id=f"stop-{uuid.uuid4().hex[:8]}",
            subscriptions=[],
            on_message=lambda _message: None,
            births=[Birth("stop-test/status", b"online")],
        )
        self._broker_handle = broker
        self._started = started

    def _make_client(self) -> BulkReadClient:
        client = _SwallowingClient(
            self._broker_handle.host, self._broker_handle.port, identifier=self.client_id, sink=lambda _message: None
        )
        client.started = self._started
        return client


async def test_a_link_stops_when_its_first_cancellation_is_swallowed(broker: BrokerHandle) -> None:
    started = asyncio.Event()
    link = _Link(broker, started)
    async with asyncio.timeout(10):  # before the fix: the supervisor went on to receive, and the stop hung for ever
        async with link:
            await started.wait()  # stopping while the birth is being published
    assert link.state is LinkState.CLOSED
