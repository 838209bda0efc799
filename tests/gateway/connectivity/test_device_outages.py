"""Device outages over MQTT: a device is down while offline, silent past its expected interval (its expire_after,
or the default silence), never heard from since discovery, or reporting what the gateway must refuse; and the
time counts against the month's uptime."""

from __future__ import annotations

import json
from datetime import timedelta
from functools import partial
from typing import Any

import aiomqtt
import pytest

from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.connectivity import Outage, OutageKind
from gateway.connectivity.store import outages_between
from tests.support.api import bearer
from tests.support.brokers import BrokerHandle
from tests.support.checks import EMBEDDED, checked_building, outages
from tests.support.gateway import GatewayFactory
from tests.support.polling import eventually, until

SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)


async def announce(mqtt: aiomqtt.Client, prefix: str, name: str, **extra: Any) -> str:
    """Publish a temperature sensor's discovery config (device ``hand-<name>``); its state topic."""
    topic = f"{prefix}-hand/{name}/temp"
    config = {"name": name, "state_topic": topic, "unit_of_measurement": "°C", "device_class": "temperature",
              "device": {"identifiers": [f"hand-{name}"]}, **extra}  # fmt: skip
    await mqtt.publish(f"{prefix}/sensor/{name}/temp/config", json.dumps(config), qos=1, retain=True)
    return topic


def known(gw: Gateway, name: str) -> bool:
    """Whether the gateway discovered the sensor ``name``."""
    return gw.registry.get(f"sensor/{name}/temp") is not None


def reported(gw: Gateway, name: str) -> bool:
    """Whether the sensor ``name`` has a valid state."""
    entity = gw.registry.get(f"sensor/{name}/temp")
    return entity is not None and entity.state is not None and entity.state_error is None


def refused(gw: Gateway, name: str) -> bool:
    """Whether the sensor's latest report was refused."""
    entity = gw.registry.get(f"sensor/{name}/temp")
    return entity is not None and entity.state_error is not None


async def device_outages(gw: Gateway) -> list[Outage]:
    """The device outages going on, once every change so far is stored."""
    await gw.connectivity.check_devices()
    return [o for o in gw.connectivity.open_now() if o.kind is OutageKind.DEVICE]


async def nothing_open(gw: Gateway) -> bool:
    """Whether no device outage is going on."""
    return not await device_outages(gw)


@EMBEDDED
async def test_a_device_silent_past_its_expire_after_is_down_until_it_reports(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client, prefix: str, clock: ManualClock
) -> None:
    async with make_gateway(device_check_seconds=3600) as gw:
        topic = await announce(mqtt, prefix, "porch", expire_after=600)
        await mqtt.publish(topic, b"21.5", qos=1, retain=True)
        await eventually(lambda: reported(gw, "porch"))
        reported_at = clock.now()
        clock.advance(599 * SECOND)
        assert await device_outages(gw) == []
        clock.advance(2 * SECOND)
        (silent,) = await device_outages(gw)
        assert (silent.device_id, silent.cause) == ("hand-porch", "expired")
        assert silent.started_at == reported_at + timedelta(seconds=600)
        clock.advance(timedelta(minutes=30))
        await mqtt.publish(topic, b"20.0", qos=1)
        await until(partial(nothing_open, gw), what="the outage closed by the next report")
        (closed,) = await gw.db.run(partial(outages_between, start=reported_at, end=clock.now()))
        assert closed.ended_at == clock.now() and closed.duration(clock.now()) == timedelta(minutes=30, seconds=1)


@EMBEDDED
async def test_a_device_without_availability_is_silent_after_the_default_day(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client, prefix: str, clock: ManualClock
) -> None:
    async with make_gateway(device_check_seconds=3600) as gw:  # device_silence_seconds: the default, 86400
        topic = await announce(mqtt, prefix, "attic")
        await mqtt.publish(topic, b"12.0", qos=1, retain=True)
        await eventually(lambda: reported(gw, "attic"))
        heard_at = clock.now()
        clock.advance(DAY)
        assert await device_outages(gw) == []
        clock.advance(SECOND)
        (silent,) = await device_outages(gw)
        assert (silent.device_id, silent.cause, silent.started_at) == ("hand-attic", "silent", heard_at + DAY)
        await mqtt.publish(topic, b"11.5", qos=1)
        await until(partial(nothing_open, gw), what="the outage closed by the next report")


@EMBEDDED
async def test_a_device_that_never_reports_or_reports_garbage_is_down(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client, prefix: str, clock: ManualClock
) -> None:
    async with make_gateway(device_check_seconds=3600) as gw:
        await mqtt.publish(f"{prefix}-hand/cellar/status", b"online", qos=1, retain=True)
        mute = await announce(mqtt, prefix, "cellar", availability_topic=f"{prefix}-hand/cellar/status")
        await eventually(lambda: known(gw, "cellar"))
        discovered_at = clock.now()
        # Online by its last will, but not one report: down once its expected interval since discovery is over.
        clock.advance(DAY)
        assert await device_outages(gw) == []
        clock.advance(SECOND)
        (never,) = await device_outages(gw)
        assert (never.device_id, never.cause, never.started_at) == (
            "hand-cellar",
            "never_reported",
            discovered_at + DAY,
        )
        await mqtt.publish(mute, b"9.5", qos=1)
        await until(partial(nothing_open, gw), what="the first report ends it")
        # A report the gateway refuses (a temperature of 900 °C) makes it down from then until a valid one.
        clock.advance(timedelta(hours=1))
        refused_at = clock.now()
        await mqtt.publish(mute, b"900", qos=1)
        await eventually(lambda: refused(gw, "cellar"))
        (garbage,) = await device_outages(gw)
        assert (garbage.cause, garbage.started_at) == ("invalid_report", refused_at)
        clock.advance(timedelta(minutes=5))
        await mqtt.publish(mute, b"9.0", qos=1)
        await until(partial(nothing_open, gw), what="a valid report ends it")
        history = await gw.db.run(partial(outages_between, start=discovered_at, end=clock.now()))
        assert [(o.cause, o.duration(clock.now())) for o in history] == [
            ("never_reported", SECOND),
            ("invalid_report", timedelta(minutes=5)),
        ]


@EMBEDDED
async def test_a_bound_device_that_never_reported_counts_against_the_units_uptime(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock, mqtt: aiomqtt.Client
) -> None:
    async with checked_building(make_gateway, broker, prefix, clock, None, automatic=False) as b:
        api = b.api
        await announce(mqtt, prefix, "hall")
        await eventually(lambda: known(api.gateway, "hall"))
        r = await api.http.post("/properties/p1/units/a/devices", json={"device_id": "hand-hall"},
                                headers=bearer(b.installer))  # fmt: skip
        assert r.status_code == 201, r.text
        clock.advance(DAY + timedelta(hours=1))
        await api.gateway.connectivity.check_devices()
        (hall,) = [o for o in await outages(api, b.manager, "device") if o["device_id"] == "hand-hall"]
        assert hall["cause"] == "never_reported" and hall["ended_at"] is None
        r = await api.http.get("/properties/p1/uptime", headers=bearer(b.manager))
        units = {u["unit_id"]: u for u in r.json()["units"]}
        devices = {d["device_id"]: d for d in units["a"]["devices"]}
        assert devices["hand-hall"]["down_seconds"] == pytest.approx(3600, abs=1)
        assert units["a"]["down_seconds"] == pytest.approx(3600, abs=1) and units["b"]["down_seconds"] == 0
        # The month before: nothing was down yet (it is over, so all of it counts); and no outage in it.
        r = await api.http.get("/properties/p1/uptime", params={"month": "2025-12"}, headers=bearer(b.manager))
        assert r.json()["month"] == "2025-12" and {u["uptime"] for u in r.json()["units"]} == {1.0}
        r = await api.http.get("/properties/p1/outages", params={"month": "2025-12"}, headers=bearer(b.manager))
        assert r.status_code == 200 and r.json() == []
        r = await api.http.get("/properties/p1/uptime", params={"month": "2026-13"}, headers=bearer(b.manager))
        assert r.status_code == 422


def open_devices(gw: Gateway) -> dict[str, Outage]:
    """The device outages going on, by device, as the tracker holds them (no pass of its own)."""
    return {o.device_id or "": o for o in gw.connectivity.open_now() if o.kind is OutageKind.DEVICE}


@EMBEDDED
async def test_the_periodic_pass_alone_finds_a_device_gone_silent_and_leaves_the_others(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client, prefix: str, clock: ManualClock
) -> None:
    # The periodic pass reconciles only devices that are down or have an outage open: one up device gone past
    # its expire_after must still be found by it, with the time it went silent, and no other device touched.
    async with make_gateway(device_check_seconds=0.05) as gw:
        porch = await announce(mqtt, prefix, "porch", expire_after=600)
        hall = await announce(mqtt, prefix, "hall")
        await mqtt.publish(porch, b"21.5", qos=1, retain=True)
        await mqtt.publish(hall, b"19.0", qos=1, retain=True)
        await eventually(lambda: reported(gw, "porch") and reported(gw, "hall"))
        reported_at = clock.now()
        clock.advance(601 * SECOND)
        await eventually(lambda: "hand-porch" in open_devices(gw), what="the periodic pass opening the outage")
        silent = open_devices(gw)["hand-porch"]
        assert (silent.cause, silent.started_at) == ("expired", reported_at + timedelta(seconds=600))
        assert set(open_devices(gw)) == {"hand-porch"}
        await mqtt.publish(porch, b"20.0", qos=1)
        await eventually(lambda: not open_devices(gw), what="the outage closed by the next report")
        clock.advance(DAY + SECOND)  # the hall sensor (no availability) silent past the default day, the porch too
        await eventually(lambda: set(open_devices(gw)) == {"hand-porch", "hand-hall"}, what="both found silent")
        assert open_devices(gw)["hand-hall"].cause == "silent"
