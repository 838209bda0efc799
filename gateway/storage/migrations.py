"""Numbered schema migrations; ``PRAGMA user_version`` records the last one applied."""

from __future__ import annotations

__all__ = ["MIGRATIONS"]

MIGRATIONS: tuple[str, ...] = (
    # 1: devices, entities, commands, events, gateway runs
    """
    CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        name TEXT,
        manufacturer TEXT,
        model TEXT,
        sw_version TEXT,
        first_seen TEXT NOT NULL
    );
    CREATE TABLE entities (
        key TEXT PRIMARY KEY,
        device_id TEXT NOT NULL REFERENCES devices(id),
        component TEXT NOT NULL,
        kind TEXT NOT NULL,
        unique_id TEXT,
        name TEXT,
        config TEXT NOT NULL,
        discovered_at TEXT NOT NULL,
        removed_at TEXT,
        state TEXT,
        state_at TEXT,
        state_error TEXT,
        state_error_at TEXT,
        available INTEGER,
        availability_at TEXT,
        last_seen TEXT
    );
    CREATE UNIQUE INDEX entities_unique_id ON entities(unique_id) WHERE unique_id IS NOT NULL;
    CREATE INDEX entities_device ON entities(device_id);
    CREATE TABLE commands (
        id TEXT PRIMARY KEY,
        entity_key TEXT NOT NULL REFERENCES entities(key),
        actor TEXT NOT NULL,
        command TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        detail TEXT,
        created_at TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE INDEX commands_entity ON commands(entity_key, created_at);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        entity_key TEXT REFERENCES entities(key),
        type TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX events_entity ON events(entity_key, at);
    CREATE TABLE gateway_runs (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        heartbeat_at TEXT NOT NULL,
        stopped_at TEXT
    );
    """,
)
