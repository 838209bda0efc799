"""Serves the API with uvicorn inside the gateway's event loop, as an async context manager."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from types import TracebackType
from typing import Self

import uvicorn
from fastapi import FastAPI

from ..config import ApiSettings
from ..errors import ConfigError
from .connections import ConnectionLimits, limited_protocol

__all__ = ["ApiServer"]

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    # uvicorn's main loop wakes ten times a second to look at ``should_exit`` (the Date header changes once a
    # second): the idle gateway's most frequent timer. Here it wakes once a second, and at once when told to stop.
    def __init__(self, config: uvicorn.Config) -> None:
        self._exit = asyncio.Event()
        super().__init__(config)

    @property
    def should_exit(self) -> bool:
        return self._exit.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value:
            self._exit.set()
        else:
            self._exit.clear()

    async def main_loop(self) -> None:
        counter = 0  # on_tick refreshes the Date header when the counter is a multiple of 10 (uvicorn's tenths)
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864_000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._exit.wait()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The gateway's own command line owns SIGINT/SIGTERM and stops everything in order.
        yield


class ApiServer:
    """Listens on ``host:port`` (0: a free port; see ``port`` once started) until the context exits, within the
    settings' connection limits."""

    def __init__(self, app: FastAPI, settings: ApiSettings) -> None:
        self._app = app
        self._settings = settings
        self.host = settings.host
        self.port = settings.port
        self.limits = ConnectionLimits(
            max_head_bytes=settings.max_head_bytes,
            max_headers=settings.max_headers,
            head_timeout=settings.head_timeout_seconds,
            per_source=settings.max_connections_per_source,
        )
        self._server: _Server | None = None
        self._tasks: asyncio.TaskGroup | None = None

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        return f"http://{self.host}:{self.port}"

    async def __aenter__(self) -> Self:
        # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when the listening
        # socket says TCP; without it Nagle holds each response's body for the client's delayed ACK (~40 ms).
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"cannot listen on {self.host}:{self.port}: {exc}", field="api_port") from exc
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            lifespan="off",
            # uvicorn's httptools protocol (a declared dependency: never a silent fall-back to the slower h11),
            # with what uvicorn has no setting for: the head's size, header count and read time, per-source caps.
            http=limited_protocol(self.limits),
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=3,
            server_header=False,
            # No proxy in front: X-Forwarded-For from a local client must not rewrite who the caller is.
            proxy_headers=False,
            limit_concurrency=self._settings.max_connections,  # beyond it: 503 (each source has a smaller share)
            timeout_keep_alive=self._settings.keepalive_timeout_seconds,  # armed after each response
        )
        self._server = _Server(config)
        self._tasks = asyncio.TaskGroup()
        await self._tasks.__aenter__()
        task = self._tasks.create_task(self._serve(sock), name="api-server")
        while not self._server.started and not task.done():
            await asyncio.sleep(0.01)
        if task.done():
            await self._tasks.__aexit__(None, None, None)  # re-raises what stopped the server
            raise ConfigError(f"the API server did not start on {self.url}", field="api_port")
        log.info("API listening", extra={"url": self.url})
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None and self._tasks is not None
        self._server.should_exit = True
        await self._tasks.__aexit__(None, None, None)

    async def _serve(self, sock: socket.socket) -> None:
        assert self._server is not None
        try:
            await self._server.serve(sockets=[sock])
        finally:
            sock.close()
