"""A fleet's reconnection: its connect gate lets every device back after a broker restart, and a connection lost
while a device handles a message ends that handling at once."""

from __future__ import annotations

import asyncio

import aiomqtt
from fwsim import BrokerAddress, Fleet
from fwsim.link import DeviceLink

from devices import Publish
from gateway.mqtt.broker import EmbeddedBroker

WAIT = 5.0
"""Longest wait for any expected change."""


async def test_a_fleet_gated_one_connect_at_a_time_comes_back_after_a_broker_restart() -> None:
    first = EmbeddedBroker()
    await first.start()
    port = first.port
    async with Fleet(BrokerAddress.parse(first.url), units=2, command_delay=0, connect_concurrency=1) as fleet:
        assert fleet.online_count == 10  # the gate's one place was given back by each device once announced
        await first.stop()
        for device in fleet.devices:
            await device.link.wait_offline(WAIT)
        async with EmbeddedBroker(port=port):
            await fleet.wait_online(WAIT)  # and by each refused attempt while the broker was down
            assert all(d.link.connections == 2 for d in fleet.devices)


async def test_a_connection_lost_while_handling_a_message_ends_the_handling_at_once() -> None:
    broker = EmbeddedBroker()
    await broker.start()
    handling = asyncio.Event()

    async def on_message(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        handling.set()
        await asyncio.Event().wait()  # as a publish awaiting a PUBACK the lost connection will never bring

    async def on_connect(client: aiomqtt.Client) -> None:
        """Nothing to announce."""

    link = DeviceLink(
        BrokerAddress.parse(broker.url),
        client_id="fwsim-test-busy",
        will=lambda: Publish("fwsim/test/busy/availability", b"offline", retain=True),
        topics=lambda: ["fwsim/test/busy/set"],
        on_connect=on_connect,
        on_message=on_message,
    )
    supervisor = asyncio.create_task(link.run())
    try:
        await link.wait_online(WAIT)
        async with aiomqtt.Client(broker.host, broker.port, identifier="fwsim-test-sender") as sender:
            await sender.publish("fwsim/test/busy/set", b"ON", qos=1)
        async with asyncio.timeout(WAIT):
            await handling.wait()
        await broker.stop()
        await link.wait_offline(WAIT)  # never, if the handler were awaited to its end
    finally:
        supervisor.cancel()
        await asyncio.wait([supervisor])
