"""The embedded broker closes every connection it accepted: one that ends before its CONNECT, one still in its
handshake when the broker stops (amqtt 0.12 left both open until garbage-collected), and one that sends no CONNECT in
time (amqtt waits for ever)."""

from __future__ import annotations

import asyncio
import gc
import warnings

import aiomqtt
import pytest

import gateway.mqtt.broker as broker_module
from gateway.mqtt.broker import EmbeddedBroker


async def test_a_connection_that_ends_before_its_connect_leaves_nothing_open() -> None:
    """A port probe (connect, then close without a word): the broker's side of it is closed, not left to the
    garbage collector with an open socket."""
    async with EmbeddedBroker() as broker:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(3):
                _reader, writer = await asyncio.open_connection(broker.host, broker.port)
                writer.close()
                await writer.wait_closed()
            for _ in range(10):  # the broker reads the end of each and gives its handshake up
                await asyncio.sleep(0.05)
                gc.collect()
        unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
        assert unclosed == []


async def test_a_connection_still_in_its_handshake_is_closed_when_the_broker_stops() -> None:
    """A client that connected and said nothing sees the connection end when the broker stops."""
    broker = EmbeddedBroker()
    await broker.start()
    try:
        reader, writer = await asyncio.open_connection(broker.host, broker.port)
        await asyncio.sleep(0.1)  # accepted: the broker waits for its CONNECT
    finally:
        await broker.stop()
    try:
        async with asyncio.timeout(2):
            assert await reader.read(100) == b""
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_connection_that_sends_no_connect_is_closed_and_a_client_that_does_stays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A connection silent (or half a packet) past ``CONNECT_SECONDS`` is closed; an MQTT client connected as long
    stays connected and is served."""
    monkeypatch.setattr(broker_module, "CONNECT_SECONDS", 0.3)
    async with EmbeddedBroker() as broker:
        silent_reader, silent = await asyncio.open_connection(broker.host, broker.port)
        half_reader, half = await asyncio.open_connection(broker.host, broker.port)
        half.write(b"\x10\x20\x00\x04MQ")  # a CONNECT's first bytes, never the rest
        async with aiomqtt.Client(broker.host, broker.port, identifier="stays") as client:
            async with asyncio.timeout(3):
                assert await silent_reader.read(100) == b""
                assert await half_reader.read(100) == b""
            await client.subscribe("t/#")
            await client.publish("t/x", b"still served", qos=1)
            async with asyncio.timeout(3):
                message = await anext(aiter(client.messages))
            assert message.payload == b"still served"
        for writer in (silent, half):
            writer.close()
            await writer.wait_closed()
