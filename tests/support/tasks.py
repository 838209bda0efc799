"""Which asyncio tasks a test left behind, for the autouse guard in conftest.py."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["describe", "left_behind"]


async def left_behind(grace: float = 2.0) -> list[asyncio.Task[Any]]:
    """Cancel every task still running after ``grace`` seconds but the caller; return those that are not amqtt's."""
    current = asyncio.current_task()
    deadline = asyncio.get_running_loop().time() + grace
    while True:
        left = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        # amqtt's broker finishes closing client sessions shortly after shutdown(); give it a moment.
        if not left or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.02)
    ours = [t for t in left if not _is_amqtt(t)]
    for task in left:
        task.cancel()
    return ours


def describe(task: asyncio.Task[Any]) -> tuple[str, str]:
    """A task's name and where its coroutine is defined."""
    code = getattr(task.get_coro(), "cr_code", None)
    return task.get_name(), "?" if code is None else f"{code.co_qualname} ({code.co_filename}:{code.co_firstlineno})"


def _is_amqtt(task: asyncio.Task[Any]) -> bool:
    coro = task.get_coro()
    code = getattr(coro, "cr_code", None)
    if code is None:
        return False
    if "amqtt" in code.co_filename:
        return True
    # amqtt retries in-flight messages of a resumed session in tasks running asyncio.wait_for(…, 10): judge such a
    # task by the task it waits for (an unnamed "Task-N" left behind once in a CI run of the SIGKILL test).
    frame = getattr(coro, "cr_frame", None)
    inner = frame.f_locals.get("fut") if code.co_name == "wait_for" and frame is not None else None
    return isinstance(inner, asyncio.Task) and inner is not task and _is_amqtt(inner)
