"""Synchronous reads and writes of properties, units, bindings and device names."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlite_utils

from ..storage.records import transaction
from ..storage.staging import EVENT_TABLES
from .models import Binding, Property, Unit

__all__ = [
    "active_bindings",
    "anonymise_actor",
    "insert_property",
    "insert_unit",
    "properties",
    "unit_events",
    "units",
]


def properties(db: sqlite_utils.Database) -> list[Property]:
    """Every property."""
    return [
        Property(r["id"], r["name"], datetime.fromisoformat(r["created_at"]))
        for r in db.table("properties").rows_where(order_by="id")
    ]


def insert_property(db: sqlite_utils.Database, property_id: str, name: str, now: str) -> bool:
    """Create a property; False if the id is taken."""
    with transaction(db):
        if db.execute("SELECT 1 FROM properties WHERE id = ?", [property_id]).fetchone():
            return False
        db.table("properties").insert({"id": property_id, "name": name, "created_at": now})
    return True


def units(db: sqlite_utils.Database) -> list[Unit]:
    """Every unit."""
    return [
        Unit(r["id"], r["property_id"], r["label"], datetime.fromisoformat(r["created_at"]))
        for r in db.table("units").rows_where(order_by="property_id, label")
    ]


def insert_unit(db: sqlite_utils.Database, unit_id: str, property_id: str, label: str, now: str) -> bool:
    """Create a unit; False if its id, or its label in the property, is taken."""
    with transaction(db):
        taken = db.execute(
            "SELECT 1 FROM units WHERE id = ? OR (property_id = ? AND label = ?)", [unit_id, property_id, label]
        ).fetchone()
        if taken:
            return False
        db.table("units").insert({"id": unit_id, "property_id": property_id, "label": label, "created_at": now})
    return True


def active_bindings(db: sqlite_utils.Database) -> list[Binding]:
    """Every current binding."""
    rows = db.table("bindings").rows_where("unbound_at IS NULL", order_by="id")
    return [Binding(r["device_id"], r["unit_id"], datetime.fromisoformat(r["bound_at"]), r["bound_by"]) for r in rows]


def unit_events(
    db: sqlite_utils.Database, unit_id: str, since: str, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """A unit's events, newest first: only while each device was bound to it, and not before ``since``."""
    arm = (
        "SELECT e.id, e.at, e.entity_key, e.type, e.data FROM {table} e "
        "JOIN entities n ON n.key = e.entity_key "
        "JOIN bindings b ON b.device_id = n.device_id AND b.unit_id = :unit "
        "WHERE e.at >= b.bound_at AND (b.unbound_at IS NULL OR e.at < b.unbound_at) AND e.at >= :since"
    )
    if before is not None:
        arm += " AND e.id < :before"
    # Merged and appended events (storage.staging), each arm along its own plan: the all_events view in a join
    # would be read whole.
    sql = f"{' UNION ALL '.join(arm.format(table=t) for t in EVENT_TABLES)} ORDER BY 1 DESC LIMIT :limit"
    args = {"unit": unit_id, "since": since, "before": before, "limit": limit}
    return [
        {"id": r[0], "at": r[1], "entity_key": r[2], "type": r[3], "data": json.loads(r[4])}
        for r in db.execute(sql, args).fetchall()
    ]


def anonymise_actor(db: sqlite_utils.Database, actor: str, replacement: str) -> int:
    """Replace a person's actor id in the command history and its events, self-tests and reports; rows changed."""
    with transaction(db):
        changed = db.conn.execute("UPDATE commands SET actor = ? WHERE actor = ?", (replacement, actor)).rowcount
        for table in EVENT_TABLES:
            changed += db.conn.execute(
                f"UPDATE {table} SET data = json_set(data, '$.actor', ?) "
                "WHERE type = 'command' AND json_extract(data, '$.actor') = ?",
                (replacement, actor),
            ).rowcount
        # Self-tests a resident started and failure reports they filed keep their facts, not the person.
        changed += db.conn.execute(
            "UPDATE self_tests SET actor_id = ?, result = json_set(result, '$.actor_id', ?) WHERE actor_id = ?",
            (replacement, replacement, actor),
        ).rowcount
        changed += db.conn.execute(
            "UPDATE reports SET created_by = ?, body = json_set(body, '$.details.description', ?) "
            "WHERE created_by = ? AND kind = 'resident'",
            (replacement, "[removed at move-out]", actor),
        ).rowcount
        changed += db.conn.execute(
            "UPDATE reports SET created_by = ?, body = CASE WHEN kind = 'self_test_failed' "
            "THEN json_set(body, '$.details.actor_id', ?) ELSE body END WHERE created_by = ?",
            (replacement, replacement, actor),
        ).rowcount
    return changed
