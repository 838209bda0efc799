"""Live state and availability changes and queued reminders for one unit, as Server-Sent Events."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from ..building import BuildingService
from ..checks import Notification
from ..clock import Clock
from ..core.entity import Entity
from .problems import ProblemError
from .views import entity_out

__all__ = ["StreamHub", "Subscriber"]

QUEUE_SIZE = 256


@dataclass(eq=False, slots=True)
class Subscriber:
    """One open stream: a bounded queue of frames; None ends it."""

    unit_id: str
    account_id: str
    session_id: str
    source: str = ""
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    lagged: bool = False


class StreamHub:
    """Fans entity changes out to the open streams of the unit the device is bound to (a registry listener), and
    the unit's reminders as they are queued."""

    def __init__(
        self,
        building: BuildingService,
        clock: Clock,
        stale_after: timedelta,
        keepalive: float,
        *,
        per_account: int = 4,
        per_source: int = 32,
    ) -> None:
        self._building = building
        self._per_account = per_account
        self._per_source = per_source
        self._clock = clock
        self._stale_after = stale_after
        self.keepalive = keepalive
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._ids = itertools.count(1)

    # --- EntityListener -----------------------------------------------------------------------------

    def on_state(self, entity: Entity) -> None:
        """Send the new state to the unit's streams."""
        self._publish(entity, "state")

    def on_availability(self, entity: Entity) -> None:
        """Send the availability change to the unit's streams."""
        self._publish(entity, "availability")

    def notify(self, note: Notification) -> None:
        """Send a just-queued reminder to its unit's streams (the same body as ``GET /me/notifications``)."""
        subscribers = self._subscribers.get(note.unit_id)
        if not subscribers:
            return
        frame = _frame(next(self._ids), "notification", note.model_dump(mode="json"))
        for sub in subscribers:
            self._put(sub, frame)

    # --- streams ------------------------------------------------------------------------------------

    def subscribe(self, unit_id: str, account_id: str, session_id: str, source: str = "") -> Subscriber:
        """Open a stream for a unit; 429 ``too_many_streams`` when the account or the source address (``""``:
        not counted) already holds its share."""
        every = [sub for subs in self._subscribers.values() for sub in subs]
        if sum(sub.account_id == account_id for sub in every) >= self._per_account:
            raise ProblemError(
                429,
                "too_many_streams",
                f"an account may hold {self._per_account} streams at once",
                limit=self._per_account,
            )
        if source and sum(sub.source == source for sub in every) >= self._per_source:
            raise ProblemError(
                429,
                "too_many_streams",
                f"one address may hold {self._per_source} streams at once",
                limit=self._per_source,
            )
        subscriber = Subscriber(unit_id, account_id, session_id, source)
        self._subscribers.setdefault(unit_id, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget a stream."""
        subs = self._subscribers.get(subscriber.unit_id)
        if subs is not None:
            subs.discard(subscriber)
            if not subs:
                del self._subscribers[subscriber.unit_id]

    def close_account(self, account_id: str, session_id: str | None = None) -> None:
        """End an account's streams (or one session's) at once, e.g. on revocation or logout."""
        for subs in self._subscribers.values():
            for sub in subs:
                if sub.account_id == account_id and session_id in (None, sub.session_id):
                    self._end(sub)

    def close_all(self) -> None:
        """End every stream (shutdown)."""
        for subs in self._subscribers.values():
            for sub in subs:
                self._end(sub)

    def open_streams(self) -> int:
        """How many streams are open."""
        return sum(len(s) for s in self._subscribers.values())

    async def frames(self, subscriber: Subscriber, still_valid: Callable[[], Awaitable[bool]]) -> AsyncIterator[bytes]:
        """SSE frames for one stream: ``ready``, then changes, with comment keepalives, until it is ended.

        ``still_valid`` is asked at each keepalive, so a session that expires while streaming ends the stream.
        """
        try:
            yield _frame(next(self._ids), "ready", {"unit_id": subscriber.unit_id})
            while True:
                try:
                    # Not asyncio.wait_for: on 3.11 it can swallow a cancellation that lands as a frame arrives.
                    async with asyncio.timeout(self.keepalive):
                        frame = await subscriber.queue.get()
                except TimeoutError:
                    if not await still_valid():
                        return
                    yield b": keepalive\n\n"
                    continue
                if frame is None:
                    return
                yield frame
        finally:
            self.unsubscribe(subscriber)

    def _publish(self, entity: Entity, event: str) -> None:
        unit_id = self._building.unit_of_device(entity.device_id)
        if unit_id is None or unit_id not in self._subscribers:
            return
        view = entity_out(entity, self._clock.now(), self._stale_after)
        frame = _frame(next(self._ids), event, json.loads(view.model_dump_json()))
        for sub in self._subscribers[unit_id]:
            self._put(sub, frame)

    def _put(self, sub: Subscriber, frame: bytes) -> None:
        if sub.queue.full():
            # A slow reader loses its oldest changes, and is told so once, rather than stalling everyone.
            sub.queue.get_nowait()
            if not sub.lagged:
                sub.lagged = True
                sub.queue.get_nowait()
                sub.queue.put_nowait(
                    _frame(next(self._ids), "lagged", {"detail": "changes were dropped; fetch the devices again"})
                )
        sub.queue.put_nowait(frame)

    def _end(self, sub: Subscriber) -> None:
        if sub.queue.full():
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)


def _frame(event_id: int, event: str, data: object) -> bytes:
    return f"id: {event_id}\nevent: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
