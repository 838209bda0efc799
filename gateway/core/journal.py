"""The event journal: what happened to entities and to the gateway, time-stamped and handed to its readers."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from devices import EntityState

from ..clock import Clock

__all__ = ["Journal", "JournalEvent", "JournalReader", "StateData"]


class JournalEvent(NamedTuple):
    """One thing that happened (availability, state, a refused payload, a command, the broker link); immutable, and
    a tuple because one is made for every accepted state change (half the cost of a frozen dataclass)."""

    at: datetime
    entity_id: str | None
    type: str
    data: Mapping[str, object]


class StateData(Mapping[str, object]):
    """A state event's data: the accepted state in its JSON form, built only when read as a mapping (the writer
    stores ``json()``, the same text as the entity's ``state`` column, serialised once for both)."""

    __slots__ = ("_dict", "state")

    def __init__(self, state: EntityState) -> None:
        self.state = state
        self._dict: dict[str, Any] | None = None

    def json(self) -> str:
        """The state as stored (compact JSON)."""
        return self.state.model_dump_json()

    def _mapping(self) -> dict[str, Any]:
        if self._dict is None:
            self._dict = self.state.model_dump(mode="json")
        return self._dict

    def __getitem__(self, key: str) -> object:
        return self._mapping()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())


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

    def record(self, entity_id: str | None, type_: str, data: Mapping[str, object], at: datetime | None = None) -> None:
        """Record one event, at ``at`` (a time the caller already read from the same clock) or now."""
        event = JournalEvent(self._clock.now() if at is None else at, entity_id, type_, data)
        for reader in self._readers:
            reader(event)
