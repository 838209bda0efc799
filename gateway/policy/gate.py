"""The command gate: the one way a command acting for a resident goes out, on a policy decision, in a task of its
own (so a client that disconnects or polls never cuts one short)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from datetime import timedelta
from types import TracebackType
from typing import Self

from ..clock import Clock
from ..core.commands import CommandResult, CommandService
from ..core.typed_command import TypedCommand
from ..errors import GatewayError, PolicyRefused
from ..tasks import stop_tasks
from .models import Allowed, RefusalCode

__all__ = ["MAX_DECISION_AGE", "CommandGate"]

log = logging.getLogger(__name__)
_FAILURES_KEPT = 1000
MAX_DECISION_AGE = timedelta(seconds=5)
"""A decision older than this is refused (``decision_stale``): the chain may have changed since; decide again."""


class CommandGate:
    """Owns a TaskGroup with one named task per command in flight; in-flight ids remember their unit."""

    def __init__(self, commands: CommandService, clock: Clock) -> None:
        self._commands = commands
        self._clock = clock
        self._tasks: asyncio.TaskGroup | None = None
        self._inflight: dict[str, tuple[str, asyncio.Task[None]]] = {}
        self._actors: dict[str, str] = {}  # in-flight command id -> who asked
        # Commands that failed before they were recorded (a full or read-only database): id -> (unit, error), so
        # that polling a 202's Location says why instead of 404. The newest ones only.
        self._failures: OrderedDict[str, tuple[str, GatewayError]] = OrderedDict()

    async def __aenter__(self) -> Self:
        self._tasks = asyncio.TaskGroup()
        await self._tasks.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._tasks is not None
        try:
            # The command service records each as failed (gateway_stopping).
            await stop_tasks([task for _, task in self._inflight.values()])
        finally:
            await self._tasks.__aexit__(None, None, None)

    def submit(self, decision: Allowed, *, timeout: float | None) -> tuple[str, asyncio.Future[CommandResult]]:
        """Start exactly the command ``decision`` allowed, for its account; return the command's id and a future
        of its outcome at once. PolicyRefused for a decision that is stale or was used already."""
        assert self._tasks is not None
        if not isinstance(decision, Allowed):  # only an Allowed from PolicyService.authorize opens this door
            raise TypeError(f"submit needs the Allowed from PolicyService.authorize, not {type(decision).__name__}")
        if self._clock.now() - decision.at > MAX_DECISION_AGE:
            raise PolicyRefused(
                "the decision for this command is too old; decide again",
                code=RefusalCode.DECISION_STALE,
                link="decision",
                extra={"decided_at": decision.at.isoformat()},
            )
        if not decision.spend():
            raise PolicyRefused(
                "a command went out on this decision already; decide again",
                code=RefusalCode.DECISION_SPENT,
                link="decision",
            )
        request = decision.request
        command = request.command.typed
        actor = request.account.actor
        unit_id = request.device.unit_id
        assert unit_id is not None  # decide allows only devices of the account's own unit
        command_id = uuid.uuid4().hex
        outcome: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        # An outcome nobody waits for (202 and poll) must not be reported as never retrieved.
        outcome.add_done_callback(lambda f: None if f.cancelled() else f.exception())
        task = self._tasks.create_task(
            self._run(command_id, command, actor, timeout, outcome), name=f"command-{command_id[:8]}"
        )
        self._inflight[command_id] = (unit_id, task)
        self._actors[command_id] = actor
        return command_id, outcome

    async def settle(self, actor: str) -> None:
        """Wait until no command of ``actor`` is in flight (each ends by its own timeout at the latest)."""
        tasks = [self._inflight[c][1] for c, a in tuple(self._actors.items()) if a == actor and c in self._inflight]
        if tasks:
            await asyncio.wait(tasks)

    def failure_of(self, command_id: str) -> tuple[str, GatewayError] | None:
        """The unit and error of a command that failed before it was recorded."""
        return self._failures.get(command_id)

    def unit_of(self, command_id: str) -> str | None:
        """The unit of a command still in flight."""
        entry = self._inflight.get(command_id)
        return None if entry is None else entry[0]

    async def _run(
        self,
        command_id: str,
        command: TypedCommand,
        actor: str,
        timeout: float | None,
        outcome: asyncio.Future[CommandResult],
    ) -> None:
        try:
            result = await self._commands.send(command, actor=actor, timeout=timeout, command_id=command_id)
        except asyncio.CancelledError:
            outcome.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to whoever waits; a failed command must not end the group
            log.warning("command failed: %s", exc, extra={"command_id": command_id})
            if isinstance(exc, GatewayError) and command_id in self._inflight:
                self._failures[command_id] = (self._inflight[command_id][0], exc)
                while len(self._failures) > _FAILURES_KEPT:
                    self._failures.popitem(last=False)
            outcome.set_exception(exc)
        else:
            outcome.set_result(result)
        finally:
            self._inflight.pop(command_id, None)
            self._actors.pop(command_id, None)
