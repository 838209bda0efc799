"""Synchronous reads and writes of firmware rollouts (writer thread)."""

from __future__ import annotations

from datetime import datetime

import sqlite_utils

from ..storage.records import parse_time, transaction
from .models import DeviceStep, Rollout, RolloutDevice, RolloutScope, RolloutStatus

__all__ = ["insert_rollout", "load_rollouts", "save_device", "save_rollout"]

_DEVICE_COLUMNS = (
    "rollout_id, device_id, unit_id, entity_id, stage, kind, status, from_version, target_version, started_at, "
    "finished_at, reason"
)


def insert_rollout(db: sqlite_utils.Database, rollout: Rollout) -> None:
    """Store a new rollout with its devices."""
    with transaction(db):
        db.conn.execute(
            "INSERT INTO firmware_rollouts (id, property_id, scope, target, status, reason, created_by, created_at, "
            "finished_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (rollout.id, rollout.property_id, str(rollout.scope), rollout.target, str(rollout.status), rollout.reason,
             rollout.created_by, rollout.created_at.isoformat(), None),
        )  # fmt: skip
        for device in rollout.devices:
            _write_device(db, rollout.id, device)


def save_rollout(db: sqlite_utils.Database, rollout: Rollout) -> None:
    """Write a rollout's status and every device's step."""
    with transaction(db):
        db.conn.execute(
            "UPDATE firmware_rollouts SET status = ?, reason = ?, finished_at = ? WHERE id = ?",
            (str(rollout.status), rollout.reason, _iso(rollout.finished_at), rollout.id),
        )
        for device in rollout.devices:
            _write_device(db, rollout.id, device)


def save_device(db: sqlite_utils.Database, rollout_id: str, device: RolloutDevice) -> None:
    """Write one device's step."""
    with transaction(db):
        _write_device(db, rollout_id, device)


def load_rollouts(db: sqlite_utils.Database, property_id: str | None, limit: int = 50) -> list[Rollout]:
    """Rollouts newest first (of one property, or every running one when ``property_id`` is None)."""
    if property_id is None:
        where, args = "WHERE status = ?", [str(RolloutStatus.RUNNING)]
    else:
        where, args = "WHERE property_id = ?", [property_id]
    rows = db.conn.execute(
        "SELECT id, property_id, scope, target, status, reason, created_by, created_at, finished_at "
        f"FROM firmware_rollouts {where} ORDER BY created_at DESC, id DESC LIMIT ?",
        [*args, limit],
    ).fetchall()
    out = []
    for rid, prop, scope, target, status, reason, by, created, finished in rows:
        rollout = Rollout(
            id=rid, property_id=prop, scope=RolloutScope(scope), target=target, status=RolloutStatus(status),
            created_by=by, created_at=_time(created), reason=reason, finished_at=parse_time(finished),
        )  # fmt: skip
        for row in db.conn.execute(
            f"SELECT {_DEVICE_COLUMNS} FROM firmware_rollout_devices WHERE rollout_id = ? ORDER BY stage, device_id",
            [rid],
        ):
            rollout.devices.append(
                RolloutDevice(
                    device_id=row[1],
                    unit_id=row[2],
                    entity_id=row[3],
                    stage=row[4],
                    kind=row[5],
                    status=DeviceStep(row[6]),
                    from_version=row[7],
                    target_version=row[8],
                    started_at=parse_time(row[9]),
                    finished_at=parse_time(row[10]),
                    reason=row[11],
                )
            )
        out.append(rollout)
    return out


def _write_device(db: sqlite_utils.Database, rollout_id: str, d: RolloutDevice) -> None:
    db.conn.execute(
        f"INSERT OR REPLACE INTO firmware_rollout_devices ({_DEVICE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (rollout_id, d.device_id, d.unit_id, d.entity_id, d.stage, d.kind, str(d.status), d.from_version,
         d.target_version, _iso(d.started_at), _iso(d.finished_at), d.reason),
    )  # fmt: skip


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)
