"""Recorded devices (tests/fixtures/firmware/<firmware>/<device>.json) and a small emulator that answers as the
recorded firmware does: it takes the exact messages the recording says the device receives and publishes the
recorded answers, and notes anything else it is sent."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiomqtt

__all__ = [
    "FIRMWARE_FIXTURES",
    "Emulator",
    "Exchange",
    "Message",
    "Recording",
    "load_recordings",
    "recordings_of",
]

FIRMWARE_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "firmware"
DISCOVERY_PREFIX = "homeassistant"


@dataclass(frozen=True)
class Message:
    """One recorded MQTT message: a text payload as it is, anything else as compact JSON."""

    topic: str
    payload: Any
    retain: bool = False

    @property
    def body(self) -> bytes:
        """The payload's bytes on the wire."""
        if isinstance(self.payload, str):
            return self.payload.encode()
        return json.dumps(self.payload, separators=(",", ":"), ensure_ascii=False).encode()

    def matches(self, topic: str, payload: bytes) -> bool:
        """Whether a received message is this one (a JSON payload compared as JSON, key order aside)."""
        if topic != self.topic:
            return False
        if isinstance(self.payload, str):
            return payload == self.payload.encode()
        try:
            return bool(json.loads(payload) == self.payload)
        except ValueError:
            return False

    def under(self, prefix: str) -> Message:
        """The message with the discovery prefix replaced by a test's own."""
        if self.topic.startswith(DISCOVERY_PREFIX + "/"):
            return Message(prefix + self.topic[len(DISCOVERY_PREFIX) :], self.payload, self.retain)
        return self


@dataclass(frozen=True)
class Exchange:
    """What the device receives and what it answers."""

    receives: tuple[Message, ...]
    answers: tuple[Message, ...]


@dataclass(frozen=True)
class Command:
    """A command sent through the API, the exchange it causes on the wire, and the state it ends in."""

    entity: str
    command: dict[str, Any]
    exchange: Exchange
    state: dict[str, Any]


@dataclass(frozen=True)
class Recording:
    """One recorded device: how its firmware announces it, reports, takes commands and answers the self-test."""

    path: Path
    firmware: str
    device_id: str
    kind: str
    publish: tuple[Message, ...]
    entities: dict[str, dict[str, Any]]
    commands: tuple[Command, ...]
    probe_method: str
    probe: Exchange | None
    probe_reason: str | None
    sources: tuple[str, ...]

    @property
    def name(self) -> str:
        """``<firmware>/<file stem>``."""
        return f"{self.path.parent.name}/{self.path.stem}"

    @property
    def retained(self) -> list[Message]:
        """What the device (or its bridge) leaves retained: availability, discovery, retained state."""
        return [m for m in self.publish if m.retain]

    @property
    def reports(self) -> list[Message]:
        """What it sends without retain (periodic telemetry), in order."""
        return [m for m in self.publish if not m.retain]


def _messages(items: Iterable[dict[str, Any]]) -> tuple[Message, ...]:
    return tuple(Message(i["topic"], i["payload"], bool(i.get("retain", False))) for i in items)


def _recording(path: Path) -> Recording:
    raw = json.loads(path.read_text(encoding="utf-8"))
    probe = raw["probe"]
    return Recording(
        path=path,
        firmware=raw["firmware"],
        device_id=raw["device_id"],
        kind=raw["kind"],
        publish=_messages(raw["publish"]),
        entities=raw["entities"],
        commands=tuple(
            Command(c["entity"], c["command"], Exchange(_messages(c["receives"]), _messages(c["answers"])), c["state"])
            for c in raw["commands"]
        ),
        probe_method=probe["method"],
        probe=Exchange(_messages(probe["receives"]), _messages(probe["answers"])) if "receives" in probe else None,
        probe_reason=probe.get("reason"),
        sources=tuple(raw["sources"]),
    )


def recordings_of(firmware: str) -> list[Recording]:
    """Every recorded device of one firmware, in file order."""
    return [_recording(p) for p in sorted((FIRMWARE_FIXTURES / firmware).glob("*.json"))]


def load_recordings() -> list[Recording]:
    """Every recorded device."""
    return [r for d in sorted(p for p in FIRMWARE_FIXTURES.iterdir() if p.is_dir()) for r in recordings_of(d.name)]


@dataclass
class _Armed:
    exchange: Exchange
    waiting: list[Message] = field(default_factory=list)


class Emulator:
    """One MQTT client standing in for recorded devices: armed with exchanges, it answers each once it has
    received every message the exchange names, exactly; anything else it receives is kept in ``unexpected``."""

    def __init__(self, host: str, port: int, recordings: Sequence[Recording], prefix: str) -> None:
        self._host, self._port, self._prefix = host, port, prefix
        self._recordings = recordings
        self._armed: list[_Armed] = []
        self._client: aiomqtt.Client | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._reader: asyncio.Task[None] | None = None
        self.received: list[tuple[str, bytes]] = []
        self.unexpected: list[tuple[str, bytes]] = []

    def _listened(self) -> set[str]:
        topics: set[str] = set()
        for r in self._recordings:
            for c in r.commands:
                topics.update(m.topic for m in c.exchange.receives)
            if r.probe is not None:
                topics.update(m.topic for m in r.probe.receives)
            # every command topic of every entity: a message the recording does not expect there is a finding
            for m in r.publish:
                if m.topic.startswith(DISCOVERY_PREFIX + "/") and isinstance(m.payload, dict):
                    topics.update(v for k, v in _expanded_topics(m.payload) if "cmd" in k or "command" in k)
        return topics

    def arm(self, *exchanges: Exchange) -> None:
        """Answer these exchanges (each once), in addition to any still armed."""
        self._armed.extend(_Armed(e, list(e.receives)) for e in exchanges)

    @property
    def armed(self) -> int:
        """Exchanges not yet answered."""
        return len(self._armed)

    async def publish(self, message: Message) -> None:
        """Publish one recorded message (its discovery prefix replaced by the test's)."""
        assert self._client is not None
        m = message.under(self._prefix)
        await self._client.publish(m.topic, m.body, qos=1, retain=m.retain)

    async def __aenter__(self) -> Self:
        self._client = aiomqtt.Client(self._host, self._port, identifier=f"recorded-{uuid.uuid4().hex[:8]}")
        await self._client.__aenter__()
        for topic in sorted(self._listened()):
            await self._client.subscribe(topic, qos=1)
        self._tasks = asyncio.TaskGroup()
        await self._tasks.__aenter__()
        self._reader = self._tasks.create_task(self._read(), name="recorded-device-emulator")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._tasks is not None and self._client is not None and self._reader is not None
        self._reader.cancel()
        await self._tasks.__aexit__(None, None, None)
        await self._client.__aexit__(exc_type, exc, tb)

    async def _read(self) -> None:
        assert self._client is not None
        async for message in self._client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            topic = str(message.topic)
            self.received.append((topic, payload))
            answers = self._take(topic, payload)
            if answers is None:
                self.unexpected.append((topic, payload))
                continue
            for answer in answers:
                await self.publish(answer)

    def _take(self, topic: str, payload: bytes) -> tuple[Message, ...] | None:
        """The answers this message completes (empty while an exchange waits for more), or None if unexpected."""
        for armed in self._armed:
            for i, wanted in enumerate(armed.waiting):
                if wanted.matches(topic, payload):
                    del armed.waiting[i]
                    if armed.waiting:
                        return ()
                    self._armed.remove(armed)
                    return armed.exchange.answers
        return None


def _expanded_topics(config: dict[str, Any]) -> Iterable[tuple[str, str]]:
    """(key, topic) for every topic-valued key of a discovery config, ``~`` substituted."""
    base = config.get("~")
    for key, raw in config.items():
        if not isinstance(raw, str) or not (key.endswith("_t") or key.endswith("topic")):
            continue
        topic = raw
        if isinstance(base, str) and raw.startswith("~"):
            topic = base + raw[1:]
        elif isinstance(base, str) and raw.endswith("~"):
            topic = raw[:-1] + base
        yield key, topic
