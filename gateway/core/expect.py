"""Waiting for a matching report: the one way commands and the self-test learn what a device answered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from .entity import Entity

__all__ = ["Expectation", "Match", "ReportWatch"]

T = TypeVar("T")

Match = Callable[[Entity], T | None]
"""The verdict a newly accepted report of an entity gives, or None when it does not answer the expectation."""


class Expectation(Generic[T]):
    """Verdicts awaited from some entities' next reports; done once each has one. Close it (or leave its ``with``)
    when no longer waiting."""

    def __init__(
        self, entity_ids: Iterable[str], match: Match[T], offline: T | None, forget: Callable[[Expectation[T]], None]
    ) -> None:
        self.entity_ids = frozenset(entity_ids)
        self.pending = set(self.entity_ids)
        self.verdicts: dict[str, T] = {}
        self._match = match
        self._offline = offline
        self._forget = forget
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self.pending:
            self._done.set_result(None)

    async def wait(self) -> dict[str, T]:
        """Every entity's verdict, once all have one (the caller bounds the wait, e.g. with ``asyncio.timeout``)."""
        # Shielded: a timeout cancels this wait, not the expectation, which still collects until it is closed.
        await asyncio.shield(self._done)
        return self.verdicts

    def close(self) -> None:
        """Stop collecting verdicts (idempotent)."""
        self._forget(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def reported(self, entity: Entity) -> None:
        """``entity`` has a newly accepted state: judge it if its verdict is still awaited."""
        if entity.id in self.pending:
            self._settle(entity.id, self._match(entity))

    def went_offline(self, entity: Entity) -> None:
        """``entity``'s availability changed: going offline may be its verdict."""
        if entity.id in self.pending and entity.available is False:
            self._settle(entity.id, self._offline)

    def _settle(self, entity_id: str, verdict: T | None) -> None:
        if verdict is None:
            return
        self.pending.discard(entity_id)
        self.verdicts[entity_id] = verdict
        if not self.pending and not self._done.done():
            self._done.set_result(None)


class ReportWatch:
    """Hands every accepted report to the open expectations of its entity (a registry listener)."""

    def __init__(self) -> None:
        self._expecting: dict[str, list[Expectation[Any]]] = {}

    def expect(self, entity_ids: Iterable[str], match: Match[T], *, offline: T | None = None) -> Expectation[T]:
        """Collect verdicts until closed: ``match`` judges each newly accepted state report of the entities, and an
        entity going offline gives ``offline`` (None: going offline answers nothing). Open it before asking, so
        that no answer comes too early to count."""
        expectation = Expectation(entity_ids, match, offline, self._forget)
        for entity_id in expectation.entity_ids:
            self._expecting.setdefault(entity_id, []).append(expectation)
        return expectation

    def on_state(self, entity: Entity) -> None:
        """A new report may answer expectations of its entity."""
        for expectation in tuple(self._expecting.get(entity.id, ())):
            expectation.reported(entity)

    def on_availability(self, entity: Entity) -> None:
        """An entity that went offline may answer expectations of its entity."""
        for expectation in tuple(self._expecting.get(entity.id, ())):
            expectation.went_offline(entity)

    def _forget(self, expectation: Expectation[Any]) -> None:
        for entity_id in expectation.entity_ids:
            expecting = self._expecting.get(entity_id, [])
            if expectation in expecting:
                expecting.remove(expectation)
            if not expecting:
                self._expecting.pop(entity_id, None)
