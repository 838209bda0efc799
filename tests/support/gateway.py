"""The shape of the ``make_gateway`` fixture, for tests and harnesses that take it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from gateway.app import Gateway

__all__ = ["GatewayFactory"]

GatewayFactory = Callable[..., contextlib.AbstractAsyncContextManager[Gateway]]
