"""Live state and availability changes and queued reminders for one unit (a resident's stream) or for every unit
of a property (the console's stream, each change naming its unit), as Server-Sent Events."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi.responses import StreamingResponse

from ..building import BuildingService
from ..checks import Notification
from ..clock import Clock
from ..core.entity import Entity
from ..errors import NotFound
from .problems import ProblemError
from .views import entity_out

__all__ = ["StreamHub", "Subscriber"]

QUEUE_SIZE = 256


@dataclass(eq=False, slots=True)
class Subscriber:
    """One open stream (of a unit, or with ``whole_property`` of the property whose id is ``unit_id``): a bounded
    queue of frames; None ends it."""

    unit_id: str
    account_id: str
    session_id: str
    source: str = ""
    whole_property: bool = False
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
        self._properties: dict[str, set[Subscriber]] = {}
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
        subscribers = self._subscribers.get(note.unit_id, set()) | self._property_streams(note.unit_id)
        if not subscribers:
            return
        frame = _frame(next(self._ids), "notification", note.model_dump(mode="json"))
        for sub in subscribers:
            self._put(sub, frame)

    def _property_streams(self, unit_id: str) -> set[Subscriber]:
        if not self._properties:
            return set()
        try:
            property_id = self._building.unit(unit_id).property_id
        except NotFound:
            return set()  # a unit removed meanwhile
        return self._properties.get(property_id, set())

    # --- streams ------------------------------------------------------------------------------------

    def subscribe(
        self, unit_id: str, account_id: str, session_id: str, source: str = "", *, whole_property: bool = False
    ) -> Subscriber:
        """Open a stream for a unit (``whole_property``: for every unit of the property ``unit_id``); 429
        ``too_many_streams`` when the account or the source address (``""``: not counted) already holds its share."""
        every = self._every()
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
        subscriber = Subscriber(unit_id, account_id, session_id, source, whole_property)
        self._table(subscriber).setdefault(unit_id, set()).add(subscriber)
        return subscriber

    def _table(self, subscriber: Subscriber) -> dict[str, set[Subscriber]]:
        return self._properties if subscriber.whole_property else self._subscribers

    def _every(self) -> list[Subscriber]:
        return [sub for table in (self._subscribers, self._properties) for subs in table.values() for sub in subs]

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget a stream."""
        table = self._table(subscriber)
        subs = table.get(subscriber.unit_id)
        if subs is not None:
            subs.discard(subscriber)
            if not subs:
                del table[subscriber.unit_id]

    def close_account(self, account_id: str, session_id: str | None = None) -> None:
        """End an account's streams (or one session's) at once, e.g. on revocation or logout."""
        for sub in self._every():
            if sub.account_id == account_id and session_id in (None, sub.session_id):
                self._end(sub)

    def close_all(self) -> None:
        """End every stream (shutdown)."""
        for sub in self._every():
            self._end(sub)

    def open_streams(self) -> int:
        """How many streams are open."""
        return len(self._every())

    async def frames(self, subscriber: Subscriber, still_valid: Callable[[], Awaitable[bool]]) -> AsyncIterator[bytes]:
        """SSE frames for one stream: ``ready``, then changes, with comment keepalives, until it is ended.

        ``still_valid`` is asked at each keepalive, so a session that expires while streaming ends the stream.
        """
        try:
            scope = "property_id" if subscriber.whole_property else "unit_id"
            yield _frame(next(self._ids), "ready", {scope: subscriber.unit_id})
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

    def response(self, subscriber: Subscriber, still_valid: Callable[[], Awaitable[bool]]) -> StreamingResponse:
        """The HTTP answer that streams ``frames`` to one subscriber (never cached, never buffered by a proxy)."""
        return StreamingResponse(
            self.frames(subscriber, still_valid),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    def _publish(self, entity: Entity, event: str) -> None:
        unit_id = self._building.unit_of_device(entity.device_id)
        if unit_id is None:
            return
        units = self._subscribers.get(unit_id, set())
        properties = self._property_streams(unit_id)
        if not units and not properties:
            return
        data = json.loads(entity_out(entity, self._clock.now(), self._stale_after).model_dump_json())
        if units:
            frame = _frame(next(self._ids), event, data)
            for sub in units:
                self._put(sub, frame)
        if properties:
            frame = _frame(next(self._ids), event, {**data, "unit_id": unit_id})
            for sub in properties:
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
