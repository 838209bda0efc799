"""Discovery, state and bad input through MQTT from a plain client, as mosquitto_pub would send them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Mapping
from functools import partial

import aiomqtt

from devices import LightState, SensorState
from gateway.app import Gateway
from tests.support.gateway import GatewayFactory
from tests.support.polling import eventually

LIGHT_CONFIG: dict[str, object] = {
    "schema": "json",
    "name": "Hall light",
    "unique_id": "hand-hall-light",
    "command_topic": "hand/hall/set",
    "state_topic": "hand/hall/state",
    "availability_topic": "hand/hall/availability",
    "brightness": True,
    "device": {"identifiers": ["hand-hall"], "name": "Hall", "manufacturer": "by hand"},
}
SENSOR_CONFIG: dict[str, object] = {
    "state_topic": "hand/temp/state",
    "device_class": "temperature",
    "unit_of_measurement": "°C",
    "value_template": "{{ value_json.temperature }}",
    "device": {"identifiers": ["hand-temp"]},
}


async def _pub(
    client: aiomqtt.Client, topic: str, payload: bytes | str | Mapping[str, object], retain: bool = True
) -> None:
    body = json.dumps(payload).encode() if isinstance(payload, Mapping) else payload
    await client.publish(topic, body, qos=1, retain=retain)


def _counted_above(gw: Gateway, reason: str, before: int) -> bool:
    return gw.metrics.rejected[reason] > before


async def _discover_hall(gw: Gateway, mqtt: aiomqtt.Client, prefix: str) -> None:
    await _pub(mqtt, f"{prefix}/light/hall/light/config", LIGHT_CONFIG)
    await _pub(mqtt, "hand/hall/state", b'{"state":"ON","brightness":128}')
    await _pub(mqtt, "hand/hall/availability", b"online")
    await eventually(
        lambda: (e := gw.registry.get("light/hall/light")) is not None and e.state is not None and e.available is True,
        what="hand-published light discovered with state",
    )


async def test_raw_config_is_discovered_with_state_and_persisted(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client, prefix: str
) -> None:
    async with make_gateway() as gw:
        await _discover_hall(gw, mqtt, prefix)
        entity = gw.registry.get("light/hall/light")
        assert entity is not None
        assert entity.state == LightState(on=True, brightness=128)
        assert entity.device_id == "hand-hall"
        await gw.persister.flush()
        db_path = gw.settings.database
    with sqlite3.connect(db_path) as conn:
        sql = "SELECT kind, state, available FROM current_entities WHERE key='light/hall/light'"
        row = conn.execute(sql).fetchone()
    assert row == ("light", LightState(on=True, brightness=128).model_dump_json(), 1)


async def test_a_flush_cancelled_while_its_batch_waits_for_the_writer_loses_nothing(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client, prefix: str
) -> None:
    """Stopping cancels the periodic flush: a batch it had taken is still written, once (no lost state, no event
    twice), however busy the writer thread was."""
    async with make_gateway() as gw:
        await _discover_hall(gw, mqtt, prefix)
        await gw.persister.flush()
        await _pub(mqtt, "hand/hall/state", b'{"state":"OFF","brightness":3}')
        await eventually(
            lambda: (
                (e := gw.registry.get("light/hall/light")) is not None and e.state == LightState(on=False, brightness=3)
            ),
            what="the new state in memory",
        )
        busy = asyncio.ensure_future(gw.db.run(lambda _db: time.sleep(0.3)))  # the writer thread is busy
        flushing = asyncio.ensure_future(gw.persister.flush())
        await asyncio.sleep(0.05)  # it has taken the batch and waits for the writer
        flushing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flushing
        await busy
        await gw.persister.flush()  # the final flush of a stop
        db_path = gw.settings.database
    with sqlite3.connect(db_path) as conn:
        state = conn.execute("SELECT state FROM current_entities WHERE key='light/hall/light'").fetchone()[0]
        offs = conn.execute(
            "SELECT count(*) FROM all_events WHERE type='state' AND json_extract(data, '$.brightness') = 3"
        ).fetchone()
    assert state == LightState(on=False, brightness=3).model_dump_json()
    assert offs == (1,)


async def test_retained_config_published_before_the_gateway_starts_is_discovered(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client, prefix: str
) -> None:
    await _pub(mqtt, f"{prefix}/sensor/temp/t/config", SENSOR_CONFIG)
    await _pub(mqtt, "hand/temp/state", b'{"temperature": 21.5}')
    async with make_gateway() as gw:
        await eventually(
            lambda: (e := gw.registry.get("sensor/temp/t")) is not None and e.state is not None,
            what="retained sensor config and state",
        )
        entity = gw.registry.get("sensor/temp/t")
        assert entity is not None and entity.state == SensorState(value=21.5, unit="°C")
        assert entity.kind == "temperature_sensor"


async def test_empty_retained_config_removes_the_entity(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client, prefix: str
) -> None:
    async with make_gateway() as gw:
        await _discover_hall(gw, mqtt, prefix)
        await _pub(mqtt, f"{prefix}/light/hall/light/config", b"")
        await eventually(lambda: gw.registry.get("light/hall/light") is None, what="entity removed")


async def test_a_removed_device_rediscovered_under_another_topic_keeps_persisting(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client, prefix: str
) -> None:
    """Renamed in its bridge (new discovery topic, same unique_id): the old row gives the id up, nothing jams."""
    async with make_gateway() as gw:
        await _discover_hall(gw, mqtt, prefix)
        await gw.persister.flush()
        await _pub(mqtt, f"{prefix}/light/hall/light/config", b"")
        await _pub(mqtt, f"{prefix}/light/hallway/light/config", LIGHT_CONFIG)
        await eventually(lambda: gw.registry.get("light/hallway/light") is not None, what="rediscovered")
        await gw.persister.flush()  # raised StorageError (UNIQUE constraint) before, and every later flush with it
        await _pub(mqtt, "hand/hall/state", b'{"state":"OFF","brightness":10}')
        await eventually(
            lambda: (
                (e := gw.registry.get("light/hallway/light")) is not None
                and e.state == LightState(on=False, brightness=10)
            ),
            what="new state",
        )
        await gw.persister.flush()
        assert gw.persister.last_error is None
        db_path = gw.settings.database
    with sqlite3.connect(db_path) as conn:
        sql = "SELECT key, unique_id, removed_at IS NOT NULL, state FROM current_entities ORDER BY key"
        rows = conn.execute(sql).fetchall()
    assert rows == [
        ("light/hall/light", None, 1, LightState(on=True, brightness=128).model_dump_json()),
        ("light/hallway/light", "hand-hall-light", 0, LightState(on=False, brightness=10).model_dump_json()),
    ]


async def test_devices_of_one_bridge_share_its_status_topic_as_availability(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client, prefix: str
) -> None:
    """Zigbee2MQTT lists ``bridge/state`` in every device's availability: both devices are taken, and follow it."""

    def bulb(name: str) -> dict[str, object]:
        return {
            "schema": "json",
            "name": None,
            "unique_id": f"0x{name}_light_z2m",
            "state_topic": f"z2m/{name}",
            "command_topic": f"z2m/{name}/set",
            "availability": [{"topic": "z2m/bridge/state", "value_template": "{{ value_json.state }}"}],
            "device": {"identifiers": [f"zigbee2mqtt_0x{name}"], "manufacturer": "IKEA"},
        }

    async with make_gateway() as gw:
        for name in ("aa", "bb"):
            await _pub(mqtt, f"{prefix}/light/0x{name}/light/config", bulb(name))
        await _pub(mqtt, "z2m/bridge/state", b'{"state":"online"}')
        keys = ("light/0xaa/light", "light/0xbb/light")
        await eventually(
            lambda: all((e := gw.registry.get(k)) is not None and e.available is True for k in keys),
            what="both bulbs discovered and online",
        )
        assert gw.metrics.rejected["topic_conflict"] == 0
        await _pub(mqtt, "z2m/bridge/state", b'{"state":"offline"}')
        await eventually(
            lambda: all((e := gw.registry.get(k)) is not None and e.available is False for k in keys),
            what="both bulbs offline with their bridge",
        )
        # Their own topics stay theirs: a third device claiming one is still refused.
        await _pub(mqtt, f"{prefix}/light/0xcc/light/config", {**bulb("cc"), "state_topic": "z2m/aa"}, retain=False)
        await eventually(lambda: gw.metrics.rejected["topic_conflict"] == 1, what="the claim refused")
        assert gw.registry.get("light/0xcc/light") is None


async def test_bad_configs_are_refused_with_counted_reasons_and_others_unaffected(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client, prefix: str
) -> None:
    async with make_gateway() as gw:
        await _discover_hall(gw, mqtt, prefix)
        bad: dict[str, tuple[str, bytes | Mapping[str, object]]] = {
            "payload_not_json": (f"{prefix}/light/x1/light/config", b"{not json"),
            "config_invalid": (
                f"{prefix}/light/x2/light/config",
                {**LIGHT_CONFIG, "unique_id": "x2", "brightness_scale": "high"},
            ),
            "unknown_component": (f"{prefix}/vacuum/x3/v/config", {"command_topic": "x3/set"}),
            "payload_too_large": (f"{prefix}/light/x4/light/config", b"{" + b" " * (65 * 1024) + b"}"),
            # a config that claims the hall light's state topic: a spoofing attempt
            "topic_conflict": (
                f"{prefix}/light/x5/light/config",
                {**LIGHT_CONFIG, "unique_id": "x5", "device": {"identifiers": ["x5"]}},
            ),
            "unique_id_conflict": (
                f"{prefix}/light/x6/light/config",
                {
                    **LIGHT_CONFIG,
                    "state_topic": "x6/s",
                    "command_topic": "x6/c",
                    "availability_topic": "x6/a",
                    "device": {"identifiers": ["x6"]},
                },
            ),
        }
        for topic, payload in bad.values():
            await _pub(mqtt, topic, payload, retain=False)
        await eventually(
            lambda: all(gw.metrics.rejected[r] >= 1 for r in bad),
            what=f"every refusal counted; got {dict(gw.metrics.rejected)}",
        )
        assert [e.id for e in gw.registry.entities()] == ["light/hall/light"]
        # the gateway still takes the hall light's reports
        await _pub(mqtt, "hand/hall/state", b'{"state":"OFF"}')
        await eventually(
            lambda: (
                (e := gw.registry.get("light/hall/light")) is not None
                and e.state is not None
                and isinstance(e.state, LightState)
                and not e.state.on
            ),
            what="hall light still updates",
        )


async def test_garbage_state_keeps_last_good_state_marked_invalid(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client, prefix: str
) -> None:
    async with make_gateway() as gw:
        await _discover_hall(gw, mqtt, prefix)
        good = LightState(on=True, brightness=128)
        cases = {
            "payload_not_json": b"garbage",
            "payload_wrong_type": b'{"state":"ON","brightness":"bright"}',
            "payload_out_of_range": b'{"state":"ON","brightness":300}',
        }
        for reason, payload in cases.items():
            before = gw.metrics.rejected[reason]
            await _pub(mqtt, "hand/hall/state", payload, retain=False)
            await eventually(partial(_counted_above, gw, reason, before), what=f"{reason} counted")
            entity = gw.registry.get("light/hall/light")
            assert entity is not None
            assert entity.state == good
            assert not entity.state_valid
            assert entity.state_error is not None and entity.state_error.code == reason
        await _pub(mqtt, "hand/hall/state", b'{"state":"ON","brightness":64}')
        await eventually(
            lambda: (e := gw.registry.get("light/hall/light")) is not None and e.state_valid,
            what="valid again after a good report",
        )


async def test_unknown_availability_payload_is_refused(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client, prefix: str
) -> None:
    async with make_gateway() as gw:
        await _discover_hall(gw, mqtt, prefix)
        await _pub(mqtt, "hand/hall/availability", b"maybe", retain=False)
        await eventually(lambda: gw.metrics.rejected["availability_invalid"] == 1, what="availability refused")
        entity = gw.registry.get("light/hall/light")
        assert entity is not None and entity.available is True


async def test_config_in_utf16_is_refused_not_crashing_the_handler(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client, prefix: str
) -> None:
    async with make_gateway() as gw:
        await _pub(mqtt, f"{prefix}/light/u16/light/config", json.dumps(LIGHT_CONFIG).encode("utf-16"), retain=False)
        await eventually(lambda: gw.metrics.rejected["payload_not_utf8"] == 1, what="UTF-16 config refused")
        assert gw.link.handler_errors == 0
        assert gw.registry.get("light/u16/light") is None


async def test_a_state_report_writes_only_what_reports_change(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client, prefix: str
) -> None:
    """Once an entity has its row, a state or availability report updates only the reported columns: the stored
    config, name and discovery time are not written again (here: a marker put in them stays)."""
    async with make_gateway() as gw:
        await _discover_hall(gw, mqtt, prefix)
        await gw.persister.flush()
        db_path = gw.settings.database
        with sqlite3.connect(db_path) as conn:
            conn.execute("UPDATE entities SET name = 'marker', config = '{}' WHERE key='light/hall/light'")
        await _pub(mqtt, "hand/hall/state", b'{"state":"OFF","brightness":9}')
        await _pub(mqtt, "hand/hall/availability", b"offline")
        await eventually(
            lambda: (e := gw.registry.get("light/hall/light")) is not None and e.available is False,
            what="the new state and availability in memory",
        )
        await gw.persister.flush()
    with sqlite3.connect(db_path) as conn:
        row = conn.execute(
            "SELECT name, config, state, available FROM current_entities WHERE key='light/hall/light'"
        ).fetchone()
    assert row == ("marker", "{}", LightState(on=False, brightness=9).model_dump_json(), 0)


async def test_an_entity_discovered_and_reporting_in_one_flush_gets_its_whole_row(
    make_gateway: GatewayFactory, mqtt: aiomqtt.Client, prefix: str
) -> None:
    """A report on an entity whose row is not written yet is written as the whole row (an UPDATE would find
    nothing), with the state it reported."""
    async with make_gateway(state_flush_interval=10.0) as gw:
        await _discover_hall(gw, mqtt, prefix)  # discovery, state and availability before any flush
        await gw.persister.flush()
        db_path = gw.settings.database
    with sqlite3.connect(db_path) as conn:
        sql = "SELECT name, state, available FROM current_entities WHERE key='light/hall/light'"
        row = conn.execute(sql).fetchone()
    assert row == ("Hall light", LightState(on=True, brightness=128).model_dump_json(), 1)
