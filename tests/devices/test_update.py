"""The ``update`` entity as Zigbee2MQTT and ESPHome announce it: configs, state, progress and the install command."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from devices import (
    Component,
    ConfigInvalid,
    DeviceKind,
    OutcomeStatus,
    PayloadInvalid,
    UpdateCommand,
    UpdateConfig,
    UpdateState,
    parse_config,
)

# Zigbee2MQTT 2.x, lib/extension/homeassistant.ts: the update entity of an OTA-capable device, as published for a
# device named "u101/light" with IEEE address 0x0017880104e45517 (base topic zigbee2mqtt).
Z2M_CONFIG = {
    "name": None,
    "entity_picture": "https://github.com/Koenkk/zigbee2mqtt/raw/master/images/logo.png",
    "state_topic": "zigbee2mqtt/u101/light",
    "device_class": "firmware",
    "entity_category": "config",
    "command_topic": "zigbee2mqtt/bridge/request/device/ota_update/update",
    "payload_install": '{"id": "0x0017880104e45517"}',
    "value_template": '{"latest_version":"{{ value_json[\'update\'][\'latest_version\'] }}","installed_version":"{{ '
    "value_json['update']['installed_version'] }}\",\"update_percentage\":{{ value_json['update'].get('progress', "
    "'null') }},\"in_progress\":{{ (value_json['update']['state'] == 'updating')|lower }}}",
    "availability": [{"topic": "zigbee2mqtt/bridge/state", "value_template": "{{ value_json.state }}"}],
    "device": {"identifiers": ["zigbee2mqtt_0x0017880104e45517"], "name": "u101/light"},
    "origin": {"name": "Zigbee2MQTT", "sw": "2.1.0", "url": "https://www.zigbee2mqtt.io"},
    "unique_id": "0x0017880104e45517_update_zigbee2mqtt",
}
# ESPHome, esphome/components/mqtt/mqtt_update.cpp: a JSON state of its own and INSTALL as the install payload.
ESPHOME_CONFIG = {
    "name": "Firmware",
    "schema": "json",
    "pl_inst": "INSTALL",
    "stat_t": "u101-plug/update/firmware/state",
    "cmd_t": "u101-plug/update/firmware/command",
    "avty_t": "u101-plug/status",
    "uniq_id": "u101-plugupdatefirmware",
    "dev": {"ids": "a0b1c2d3e4f5", "name": "u101-plug", "sw": "2024.12.2 (ESPHome)"},
}


def parse(body: Mapping[str, object]) -> UpdateConfig:
    config = parse_config(Component.UPDATE, json.dumps(body).encode())
    assert isinstance(config, UpdateConfig)
    return config


def z2m_state(**update: object) -> bytes:
    return json.dumps({"state": "ON", "brightness": 254, "update": update}).encode()


def test_zigbee2mqtt_update_reads_versions_and_progress_from_the_device_state() -> None:
    config = parse(Z2M_CONFIG)
    assert config.kind is DeviceKind.FIRMWARE_UPDATE
    topic = "zigbee2mqtt/u101/light"
    assert config.state_keys() == {topic: frozenset({"update"})}
    # The install topic is the bridge's, shared by every device: it is not this device's to own.
    assert config.owned_topics() == frozenset({topic})
    idle = config.decode_state(topic, z2m_state(state="available", installed_version=16777216,
                                                latest_version=16777472), None)  # fmt: skip
    assert idle == UpdateState(installed_version="16777216", latest_version="16777472")
    assert idle.update_available
    updating = z2m_state(state="updating", installed_version=16777216, latest_version=16777472, progress=42.5)
    going = config.decode_state(topic, updating, idle)
    assert going.in_progress and going.update_percentage == 42.5
    done = config.decode_state(topic, z2m_state(state="idle", installed_version=16777472,
                                                latest_version=16777472), going)  # fmt: skip
    assert not done.in_progress and done.update_percentage is None and not done.update_available
    # Before Zigbee2MQTT has checked: {"update": {"state": null}} (its mock property) is nothing known yet.
    assert config.decode_state(topic, z2m_state(state=None), None) == UpdateState()


def test_install_goes_to_the_command_topic_with_the_install_payload() -> None:
    config = parse(Z2M_CONFIG)
    [publish] = config.encode_command(UpdateCommand(action="install"))
    assert publish.topic == "zigbee2mqtt/bridge/request/device/ota_update/update"
    assert json.loads(publish.payload) == {"id": "0x0017880104e45517"}
    assert config.decode_command(publish.topic, publish.payload) == UpdateCommand(action="install")
    started = UpdateState(installed_version="1", latest_version="2", in_progress=True)
    assert config.outcome(UpdateCommand(action="install"), started).status is OutcomeStatus.CONFIRMED
    waiting = UpdateState(installed_version="1", latest_version="2")
    assert config.outcome(UpdateCommand(action="install"), waiting).status is OutcomeStatus.PENDING


def test_esphome_update_with_abbreviations_and_a_json_state() -> None:
    config = parse(ESPHOME_CONFIG)
    assert config.installable and config.payload_install == "INSTALL"
    payload = json.dumps({"installed_version": "1.0.0", "latest_version": "1.1.0", "title": "Plug firmware",
                          "release_url": "https://example.invalid/1.1.0"}).encode()  # fmt: skip
    state = config.decode_state("u101-plug/update/firmware/state", payload, None)
    assert state.installed_version == "1.0.0" and state.latest_version == "1.1.0" and state.title == "Plug firmware"
    [publish] = config.encode_command(UpdateCommand(action="install"))
    assert (publish.topic, publish.payload) == ("u101-plug/update/firmware/command", b"INSTALL")


def test_plain_payloads_latest_version_topic_and_the_older_numeric_in_progress() -> None:
    config = parse({"state_topic": "dev/installed", "latest_version_topic": "dev/latest", "command_topic": "dev/cmd",
                    "payload_install": "go"})  # fmt: skip
    state = config.decode_state("dev/installed", b"1.2", None)
    state = config.decode_state("dev/latest", b"1.3", state)
    assert (state.installed_version, state.latest_version) == ("1.2", "1.3")
    legacy = config.decode_state("dev/installed", b'{"in_progress": 30}', state)
    assert legacy.in_progress and legacy.update_percentage == 30
    assert legacy.installed_version == "1.2"  # a report merges into what was known


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b'{"update_percentage": "half"}', "payload_wrong_type"),
        (b'{"update_percentage": 140}', "payload_wrong_type"),
        (b'{"in_progress": "yes"}', "payload_wrong_type"),
        (b"\xff", "payload_not_utf8"),
    ],
)
def test_bad_update_states_are_refused_with_a_reason(payload: bytes, code: str) -> None:
    config = parse({"state_topic": "dev/state"})
    with pytest.raises(PayloadInvalid) as err:
        config.decode_state("dev/state", payload, None)
    assert err.value.code == code


@pytest.mark.parametrize(
    "template",
    [
        "{{ value_json.update | tojson }}",
        '{"installed_version":"{{ value_json.update.installed_version | upper }}"}',
        '{"owned":"{{ value_json.a }}"}',
    ],
)
def test_templates_beyond_the_known_forms_are_refused_at_discovery(template: str) -> None:
    with pytest.raises(ConfigInvalid) as err:
        parse({"state_topic": "dev/state", "value_template": template})
    assert err.value.code == "unsupported_template"


def test_an_update_without_state_or_latest_topic_is_refused() -> None:
    with pytest.raises(ConfigInvalid) as err:
        parse({"command_topic": "dev/cmd", "payload_install": "go"})
    assert err.value.code == "config_invalid"
    config = parse({"state_topic": "dev/state"})
    assert not config.installable
    with pytest.raises(Exception, match="no install command"):
        config.encode_command(UpdateCommand(action="install"))


def test_zigbee2mqtt_1x_plain_templates_on_one_topic() -> None:
    # Zigbee2MQTT 1.3x: latest_version_topic is the state topic itself, each version read by a plain path.
    config = parse({
        "state_topic": "zigbee2mqtt/hall", "latest_version_topic": "zigbee2mqtt/hall",
        "value_template": "{{ value_json['update']['installed_version'] }}",
        "latest_version_template": "{{ value_json['update']['latest_version'] }}",
        "command_topic": "zigbee2mqtt/bridge/request/device/ota_update/update", "payload_install": '{"id": "hall"}',
    })  # fmt: skip
    assert config.state_keys() == {"zigbee2mqtt/hall": frozenset({"update"})}
    state = config.decode_state("zigbee2mqtt/hall", z2m_state(installed_version=587765297, latest_version=587765298),
                                None)  # fmt: skip
    assert (state.installed_version, state.latest_version) == ("587765297", "587765298") and state.update_available
