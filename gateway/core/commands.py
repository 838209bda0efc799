"""Commands: validate against the device's kind and limits, publish QoS 1, confirm from reported state."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import Any

import sqlite_utils

from devices import Command, OutcomeStatus

from ..clock import Clock
from ..errors import BrokerUnavailable, CommandRejected, GatewayError, StorageError, UnknownEntity
from ..mqtt.transport import MqttLink
from ..storage import CommandRow, Database
from ..storage.records import get_command, insert_command, recent_commands, transaction, update_command
from .entity import Entity
from .expect import Expectation
from .registry import Registry
from .typed_command import TypedCommand, type_command

__all__ = ["INTERRUPTED", "CommandResult", "CommandService", "CommandStatus"]

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted"
"""The reason of a command found pending at start: the previous run died before recording its outcome."""


class CommandStatus(StrEnum):
    """Where a command ended up."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    TIMED_OUT = "timed_out"
    REFUSED = "refused"  # the device answered, and its answer was no (e.g. the lock jammed)
    REJECTED = "rejected"  # refused before anything was published
    FAILED = "failed"  # could not be delivered (broker down, device went offline meanwhile)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The outcome of one command, as recorded."""

    id: str
    entity_id: str
    actor: str
    command: dict[str, Any]
    status: CommandStatus
    reason: str | None
    detail: str | None
    created_at: datetime
    finished_at: datetime | None
    field: str | None = None  # the command field a rejection is about

    @property
    def latency_ms(self) -> float | None:
        """Milliseconds from request to outcome."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.created_at).total_seconds() * 1000


_Outcome = tuple[str, str | None, str | None, str]  # status, reason, detail, finished_at (ISO 8601)


@dataclass(slots=True)
class _Job:
    id: str
    entity: Entity
    actor: str
    command: dict[str, Any]
    created: datetime


class CommandService:
    """Sends commands and decides their outcome from what the device reports back."""

    def __init__(
        self,
        registry: Registry,
        link: MqttLink,
        db: Database,
        clock: Clock,
        timeout: float,
        ensure_stored: Callable[[str], Awaitable[None]],
    ) -> None:
        self._registry = registry
        self._ensure_stored = ensure_stored
        self._link = link
        self._db = db
        self._clock = clock
        self.timeout = timeout
        # Outcomes answered and not written yet: command id -> (status, reason, detail, finished_at). The next
        # command's record or the persister's next flush (write_outcomes) writes them; until then get and history
        # show them from here.
        self._unwritten: dict[str, _Outcome] = {}
        self._refused: StorageError | None = None  # why the last write of outcomes failed (logged once)
        # Devices with a command published or about to be, and how many: a firmware update waits for none.
        self._pending: dict[str, int] = {}

    def pending(self, device_id: str) -> bool:
        """Whether a command for one of the device's entities is recorded and has no outcome yet."""
        return self._pending.get(device_id, 0) > 0

    async def execute(
        self,
        entity_id: str,
        command: Command | Mapping[str, Any],
        *,
        actor: str,
        timeout: float | None = None,
        command_id: str | None = None,
    ) -> CommandResult:
        """Look the entity up, type the command for it and ``send`` it; every outcome is recorded with ``actor``.

        Raises UnknownEntity for an unknown id; every other outcome, rejections included, is returned.
        ``command_id`` lets a caller hand out the id before the outcome is known.
        """
        entity = self._registry.get(entity_id)
        if entity is None:
            raise UnknownEntity(f"no device entity {entity_id!r}")
        try:
            typed = type_command(entity, command)
        except CommandRejected as exc:
            return await self.reject(entity, command, exc, actor=actor, command_id=command_id)
        return await self.send(typed, actor=actor, timeout=timeout, command_id=command_id)

    async def reject(
        self,
        entity: Entity,
        command: Command | Mapping[str, Any],
        error: GatewayError,
        *,
        actor: str,
        command_id: str | None = None,
    ) -> CommandResult:
        """Record a command that ``type_command`` refused, as asked, with its reason (nothing is published)."""
        raw = dict(command) if isinstance(command, Mapping) else command.model_dump(exclude_none=True)
        job = _Job(command_id or uuid.uuid4().hex, entity, actor, raw, self._clock.now())
        return await self._refuse(job, error)

    async def send(
        self, typed: TypedCommand, *, actor: str, timeout: float | None = None, command_id: str | None = None
    ) -> CommandResult:
        """Publish a typed command and wait for the device to confirm; every outcome is recorded with ``actor``
        (an offline device or a broker that is down is refused before anything is published)."""
        entity = typed.entity
        job = _Job(command_id or uuid.uuid4().hex, entity, actor, typed.body, self._clock.now())
        try:
            _check_not_held(entity)
            # The link first: with the broker down every device looks offline, and the cause is the broker.
            if not self._link.connected:
                raise BrokerUnavailable("the broker link is down")
            if entity.available is False:
                raise CommandRejected(f"{entity.name} is offline", code="device_offline")
        except GatewayError as exc:
            return await self._refuse(job, exc)
        # Recorded before publishing: a crash after the publish still leaves the command in the history.
        device_id = entity.device_id
        self._pending[device_id] = self._pending.get(device_id, 0) + 1
        try:
            await self._record(job)
            return await self._deliver(job, typed, timeout)
        finally:
            left = self._pending.pop(device_id) - 1
            if left:
                self._pending[device_id] = left

    async def _deliver(self, job: _Job, typed: TypedCommand, timeout: float | None) -> CommandResult:
        """Publish a recorded command and wait for its outcome, recording it."""
        entity, parsed, publishes = typed.entity, typed.command, typed.publishes
        # Expected before publishing: a device that answers at once must not answer too early to count.
        expected = self._registry.expect([entity.id], partial(_verdict, parsed), offline=_OFFLINE)
        # The PUBACK and the confirming state are read as they come (no read held: gateway.mqtt.hold).
        with self._link.expedite():
            try:
                try:
                    _check_not_held(entity)  # again: its config may have changed while the command was recorded
                    for publish in publishes:
                        await self._link.publish(publish.topic, publish.payload, qos=publish.qos, retain=False)
                except BrokerUnavailable as exc:
                    outcome: tuple[CommandStatus, str | None, str | None] = (CommandStatus.FAILED, exc.code, str(exc))
                except CommandRejected as exc:
                    outcome = (CommandStatus.REJECTED, exc.code, str(exc))
                else:
                    outcome = await _outcome(expected, timeout if timeout is not None else self.timeout)
            except asyncio.CancelledError:
                # Shutting down mid-command: the history says so instead of leaving it pending forever.
                self._finish(job, CommandStatus.FAILED, "gateway_stopping", "the gateway stopped before an outcome")
                raise
            finally:
                expected.close()
        return self._finish(job, *outcome)

    async def get(self, command_id: str) -> CommandRow | None:
        """One recorded command (with its outcome, even one not written yet)."""
        before = self._unwritten.get(command_id)
        row = await self._db.run(lambda db: get_command(db, command_id))
        return None if row is None else self._with_outcome(row, {command_id: before} if before else {})

    async def history(self, entity_id: str | None = None, limit: int = 50) -> list[CommandRow]:
        """The newest recorded commands (with their outcomes, even ones not written yet)."""
        before = dict(self._unwritten)
        rows = await self._db.run(lambda db: recent_commands(db, entity_id, limit))
        return [self._with_outcome(row, before) for row in rows]

    async def write_outcomes(self) -> bool:
        """Write the outcomes answered since the last call (a ``Persister.also_write`` writer, so one ordered write
        per flush, not one per command); whether there were any. StorageError (all kept) if the database refuses."""
        outcomes = dict(self._unwritten)
        if not outcomes:
            return False

        try:
            await self._db.run(partial(_update_outcomes, outcomes=outcomes))
        except StorageError as exc:
            if self._refused is None or self._refused.code != exc.code:
                # The outcomes happened: once published, the device may well have obeyed, and the resident was
                # answered. They stay shown from memory (get, history) and are written when the database takes
                # writes again, as device states are.
                log.error(  # noqa: TRY400 - the cause is the message; no traceback needed
                    "cannot record command outcomes; kept until the database takes writes: %s",
                    exc,
                    extra={"code": exc.code, "commands": sorted(outcomes)},
                )
            self._refused = exc
            raise
        self._written(outcomes)
        if self._refused is not None:
            self._refused = None
            log.info("command outcomes recorded again", extra={"commands": sorted(outcomes)})
        return True

    # --- internals --------------------------------------------------------------------------------

    async def _refuse(self, job: _Job, exc: GatewayError) -> CommandResult:
        status = CommandStatus.FAILED if isinstance(exc, BrokerUnavailable) else CommandStatus.REJECTED
        detail = f"{exc} (field: {exc.field})" if exc.field else str(exc)
        await self._record(job)
        return self._finish(job, status, exc.code, detail, field=exc.field)

    def _written(self, outcomes: Mapping[str, _Outcome]) -> None:
        for command_id in outcomes:
            self._unwritten.pop(command_id, None)

    def _with_outcome(self, row: CommandRow, before: Mapping[str, _Outcome]) -> CommandRow:
        # ``before``: the outcomes not written when the read was asked for; one written meanwhile (and so no longer
        # here) may not be in the row that read returned.
        outcome = self._unwritten.get(row.id) or before.get(row.id)
        if outcome is None:
            return row
        status, reason, detail, finished_at = outcome
        return dataclasses.replace(row, status=status, reason=reason, detail=detail, finished_at=finished_at)

    async def _record(self, job: _Job) -> None:
        row = CommandRow(
            job.id,
            job.entity.id,
            job.actor,
            json.dumps(job.command, default=str)[:4096],
            CommandStatus.PENDING,
            None,
            None,
            job.created.isoformat(),
            None,
        )
        # The command row references its entity, which the persister may not have written yet.
        await self._ensure_stored(job.entity.id)
        # The outcomes answered since the last write go in the same transaction: a trip the command makes anyway,
        # so that under a stream of commands each outcome is on disk by the next command, with no trip of its own.
        outcomes = dict(self._unwritten) if self._refused is None else {}

        def write(db: sqlite_utils.Database) -> None:
            with transaction(db):
                insert_command(db, row)
                _update_outcomes(db, outcomes)

        await self._db.run(write)
        self._written(outcomes)

    def _finish(
        self, job: _Job, status: CommandStatus, reason: str | None, detail: str | None, *, field: str | None = None
    ) -> CommandResult:
        finished = self._clock.now()
        # Not written here: a second trip to the writer thread would make every answer wait behind whatever the
        # writer is doing. The command's row is recorded already (pending); its outcome is shown from memory until
        # the next command's record or the persister's next flush (write_outcomes, every state_flush_interval)
        # writes it, whichever comes first; a clean stop flushes. A crash before that leaves the row pending, and
        # the next start ends it as interrupted.
        self._unwritten[job.id] = (str(status), reason, detail, finished.isoformat())
        self._registry.record_event(
            job.entity.id,
            "command",
            {"command_id": job.id, "actor": job.actor, "command": job.command, "status": str(status), "reason": reason},
        )
        log.info(
            "command %s",
            status,
            extra={"command_id": job.id, "entity": job.entity.id, "actor": job.actor, "reason": reason},
        )
        return CommandResult(
            job.id, job.entity.id, job.actor, job.command, status, reason, detail, job.created, finished, field
        )


_Verdict = tuple[CommandStatus, str | None]
_OFFLINE: _Verdict = (CommandStatus.FAILED, "device_offline")  # failed at once rather than at the timeout
_DETAILS = {
    CommandStatus.REFUSED: "the device reported it could not do it",
    CommandStatus.FAILED: "the device went offline before confirming",
}


def _update_outcomes(db: sqlite_utils.Database, outcomes: Mapping[str, _Outcome]) -> None:
    """Record ``outcomes`` (by command id), in one transaction."""
    with transaction(db):
        for command_id, (status, reason, detail, finished_at) in outcomes.items():
            update_command(db, command_id, status, reason, detail, finished_at)


def _check_not_held(entity: Entity) -> None:
    """CommandRejected (``device_held``) while the entity's wiring differs from the pinned one."""
    if entity.held:
        raise CommandRejected(
            f"{entity.name} changed how it is wired since it was bound; staff must approve the change first",
            code="device_held",
        )


def _verdict(command: Command, entity: Entity) -> _Verdict | None:
    """What the entity's newly reported state says of ``command``: confirmed, refused, or nothing yet."""
    if entity.state is None:
        return None
    verdict = entity.config.outcome(command, entity.state)
    if verdict.status is OutcomeStatus.CONFIRMED:
        return CommandStatus.CONFIRMED, None
    if verdict.status is OutcomeStatus.REFUSED:
        return CommandStatus.REFUSED, verdict.reason
    return None


async def _outcome(expected: Expectation[_Verdict], timeout: float) -> tuple[CommandStatus, str | None, str | None]:
    try:
        async with asyncio.timeout(timeout):
            [(status, reason)] = (await expected.wait()).values()  # one entity, one verdict
    except TimeoutError:
        return CommandStatus.TIMED_OUT, "command_timeout", f"no confirming state within {timeout:g} s"
    return status, reason, _DETAILS.get(status)
