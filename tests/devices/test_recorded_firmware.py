"""Every recorded device (tests/fixtures/firmware) read by the codecs alone: its discovery configs parse to the kinds
the recording names, its reports decode to the recorded states, each command encodes to exactly the messages the
firmware receives, and the firmware's answer confirms it. The same recordings run through a real broker and the
HTTP API in tests/gateway/test_recorded_firmware.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devices import (
    Component,
    EntityConfig,
    EntityState,
    OutcomeStatus,
    Publish,
    firmware_of,
    parse_config,
    parse_discovery_topic,
    state_queries,
)
from tests.support.firmware import DISCOVERY_PREFIX, Message, Recording, load_recordings

RECORDINGS = load_recordings()


def _by_name(recording: Recording) -> str:
    return recording.name


def configs_of(recording: Recording) -> dict[str, EntityConfig]:
    """The recording's discovery configs, parsed, by entity key."""
    out: dict[str, EntityConfig] = {}
    for m in recording.retained:
        if m.topic.startswith(DISCOVERY_PREFIX + "/") and m.topic.endswith("/config"):
            key = parse_discovery_topic(DISCOVERY_PREFIX, m.topic)
            out[key.key] = parse_config(key.component, m.body)
    return out


def replay(
    configs: dict[str, EntityConfig], messages: list[Message], before: dict[str, EntityState | None] | None = None
) -> dict[str, EntityState | None]:
    """Each entity's state after ``messages`` (from ``before``), merged as the registry merges them."""
    states: dict[str, EntityState | None] = dict(before) if before is not None else dict.fromkeys(configs)
    for m in messages:
        for key, config in configs.items():
            if m.topic in config.state_topics():
                states[key] = config.decode_state(m.topic, m.body, states[key])
    return states


def dump(state: EntityState | None) -> dict[str, Any] | None:
    return None if state is None else json.loads(state.model_dump_json(exclude_none=True))


def test_there_are_recordings_of_every_firmware() -> None:
    firmwares = {r.firmware for r in RECORDINGS}
    assert firmwares == {"tasmota", "zigbee2mqtt", "esphome", "shelly", "zwave_js_ui"}
    kinds = {r.kind for r in RECORDINGS}
    assert {"light", "switch", "lock", "thermostat"} <= kinds
    assert all(r.sources for r in RECORDINGS)


@pytest.mark.parametrize("recording", RECORDINGS, ids=_by_name)
def test_discovery_reports_and_commands_as_the_firmware_speaks(recording: Recording) -> None:
    configs = configs_of(recording)
    assert set(configs) == set(recording.entities), "every announced entity is recorded, and only those"
    for key, config in configs.items():
        assert str(config.kind) == recording.entities[key]["kind"], key
        assert firmware_of(config).value == recording.firmware, key
        assert config.component is Component(key.split("/")[0])
    states = replay(configs, [m for m in recording.publish if not m.topic.startswith(DISCOVERY_PREFIX + "/")])
    for key, expected in recording.entities.items():
        assert dump(states[key]) == expected.get("state"), key
    for step in recording.commands:
        config = configs[step.entity]
        command = config.command_model.model_validate(step.command) if config.command_model else None
        assert command is not None, f"{step.entity} takes no commands"
        sent = config.encode_command_from(command, states[step.entity])
        assert [(p.topic, p.payload) for p in sent] == [(m.topic, m.body) for m in step.exchange.receives]
        assert all(isinstance(p, Publish) and p.qos == 1 and not p.retain for p in sent)
        states = replay(configs, list(step.exchange.answers), states)
        assert dump(states[step.entity]) == step.state, step.command
        state = states[step.entity]
        assert state is not None and config.outcome(command, state).status is OutcomeStatus.CONFIRMED


@pytest.mark.parametrize("recording", RECORDINGS, ids=_by_name)
def test_the_self_test_asks_each_firmware_its_own_way(recording: Recording) -> None:
    configs = [c for c in configs_of(recording).values() if c.state_topics()]
    forbidden = {t for c in configs for t in c.command_topics()}
    queries = state_queries(configs, forbidden)
    asked = [p for q in queries for p in q.requests]
    if recording.probe_method == "asked":
        assert recording.probe is not None
        assert sorted((p.topic, p.payload) for p in asked) == sorted(
            (m.topic, m.body) for m in recording.probe.receives
        )
        assert not any(p.topic in forbidden for p in asked)
    else:
        assert asked == []
        assert recording.probe_reason in {q.reason for q in queries}
