"""Synchronous reads and writes of accounts, sessions, activation codes and login attempts (writer thread)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlite_utils

from ..storage.records import parse_time, transaction
from ..storage.rows import insert_row, select_all, select_one
from .models import Account, AccountStatus, Role, Session

__all__ = [
    "account_by_id",
    "account_by_username",
    "accounts_where",
    "clear_attempts",
    "count_failure",
    "end_account",
    "get_attempts",
    "insert_account",
    "insert_session",
    "password_hash",
    "revoke_sessions",
    "session_by_digest",
    "session_by_id",
    "sessions_of",
    "set_display_name",
    "set_status",
    "touch_session",
    "with_account",
]


def _account(row: dict[str, Any]) -> Account:
    return Account(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        role=Role(row["role"]),
        property_id=row["property_id"],
        unit_id=row["unit_id"],
        status=AccountStatus(row["status"]),
        status_reason=row["status_reason"],
        created_at=datetime.fromisoformat(row["created_at"]),
        activated_at=parse_time(row["activated_at"]),
        ended_at=parse_time(row["ended_at"]),
    )


def _session(row: dict[str, Any]) -> Session:
    return Session(
        id=row["id"],
        account_id=row["account_id"],
        client=row["client"],
        created_at=datetime.fromisoformat(row["created_at"]),
        last_used_at=datetime.fromisoformat(row["last_used_at"]),
        expires_at=datetime.fromisoformat(row["expires_at"]),
        revoked_at=parse_time(row["revoked_at"]),
        revoked_reason=row["revoked_reason"],
    )


def _one(db: sqlite_utils.Database, table: str, where: str, args: list[Any]) -> dict[str, Any] | None:
    return select_one(db, f"SELECT * FROM {table} WHERE {where} LIMIT 1", args)


def account_by_id(db: sqlite_utils.Database, account_id: str) -> Account | None:
    """The account with that id."""
    row = _one(db, "accounts", "id = ?", [account_id])
    return None if row is None else _account(row)


def account_by_username(db: sqlite_utils.Database, username: str) -> Account | None:
    """The account with that username (case-insensitive)."""
    row = _one(db, "accounts", "username = ? COLLATE NOCASE", [username])
    return None if row is None else _account(row)


def password_hash(db: sqlite_utils.Database, account_id: str) -> str | None:
    """The stored argon2 hash, if a password was set."""
    row = _one(db, "accounts", "id = ?", [account_id])
    return None if row is None else row["password_hash"]


def accounts_where(db: sqlite_utils.Database, where: str | None, args: list[Any]) -> list[Account]:
    """Accounts matching an SQL condition, oldest first."""
    sql = f"SELECT * FROM accounts {'WHERE ' + where if where else ''} ORDER BY created_at, id"
    return [_account(r) for r in select_all(db, sql, args)]


def insert_account(db: sqlite_utils.Database, row: dict[str, Any], code: tuple[str, str] | None) -> None:
    """Create an account, with its activation code digest and expiry when given."""
    with transaction(db):
        db.table("accounts").insert(row)
        if code is not None:
            db.table("activation_codes").insert(
                {"account_id": row["id"], "code_hash": code[0], "expires_at": code[1], "used_at": None}
            )


def replace_activation_code(db: sqlite_utils.Database, account_id: str, code_hash: str, expires_at: str) -> bool:
    """A new activation code for a still pending account (the old one stops working); False if not pending."""
    with transaction(db):
        pending = db.conn.execute(
            "SELECT 1 FROM accounts WHERE id = ? AND status = 'pending'", (account_id,)
        ).fetchone()
        if pending is None:
            return False
        db.conn.execute(
            "INSERT INTO activation_codes (account_id, code_hash, expires_at, used_at) VALUES (?, ?, ?, NULL) "
            "ON CONFLICT(account_id) DO UPDATE SET code_hash = excluded.code_hash, expires_at = excluded.expires_at, "
            "used_at = NULL",
            (account_id, code_hash, expires_at),
        )
    return True


def insert_session(db: sqlite_utils.Database, row: dict[str, Any]) -> None:
    """Record a new session."""
    with transaction(db):
        insert_row(db, "sessions", row)


def session_by_digest(db: sqlite_utils.Database, token_hash: str) -> Session | None:
    """The session whose token has this digest."""
    row = _one(db, "sessions", "token_hash = ?", [token_hash])
    return None if row is None else _session(row)


def with_account(db: sqlite_utils.Database, session: Session | None) -> tuple[Session, Account | None] | None:
    """The session and its account, read in the same call (one trip to the writer thread per request)."""
    return None if session is None else (session, account_by_id(db, session.account_id))


def session_by_id(db: sqlite_utils.Database, session_id: str) -> Session | None:
    """The session with that id."""
    row = _one(db, "sessions", "id = ?", [session_id])
    return None if row is None else _session(row)


def sessions_of(db: sqlite_utils.Database, account_id: str) -> list[Session]:
    """Every session of an account, newest first."""
    rows = select_all(db, "SELECT * FROM sessions WHERE account_id = ? ORDER BY created_at DESC", [account_id])
    return [_session(r) for r in rows]


def touch_session(db: sqlite_utils.Database, session_id: str, now: str) -> None:
    """Note that the session was used (for the idle timeout)."""
    with transaction(db):
        db.conn.execute("UPDATE sessions SET last_used_at = ? WHERE id = ?", (now, session_id))


def revoke_sessions(
    db: sqlite_utils.Database, account_id: str, now: str, reason: str, session_id: str | None = None
) -> int:
    """Revoke one session, or every live session of the account; return how many."""
    sql = "UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE account_id = ? AND revoked_at IS NULL"
    args: list[Any] = [now, reason, account_id]
    if session_id is not None:
        sql += " AND id = ?"
        args.append(session_id)
    with transaction(db):
        return db.conn.execute(sql, args).rowcount


def get_attempts(db: sqlite_utils.Database, username: str, source: str | None = None) -> dict[str, Any] | None:
    """Failed-login bookkeeping for a username: username-wide (``source`` None) or from one source address."""
    if source is None:
        return _one(db, "login_attempts", "username = ?", [username.casefold()])
    return _one(db, "login_attempts_by_source", "username = ? AND source = ?", [username.casefold(), source])


def count_failure(
    db: sqlite_utils.Database,
    username: str,
    source: str | None,
    now: str,
    *,
    restart: bool,
    lock_after: int | None,
    locked_until: str,
) -> int:
    """Count one failure in a single UPSERT (from 1 again when ``restart``) and return the new count; the row is
    locked until ``locked_until`` once the count reaches ``lock_after`` (None: never)."""
    if source is None:
        table, columns, values = "login_attempts", "username", ":username"
    else:
        table, columns, values = "login_attempts_by_source", "username, source", ":username, :source"
    new = "CASE WHEN :restart THEN 1 ELSE failures + 1 END"
    sql = (
        f"INSERT INTO {table} ({columns}, failures, last_failure_at, locked_until) "
        f"VALUES ({values}, 1, :now, CASE WHEN 1 >= :lock_after THEN :until END) "
        f"ON CONFLICT ({columns}) DO UPDATE SET failures = {new}, last_failure_at = :now, "
        f"locked_until = CASE WHEN {new} >= :lock_after THEN :until END RETURNING failures"
    )
    args = {
        "username": username.casefold(),
        "source": source,
        "now": now,
        "restart": restart,
        "lock_after": lock_after,
        "until": locked_until,
    }
    with transaction(db):
        row = db.conn.execute(sql, args).fetchone()
    return int(row[0])


def clear_attempts(db: sqlite_utils.Database, username: str, source: str | None = None) -> None:
    """Forget failed logins: username-wide and from ``source`` (after a success), or from every source (None: an
    operator's unlock)."""
    name = username.casefold()
    with transaction(db):
        db.conn.execute("DELETE FROM login_attempts WHERE username = ?", (name,))
        if source is None:
            db.conn.execute("DELETE FROM login_attempts_by_source WHERE username = ?", (name,))
        else:
            db.conn.execute("DELETE FROM login_attempts_by_source WHERE username = ? AND source = ?", (name, source))


def set_display_name(db: sqlite_utils.Database, account_id: str, display_name: str | None) -> None:
    """Correct an account's display name."""
    with transaction(db):
        db.conn.execute("UPDATE accounts SET display_name = ? WHERE id = ?", (display_name, account_id))


def set_status(db: sqlite_utils.Database, account_id: str, status: AccountStatus, reason: str | None) -> None:
    """Suspend or re-enable an account."""
    db.conn.execute("UPDATE accounts SET status = ?, status_reason = ? WHERE id = ?", (status, reason, account_id))


def end_account(db: sqlite_utils.Database, account_id: str, reason: str, now: str) -> None:
    """Terminate an account: name and password erased, the username freed, any activation code dropped."""
    with transaction(db):
        db.conn.execute(
            "UPDATE accounts SET status = ?, status_reason = ?, ended_at = ?, username = ?, "
            "display_name = NULL, password_hash = NULL WHERE id = ?",
            (AccountStatus.TERMINATED, reason, now, f"former-{account_id}", account_id),
        )
        db.conn.execute("DELETE FROM activation_codes WHERE account_id = ?", (account_id,))
