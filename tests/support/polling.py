"""Waiting for a condition in a test: poll it, fail the test with what was awaited after a timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

__all__ = ["eventually", "until"]


async def eventually(check: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``check`` until it holds; fail the test with ``what`` after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout} s waiting for {what}")


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll an async ``check`` until it holds; fail the test with ``what`` after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout} s waiting for {what}")
