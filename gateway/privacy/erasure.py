"""Erasure: a person removed from every table but what a legal hold keeps, which is re-keyed to a pseudonym."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from ..storage.records import transaction

__all__ = ["Person", "erase", "forget_former", "pseudonym_of"]


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


def _scrub(value: Any, words: list[str], pseudonym: str) -> Any:
    # Replace each of the person's identifiers where it stands as a word of its own ("al" in "also" stays), in
    # strings and through JSON structures.
    if not words:
        return value
    if isinstance(value, str):
        pattern = "|".join(re.escape(w) for w in words)
        return re.sub(f"(?<![A-Za-z0-9_])(?:{pattern})(?![A-Za-z0-9_])", pseudonym, value)
    if isinstance(value, list):
        return [_scrub(v, words, pseudonym) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, words, pseudonym) for k, v in value.items()}
    return value


def _identifiers(person: Person, *, ids: bool = True) -> list[str]:
    words = [person.actor, person.account_id, *person.usernames] if ids else list(person.usernames)
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
    # The database zeroes what it deletes (secure_delete, set at open); said again here, as erasure relies on it.
    conn.execute("PRAGMA secure_delete = ON")
    changed: dict[str, int] = {}
    with transaction(db):
        # The account row stays as a tombstone under the pseudonym: the held acceptances point at it (the foreign
        # keys are checked at commit, once parent and children carry the pseudonym).
        conn.execute("PRAGMA defer_foreign_keys = ON")
        changed["login_attempts"] = _forget_sign_ins(db, person)
        for table, column, key in (
            ("sessions", "account_id", pid),
            ("activation_codes", "account_id", pid),
            ("disclosures", "account_id", pid),
            ("restrictions", "account_id", pid),
            ("device_names", "set_by", actor),
            ("commands", "actor", actor),
        ):
            changed[table] = conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (key,)).rowcount
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
        changed["privacy_requests"] = _scrub_requests(db, person, pseudonym, rekey=True)
    _checkpoint(db)
    return changed


def forget_former(db: sqlite_utils.Database, person: Person) -> dict[str, int]:
    """At move-out: the former resident's username(s) and name go from every table (sign-in failures deleted, the
    audit log's and their requests' text rewritten to ``former-<id>``); what is linked by the account id stays,
    for the legal holds and the per-category retention."""
    replacement = f"former-{person.account_id}"
    named = Person(person.account_id, "", person.usernames, person.display_name)
    db.conn.execute("PRAGMA secure_delete = ON")
    with transaction(db):
        changed = {
            "login_attempts": _forget_sign_ins(db, person),
            "audit_log": _scrub_audit(db, named, replacement, ids=False),
            "privacy_requests": _scrub_requests(db, named, replacement, rekey=False),
        }
    _checkpoint(db)
    return changed


def _checkpoint(db: sqlite_utils.Database) -> None:
    # The WAL still holds the pages as they were; a truncating checkpoint writes them back and empties it.
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _forget_sign_ins(db: sqlite_utils.Database, person: Person) -> int:
    names = [n.casefold() for n in person.usernames]
    marks = ", ".join("?" for _ in names)
    return sum(
        db.conn.execute(f"DELETE FROM {table} WHERE username IN ({marks})", names).rowcount
        for table in ("login_attempts", "login_attempts_by_source")
    )


def _scrub_audit(db: sqlite_utils.Database, person: Person, pseudonym: str, *, ids: bool = True) -> int:
    words = _identifiers(person, ids=ids)
    if not words:
        return 0
    mention = " OR ".join("instr({col}, ?) > 0" for _ in words)
    where = " OR ".join(f"({mention.format(col=c)})" for c in ("actor_id", "target", "detail"))
    rows = db.execute(f"SELECT id, actor_id, target, detail FROM audit_log WHERE {where}", words * 3).fetchall()
    for row_id, actor_id, target, detail in rows:
        db.conn.execute(
            "UPDATE audit_log SET actor_id = ?, target = ?, detail = ? WHERE id = ?",
            (
                _scrub(actor_id, words, pseudonym),
                _scrub(target, words, pseudonym),
                json.dumps(_scrub(json.loads(detail), words, pseudonym)),
                row_id,
            ),
        )
    return len(rows)


def _scrub_requests(db: sqlite_utils.Database, person: Person, pseudonym: str, *, rekey: bool) -> int:
    words = _identifiers(person, ids=rekey)
    rows = db.execute(
        "SELECT id, detail, answer, appeal FROM privacy_requests WHERE account_id = ?", [person.account_id]
    ).fetchall()
    for row_id, detail, answer, appeal in rows:
        db.conn.execute(
            "UPDATE privacy_requests SET account_id = ?, detail = ?, answer = ?, appeal = ? WHERE id = ?",
            (
                pseudonym if rekey else person.account_id,
                _scrub(detail, words, pseudonym),
                _scrub(answer, words, pseudonym),
                _scrub(appeal, words, pseudonym),
                row_id,
            ),
        )
        if rekey:
            db.conn.execute("UPDATE privacy_requests SET unit_id = NULL WHERE id = ?", (row_id,))
    return len(rows)
