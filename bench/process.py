"""Child processes of the bench: output to log files, bounded waits, and a sure stop on the way out."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import re
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = ["REPO", "TCP_NODELAY", "BenchError", "Child", "wait_port"]

REPO = Path(__file__).resolve().parent.parent
TCP_NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
"""The socket option every bench client sets: without it Nagle holds small messages back."""
_PR_SET_PDEATHSIG = 1
_POLL = 0.02


class BenchError(RuntimeError):
    """The bench could not measure something (an error, as opposed to a missed target)."""


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the bench dies, so nothing outlives a killed bench (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


async def wait_port(host: str, port: int, timeout: float) -> None:
    """Wait until ``host:port`` accepts TCP connections; raise BenchError after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    _, writer = await asyncio.open_connection(host, port)
                except OSError:
                    await asyncio.sleep(_POLL)
                    continue
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                return
    except TimeoutError as exc:
        raise BenchError(f"nothing listens on {host}:{port} after {timeout:g} s") from exc


def port_open(host: str, port: int) -> bool:
    """Whether ``host:port`` accepts a TCP connection right now."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


class Child:
    """One child process; stdout and stderr go to ``<logdir>/<name>.out`` and ``.err`` unless ``interactive``.

    An interactive child has its stdin and stdout piped: ``send`` writes a line, ``event`` reads one JSON line.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        logdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        interactive: bool = False,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.stdout_path = logdir / f"{name}.out"
        self.stderr_path = logdir / f"{name}.err"
        self._env = dict(env) if env is not None else None
        self._interactive = interactive
        self._proc: asyncio.subprocess.Process | None = None
        self._files: list[IO[bytes]] = []

    @property
    def pid(self) -> int:
        """The running child's process id."""
        if self._proc is None:
            raise BenchError(f"{self.name} is not running")
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        """The exit status once it has ended, else None."""
        return None if self._proc is None else self._proc.returncode

    async def start(self) -> None:
        """Spawn the process (in its own session, so a Ctrl-C reaches only the bench, which stops it)."""
        if self._proc is not None:
            raise BenchError(f"{self.name} is already running")
        err = self.stderr_path.open("wb")
        self._files.append(err)
        out: int | IO[bytes]
        if self._interactive:
            out = asyncio.subprocess.PIPE
        else:
            out = self.stdout_path.open("wb")
            self._files.append(out)
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE if self._interactive else asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=REPO,
            env=self._env,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )

    async def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds; return its exit status."""
        proc, self._proc = self._proc, None
        try:
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    async with asyncio.timeout(timeout):
                        await proc.wait()
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
            return None if proc is None else proc.returncode
        finally:
            self._close_files()

    async def kill(self) -> None:
        """SIGKILL and reap it (an abrupt end, like a machine going away)."""
        proc, self._proc = self._proc, None
        try:
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        finally:
            self._close_files()

    def _close_files(self) -> None:
        for handle in self._files:
            handle.close()
        self._files.clear()

    def check_alive(self) -> None:
        """Raise BenchError (with the end of its stderr) if the process has ended."""
        if self._proc is None or self._proc.returncode is not None:
            code = None if self._proc is None else self._proc.returncode
            raise BenchError(f"{self.name} ended (exit status {code}):\n{self.tail()}")

    def tail(self, lines: int = 15) -> str:
        """The last lines of its stderr log."""
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def wait_output(self, pattern: str, timeout: float, *, stderr: bool = False) -> re.Match[str]:
        """Wait until a line of its stdout (or stderr) log matches ``pattern``; raise BenchError on timeout or exit."""
        path = self.stderr_path if stderr else self.stdout_path
        regex = re.compile(pattern)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    with contextlib.suppress(OSError):
                        match = regex.search(path.read_text(errors="replace"))
                        if match is not None:
                            return match
                    self.check_alive()
                    await asyncio.sleep(_POLL * 2)
        except TimeoutError as exc:
            raise BenchError(f"{self.name}: no {pattern!r} after {timeout:g} s:\n{self.tail()}") from exc

    async def send(self, line: str) -> None:
        """Write one line to an interactive child's stdin."""
        if self._proc is None or self._proc.stdin is None:
            raise BenchError(f"{self.name} is not interactive or not running")
        self._proc.stdin.write(line.encode() + b"\n")
        await self._proc.stdin.drain()

    async def event(self, timeout: float) -> dict[str, Any]:
        """Read the next JSON line an interactive child prints; raise BenchError on timeout, exit or garbage."""
        if self._proc is None or self._proc.stdout is None:
            raise BenchError(f"{self.name} is not interactive or not running")
        try:
            async with asyncio.timeout(timeout):
                line = await self._proc.stdout.readline()
        except TimeoutError as exc:
            raise BenchError(f"{self.name}: no answer within {timeout:g} s:\n{self.tail()}") from exc
        if not line:
            await self._proc.wait()
            self.check_alive()
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise BenchError(f"{self.name}: unexpected output {line[:200]!r}") from exc
        if not isinstance(value, dict):
            raise BenchError(f"{self.name}: unexpected output {line[:200]!r}")
        return value


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without any GATEWAY_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(extra)
    return env
