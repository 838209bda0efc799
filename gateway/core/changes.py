"""Typed notifications of the registry's changes: what listeners implement, and the fan-out that tells them."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from .entity import Entity
from .journal import JournalEvent

__all__ = ["ChangeListener", "Changes", "EntityListener"]


class EntityListener(Protocol):
    """Told about every accepted change, synchronously, on the event loop."""

    def on_state(self, entity: Entity) -> None:
        """``entity.state`` was just replaced by a newly accepted report."""

    def on_availability(self, entity: Entity) -> None:
        """``entity.available`` just changed."""


class ChangeListener(EntityListener, Protocol):
    """Told about every change to an entity's record (for those who keep a copy, such as the persister)."""

    def on_discovered(self, entity: Entity, at: datetime) -> None:
        """``entity`` was discovered at ``at``, or its config (and maybe its device) changed."""

    def on_touched(self, entity: Entity) -> None:
        """Something else of ``entity`` changed: last seen, a refused report, one of its availability topics."""

    def on_removed(self, entity: Entity) -> None:
        """``entity`` was removed (``removed_at`` is set)."""

    def on_event(self, event: JournalEvent) -> None:
        """``event`` was recorded in the journal."""


class Changes:
    """The listeners of one registry; each notification goes to each in the order they were added."""

    def __init__(self) -> None:
        self._listeners: list[EntityListener] = []
        self._recorders: list[ChangeListener] = []

    def add_listener(self, listener: EntityListener) -> None:
        """Be told about accepted state and availability changes."""
        self._listeners.append(listener)

    def add_change_listener(self, listener: ChangeListener) -> None:
        """Be told about every change to an entity's record, state and availability included."""
        self._recorders.append(listener)

    def discovered(self, entity: Entity, at: datetime) -> None:
        """Tell that ``entity`` was discovered or reconfigured."""
        for recorder in self._recorders:
            recorder.on_discovered(entity, at)

    def touched(self, entity: Entity) -> None:
        """Tell that ``entity``'s record changed otherwise."""
        for recorder in self._recorders:
            recorder.on_touched(entity)

    def removed(self, entity: Entity) -> None:
        """Tell that ``entity`` was removed."""
        for recorder in self._recorders:
            recorder.on_removed(entity)

    def event(self, event: JournalEvent) -> None:
        """Tell that ``event`` was recorded."""
        for recorder in self._recorders:
            recorder.on_event(event)

    def state(self, entity: Entity) -> None:
        """Tell that ``entity`` has a newly accepted state."""
        for recorder in self._recorders:
            recorder.on_state(entity)
        for listener in self._listeners:
            listener.on_state(entity)

    def availability(self, entity: Entity) -> None:
        """Tell that ``entity``'s availability changed."""
        for recorder in self._recorders:
            recorder.on_availability(entity)
        for listener in self._listeners:
            listener.on_availability(entity)
