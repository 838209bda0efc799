"""``gateway run`` as a process in a test: its stdout read line by line, its log in a file of its own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ADDRESS_LINES", "OPERATOR", "PASSWORD", "Run", "gateway_run"]

OPERATOR, PASSWORD = "ops", "a long operator passphrase"
ADDRESS_LINES = re.compile(
    r"gateway running: broker (mqtt://\S+), database (\S+)\n"
    r"API:     (http://\S+)/api/v1\n"
    r"docs:    \3/docs\n"
    r"console: \3/console\n"
)


@dataclass
class Run:
    """A ``gateway run`` process, its stdout so far, and the file its log goes to."""

    proc: asyncio.subprocess.Process
    log_path: Path
    out: str = ""

    async def line(self, timeout: float = 30) -> str:
        """The next line on stdout ('' once it ended)."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            text = (await self.proc.stdout.readline()).decode()
        self.out += text
        return text

    async def until(self, prefix: str, timeout: float = 30) -> str:
        """Read stdout up to the line starting with ``prefix``, and return it."""
        async with asyncio.timeout(timeout):
            while not (text := await self.line()).startswith(prefix):
                assert text, f"the gateway ended before {prefix!r}:\n{self.out}\n{self.log()}"
        return text

    @property
    def broker(self) -> tuple[str, int]:
        """The broker's host and port as printed."""
        match = re.search(r"gateway running: broker mqtts?://(\S+):(\d+),", self.out)
        assert match, self.out
        return match.group(1), int(match.group(2))

    @property
    def api(self) -> str:
        """The API's base URL as printed."""
        match = ADDRESS_LINES.search(self.out)
        assert match, self.out
        return match.group(3)

    def log(self) -> str:
        """Everything logged so far."""
        return self.log_path.read_text(errors="replace")

    async def stop(self) -> None:
        """SIGINT, as Ctrl-C; it must end cleanly."""
        self.proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            out, _ = await self.proc.communicate()
        self.out += out.decode()
        assert self.proc.returncode == 0, self.log()


@contextlib.asynccontextmanager
async def gateway_run(
    tmp_path: Path, args: Sequence[str], *, until: str | None = "gateway running"
) -> AsyncIterator[Run]:
    """``gateway run`` with ``args``, its log in a file of its own; killed if the test leaves it running."""
    log_path = tmp_path / f"gateway-{uuid.uuid4().hex[:6]}.log"
    with log_path.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "--log-format", "json", "run", *args,
            stdout=asyncio.subprocess.PIPE, stderr=log_file, stdin=asyncio.subprocess.DEVNULL,
            env={**os.environ, "GATEWAY_OPERATOR_USERNAME": OPERATOR, "GATEWAY_OPERATOR_PASSWORD": PASSWORD},
        )  # fmt: skip
    run = Run(proc, log_path)
    try:
        if until is not None:
            await run.until(until)
        yield run
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
