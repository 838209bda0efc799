"""The event journal: what happened to entities and to the gateway, time-stamped and handed to its readers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from ..clock import Clock

__all__ = ["Journal", "JournalEvent", "JournalReader"]


@dataclass(frozen=True, slots=True)
class JournalEvent:
    """One thing that happened (availability, state, a refused payload, a command, the broker link)."""

    at: datetime
    entity_id: str | None
    type: str
    data: Mapping[str, object]


JournalReader = Callable[[JournalEvent], None]
"""Told about every event as it is recorded, synchronously, on the event loop."""


class Journal:
    """Stamps events with the clock's time and hands each to every reader; keeps none itself."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._readers: list[JournalReader] = []

    def add_reader(self, reader: JournalReader) -> None:
        """Be told about every later event."""
        self._readers.append(reader)

    def record(self, entity_id: str | None, type_: str, data: Mapping[str, object]) -> None:
        """Record one event now."""
        event = JournalEvent(self._clock.now(), entity_id, type_, data)
        for reader in self._readers:
            reader(event)
