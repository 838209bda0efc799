"""Background tasks owned by a long-lived object: run in its TaskGroup, cancelled and awaited when it stops."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

__all__ = ["RECANCEL_SECONDS", "TaskOwner", "stop_tasks"]

T = TypeVar("T")
RECANCEL_SECONDS = 0.25
"""How long a cancelled task has to end before it is cancelled again."""


async def stop_tasks(tasks: Collection[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until each has ended, cancelling again any that swallowed the cancellation.

    One cancel is not always enough: Python 3.11's ``asyncio.wait_for`` (aiomqtt waits for every acknowledgement
    with it) returns the result instead of raising when the cancellation lands as the awaited future completes, and
    the task then goes on as if never cancelled (a gateway stopping right after it started hung for ever on it).
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)


class TaskOwner:
    """``async with TaskOwner() as tasks: tasks.start(coro, name)``; leaving cancels every task and waits for it."""

    def __init__(self) -> None:
        self._group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    def start(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """Run ``coro`` as a named task of the group; an error in it cancels the others and surfaces on exit."""
        if self._group is None:
            coro.close()
            raise RuntimeError(f"cannot start {name}: not running")
        task = self._group.create_task(coro, name=name)
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)
        return task

    async def __aenter__(self) -> Self:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        group, self._group = self._group, None
        if group is None:
            return
        try:
            await stop_tasks(list(self._tasks))
        finally:
            # Our own tasks, cancelled: not the caller's exception, which would make the group re-raise a
            # CancelledError and skip the caller's own shutdown; that exception propagates from the caller anyway.
            await group.__aexit__(None, None, None)
