"""Row shapes and the synchronous reads/writes the writer thread runs (sqlite-utils)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import sqlite_utils

from .rows import insert_row, insert_rows, select_all, select_one, update_row, upsert_rows
from .staging import EntityStateRow, append_events, append_reports, drop_reports
from .tx import transaction

__all__ = [
    "CommandRow",
    "DeviceOwnerRow",
    "DeviceRow",
    "EntityRow",
    "EntityStateRow",
    "EventRow",
    "fail_unfinished_commands",
    "finish_run",
    "get_command",
    "heartbeat_run",
    "insert_command",
    "load_device_owners",
    "load_entities",
    "parse_time",
    "recent_commands",
    "start_run",
    "transaction",
    "update_command",
    "write_batch",
    "write_device_owners",
]


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """A physical device as stored."""

    id: str
    name: str | None
    manufacturer: str | None
    model: str | None
    sw_version: str | None
    first_seen: str


@dataclass(frozen=True, slots=True)
class DeviceOwnerRow:
    """The broker credential (and its property) that first published a device, and so owns its id."""

    device_id: str
    credential_id: str
    property_id: str | None
    claimed_at: str


@dataclass(frozen=True, slots=True)
class EntityRow:
    """An entity's stored record: its accepted config and its last good state."""

    key: str
    device_id: str
    component: str
    kind: str
    unique_id: str | None
    name: str | None
    config: str
    discovered_at: str
    removed_at: str | None
    state: str | None
    state_at: str | None
    state_error: str | None
    state_error_at: str | None
    available: int | None
    availability_at: str | None
    last_seen: str | None


@dataclass(frozen=True, slots=True)
class CommandRow:
    """One command and its outcome, with who asked."""

    id: str
    entity_key: str
    actor: str
    command: str
    status: str
    reason: str | None
    detail: str | None
    created_at: str
    finished_at: str | None


class EventRow(NamedTuple):
    """Something that happened to an entity (availability, state, rejected payload); ``data`` is a JSON object,
    or its JSON text already serialised (a tuple in the INSERT's column order, so such a row goes to SQLite as is)."""

    at: str
    entity_key: str | None
    type: str
    data: Mapping[str, Any] | str


def parse_time(value: str | None) -> datetime | None:
    """A stored ISO 8601 timestamp (None stays None)."""
    return None if value is None else datetime.fromisoformat(value)


def write_batch(
    db: sqlite_utils.Database,
    devices: Sequence[DeviceRow],
    entities: Sequence[EntityRow],
    events: Sequence[EventRow],
    states: Sequence[EntityStateRow] = (),
) -> None:
    """Upsert devices and entities, append the reported columns of ``states`` (entities whose rows exist) and the
    events (``storage.staging``: merged in bulk later), in one transaction."""
    with transaction(db):
        for device in devices:
            db.conn.execute(
                "INSERT INTO devices (id, name, manufacturer, model, sw_version, first_seen) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET name=excluded.name, manufacturer=excluded.manufacturer, "
                "model=excluded.model, sw_version=excluded.sw_version",
                (device.id, device.name, device.manufacturer, device.model, device.sw_version, device.first_seen),
            )
        if entities:
            # A whole row carries the entity's latest reports: older appended ones must not be merged over it.
            drop_reports(db, [e.key for e in entities])
            # Removed entities first: they give up their unique_id, which a new entity in the same batch may take.
            ordered = sorted(entities, key=lambda e: e.removed_at is None)
            values = ([getattr(e, c) for c in _ENTITY_COLUMNS] for e in ordered)
            upsert_rows(db, "entities", "key", _ENTITY_COLUMNS, values)
        if states:
            # Only what a report changes, appended: the entity's row is written at the merge.
            append_reports(db, states)
        if events:
            append_events(db, (e if isinstance(e.data, str) else e._replace(data=json.dumps(e.data)) for e in events))


def load_entities(db: sqlite_utils.Database) -> list[EntityRow]:
    """Every entity ever discovered, removed ones included, with its latest reported columns (appended or merged)."""
    return [EntityRow(**row) for row in select_all(db, "SELECT * FROM current_entities")]


def load_device_owners(db: sqlite_utils.Database) -> list[DeviceOwnerRow]:
    """Every recorded device owner."""
    return [DeviceOwnerRow(**row) for row in select_all(db, "SELECT * FROM device_owners ORDER BY device_id")]


def write_device_owners(db: sqlite_utils.Database, rows: Sequence[DeviceOwnerRow]) -> None:
    """Record device owners; a device keeps its first owner (a second row for it changes nothing)."""
    with transaction(db):
        values = ([getattr(r, c) for c in _OWNER_COLUMNS] for r in rows)
        insert_rows(db, "device_owners", _OWNER_COLUMNS, values, or_ignore=True)


def insert_command(db: sqlite_utils.Database, row: CommandRow) -> None:
    """Record a new command before anything is published."""
    with transaction(db):
        insert_row(db, "commands", _asdict(row))


def update_command(
    db: sqlite_utils.Database, command_id: str, status: str, reason: str | None, detail: str | None, finished_at: str
) -> None:
    """Record a command's outcome."""
    with transaction(db):
        outcome = {"status": status, "reason": reason, "detail": detail, "finished_at": finished_at}
        update_row(db, "commands", "id", command_id, outcome)


def fail_unfinished_commands(db: sqlite_utils.Database, reason: str, detail: str, finished_at: str) -> list[str]:
    """End every command still ``pending`` as ``failed``; return their ids."""
    with transaction(db):
        ids = [str(r[0]) for r in db.execute("SELECT id FROM commands WHERE status = 'pending' ORDER BY rowid")]
        db.execute(
            "UPDATE commands SET status = 'failed', reason = ?, detail = ?, finished_at = ? WHERE status = 'pending'",
            [reason, detail, finished_at],
        )
    return ids


def get_command(db: sqlite_utils.Database, command_id: str) -> CommandRow | None:
    """One command by id."""
    row = select_one(db, "SELECT * FROM commands WHERE id = ?", [command_id])
    return None if row is None else CommandRow(**row)


def recent_commands(db: sqlite_utils.Database, entity_key: str | None = None, limit: int = 50) -> list[CommandRow]:
    """The newest commands, optionally for one entity."""
    where, args = ("WHERE entity_key = ?", [entity_key]) if entity_key else ("", [])
    sql = f"SELECT * FROM commands {where} ORDER BY created_at DESC, rowid DESC LIMIT ?"
    return [CommandRow(**row) for row in select_all(db, sql, [*args, limit])]


def start_run(db: sqlite_utils.Database, now: str) -> tuple[int, dict[str, Any] | None]:
    """Record a gateway start; return its id and the previous run if it did not stop cleanly."""
    with transaction(db):
        previous = next(db.table("gateway_runs").rows_where(order_by="id desc", limit=1), None)
        run_id = db.table("gateway_runs").insert({"started_at": now, "heartbeat_at": now, "stopped_at": None}).last_pk
    unclean = previous if previous is not None and previous["stopped_at"] is None else None
    return int(str(run_id)), unclean


def heartbeat_run(db: sqlite_utils.Database, run_id: int, now: str) -> None:
    """Note that the gateway is still running (bounds an unclean stop's time)."""
    with transaction(db):
        update_row(db, "gateway_runs", "id", run_id, {"heartbeat_at": now})


def finish_run(db: sqlite_utils.Database, run_id: int, now: str) -> None:
    """Record a clean stop."""
    with transaction(db):
        db.table("gateway_runs").update(run_id, {"heartbeat_at": now, "stopped_at": now})


_ENTITY_COLUMNS = tuple(EntityRow.__dataclass_fields__)
_OWNER_COLUMNS = tuple(DeviceOwnerRow.__dataclass_fields__)


def _asdict(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__dataclass_fields__}
