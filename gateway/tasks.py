"""Background tasks owned by a long-lived object: run in its TaskGroup, cancelled and awaited when it stops."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

__all__ = ["TaskOwner"]

T = TypeVar("T")


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
        for task in list(self._tasks):
            task.cancel()
        # Our own tasks, cancelled: not the caller's exception, which would make the group re-raise a
        # CancelledError and skip the caller's own shutdown; that exception propagates from the caller anyway.
        await group.__aexit__(None, None, None)
