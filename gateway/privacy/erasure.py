"""Erasure: a person removed from every table but what a legal hold keeps, which is re-keyed to a pseudonym."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from ..storage.records import transaction

__all__ = ["Person", "erase", "pseudonym_of"]


@dataclass(frozen=True, slots=True)
class Person:
    """What identifies the person in the tables: account id, how history names them, username(s) and name."""

    account_id: str
    actor: str
    usernames: tuple[str, ...]
    display_name: str | None


def pseudonym_of(account_id: str) -> str:
    """The pseudonym held records keep: a digest of the account id, so that whoever presents that id (the person,
    a court) can find them, while the stored rows no longer name anyone."""
    return "erased-" + hashlib.sha256(f"aptgateway-erasure:{account_id}".encode()).hexdigest()[:32]


def _scrub(value: Any, person: Person, pseudonym: str) -> Any:
    # Replace every string that is, or contains, one of the person's identifiers; walk JSON structures.
    if isinstance(value, str):
        for word in _identifiers(person):
            value = value.replace(word, pseudonym)
        return value
    if isinstance(value, list):
        return [_scrub(v, person, pseudonym) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, person, pseudonym) for k, v in value.items()}
    return value


def _identifiers(person: Person) -> list[str]:
    words = [person.actor, person.account_id, *person.usernames]
    if person.display_name:
        words.append(person.display_name)
    # Longest first, so "account:<id>" goes whole rather than leaving "account:" behind.
    return sorted({w for w in words if w}, key=len, reverse=True)


def erase(db: sqlite_utils.Database, person: Person) -> dict[str, int]:
    """Remove the person from every table, keep what a hold needs under the pseudonym, and leave none of their
    identifiers in the file (secure delete, then a WAL checkpoint); rows changed per table."""
    pseudonym = pseudonym_of(person.account_id)
    conn = db.conn
    pid, actor = person.account_id, person.actor
    secure = int(conn.execute("PRAGMA secure_delete").fetchone()[0])
    conn.execute("PRAGMA secure_delete = ON")  # deleted and rewritten cells are zeroed, not left in free space
    changed: dict[str, int] = {}
    try:
        with transaction(db):
            # The account row stays as a tombstone under the pseudonym: the held acceptances point at it.
            conn.execute("PRAGMA defer_foreign_keys = ON")
            names = [n.casefold() for n in person.usernames]
            marks = ", ".join("?" for _ in names)
            changed["sessions"] = conn.execute("DELETE FROM sessions WHERE account_id = ?", (pid,)).rowcount
            changed["activation_codes"] = conn.execute(
                "DELETE FROM activation_codes WHERE account_id = ?", (pid,)
            ).rowcount
            changed["login_attempts"] = (
                conn.execute(f"DELETE FROM login_attempts WHERE username IN ({marks})", names).rowcount
                + conn.execute(f"DELETE FROM login_attempts_by_source WHERE username IN ({marks})", names).rowcount
            )
            changed["disclosures"] = conn.execute("DELETE FROM disclosures WHERE account_id = ?", (pid,)).rowcount
            changed["restrictions"] = conn.execute("DELETE FROM restrictions WHERE account_id = ?", (pid,)).rowcount
            changed["device_names"] = conn.execute("DELETE FROM device_names WHERE set_by = ?", (actor,)).rowcount
            changed["commands"] = conn.execute("DELETE FROM commands WHERE actor = ?", (actor,)).rowcount
            changed["self_tests"] = conn.execute(
                "UPDATE self_tests SET actor_id = NULL, result = json_remove(result, '$.actor_id') "
                "WHERE actor_id IN (?, ?)",
                (pid, actor),
            ).rowcount
            changed["reports"] = conn.execute(
                "UPDATE reports SET created_by = NULL, body = json_remove(body, '$.details.actor_id', "
                "'$.details.description') WHERE created_by IN (?, ?)",
                (pid, actor),
            ).rowcount
            changed["accounts"] = conn.execute(
                "UPDATE accounts SET id = ?, username = ?, display_name = NULL, password_hash = NULL, unit_id = NULL, "
                "status = 'terminated', status_reason = 'erased' WHERE id = ?",
                (pseudonym, pseudonym, pid),
            ).rowcount
            changed["agreement_acceptances"] = conn.execute(
                "UPDATE agreement_acceptances SET account_id = ?, session_id = NULL WHERE account_id = ?",
                (pseudonym, pid),
            ).rowcount
            changed["arbitration_opt_outs"] = conn.execute(
                "UPDATE arbitration_opt_outs SET account_id = ? WHERE account_id = ?", (pseudonym, pid)
            ).rowcount
            changed["audit_log"] = _scrub_audit(db, person, pseudonym)
            changed["privacy_requests"] = _scrub_requests(db, person, pseudonym)
        # The WAL still holds the pages as they were; a truncating checkpoint writes them back and empties it.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.execute(f"PRAGMA secure_delete = {secure}")
    return changed


def _mentions(person: Person) -> tuple[str, list[str]]:
    words = _identifiers(person)
    return " OR ".join("instr({col}, ?) > 0" for _ in words), words


def _scrub_audit(db: sqlite_utils.Database, person: Person, pseudonym: str) -> int:
    condition, words = _mentions(person)
    where = " OR ".join(f"({condition.format(col=c)})" for c in ("actor_id", "target", "detail"))
    rows = db.execute(f"SELECT id, actor_id, target, detail FROM audit_log WHERE {where}", words * 3).fetchall()
    for row_id, actor_id, target, detail in rows:
        db.conn.execute(
            "UPDATE audit_log SET actor_id = ?, target = ?, detail = ? WHERE id = ?",
            (
                _scrub(actor_id, person, pseudonym),
                _scrub(target, person, pseudonym),
                json.dumps(_scrub(json.loads(detail), person, pseudonym)),
                row_id,
            ),
        )
    return len(rows)


def _scrub_requests(db: sqlite_utils.Database, person: Person, pseudonym: str) -> int:
    rows = db.execute(
        "SELECT id, detail, answer, appeal FROM privacy_requests WHERE account_id = ?", [person.account_id]
    ).fetchall()
    for row_id, detail, answer, appeal in rows:
        db.conn.execute(
            "UPDATE privacy_requests SET account_id = ?, unit_id = NULL, detail = ?, answer = ?, appeal = ? "
            "WHERE id = ?",
            (
                pseudonym,
                _scrub(detail, person, pseudonym),
                _scrub(answer, person, pseudonym),
                _scrub(appeal, person, pseudonym),
                row_id,
            ),
        )
    return len(rows)
