"""Accounts and sessions: activation, login with throttling and lockout, bearer-token checks, revocation."""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

import sqlite_utils

from ..audit import AuditLog
from ..clock import Clock
from ..errors import AuthError, Conflict, InvalidRequest, NotFound, PolicyRefused
from ..storage import Database
from ..storage.records import transaction
from . import store
from .credentials import (
    Passwords,
    check_password_policy,
    code_digest,
    digests_equal,
    new_activation_code,
    new_token,
    token_digest,
)
from .models import Account, AccountStatus, AuthSettings, Principal, Role, Session
from .throttle import SignInThrottle

__all__ = [
    "AccountService",
    "Admission",
    "AuthSettings",
    "NewAccount",
    "SessionGrant",
    "SessionLimit",
    "status_error",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
RevokedCallback = Callable[[str, str | None], None]
"""Told (account id, session id) when sessions end; session id None means every session of the account."""

DISPLACED = "displaced"  # revocation reason of a session ended by a sign-in on another app device
_SIGNED_IN_KEPT = 10_000
LOCAL = "local"  # the source of a sign-in not made over the network (tests, the CLI)
PLAN_LIMIT_LOWERED = "plan limit lowered"  # ended because the plan now allows fewer app devices at a time
REPORTED_LOST = "reported lost"


@dataclass(frozen=True, slots=True)
class NewAccount:
    """A created account and its one-time activation code (shown once, stored hashed)."""

    account: Account
    activation_code: str
    activation_expires_at: datetime


@dataclass(frozen=True, slots=True)
class SessionLimit:
    """How many live sessions (app devices) an account may have, and what a sign-in beyond that does."""

    max_sessions: int
    displace: bool  # True: the oldest sessions end; False: the sign-in is refused


Admission = Callable[[Account], Awaitable[SessionLimit | None]]
"""Asked after the password is verified: raises to refuse the sign-in, returns the account's session limit."""


@dataclass(frozen=True, slots=True)
class SessionGrant:
    """A new session and its bearer token (shown once, stored hashed)."""

    token: str
    session: Session
    account: Account


class UnitRef(Protocol):
    """The unit whose residents are read (a building Unit; accounts sit below the building and never import it)."""

    @property
    def id(self) -> str: ...

    @property
    def property_id(self) -> str: ...


class AccountService:
    """Every change to accounts and sessions goes through here; reads for each request too."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        passwords: Passwords | None = None,
        settings: AuthSettings | None = None,
        *,
        audit: AuditLog,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit  # staff actions and reads of residents' data are recorded here
        self._passwords = passwords or Passwords()
        self.settings = settings or AuthSettings()
        self._throttle = SignInThrottle(db, clock, self.settings)
        self._revoked_listeners: list[RevokedCallback] = []
        # Token digest -> (session, account) as last read, so a request needs no trip to the writer thread. This
        # service is the only code that writes accounts and sessions, and every one of its database calls but two
        # reads (authenticate's and recheck's) goes through _run, which forgets them all first: a change is seen
        # by the very next request.
        self._signed_in: OrderedDict[str, tuple[Session, Account | None]] = OrderedDict()
        self._generation = 0

    async def _run(self, work: Callable[[sqlite_utils.Database], T]) -> T:
        """Run ``work`` on the writer thread, forgetting every sign-in read so far (it may change any of them)."""
        self._forget()
        return await self._db.run(work)

    def _forget(self) -> None:
        self._generation += 1
        self._signed_in.clear()

    async def rewrite(self, work: Callable[[sqlite_utils.Database], T]) -> T:
        """Run a change to accounts made by another use case (an erasure), forgetting every cached sign-in."""
        try:
            return await self._run(work)
        finally:
            self._forget()

    def on_sessions_revoked(self, callback: RevokedCallback) -> None:
        """Be told when sessions are revoked (one, or all of an account's), e.g. to close their streams."""
        self._revoked_listeners.append(callback)

    # --- creation and activation -------------------------------------------------------------------

    async def create(
        self,
        username: str,
        role: Role,
        *,
        by: Principal,
        property_id: str | None = None,
        unit_id: str | None = None,
        display_name: str | None = None,
    ) -> NewAccount:
        """Create a pending account with a one-time activation code; Conflict if the username is taken. Audited:
        a resident's as their move-in, staff's as an account created."""
        now = self._clock.now()
        code = new_activation_code()
        expires = now + self.settings.activation_ttl
        row = self._row(username, role, property_id, unit_id, display_name, by.actor, now)
        await self._insert(row, (code_digest(code), expires.isoformat()))
        account = await self.get(row["id"])
        log.info("account created", extra={"account": account.id, "role": str(role), "by": by.actor})
        if role is Role.RESIDENT:
            await self._audit_about(by, "resident.move_in", account)
        else:
            await self._audit_about(by, "account.create", account, detail={"role": role})
        return NewAccount(account, code, expires)

    async def reissue_code(self, account_id: str, *, by: Principal) -> NewAccount:
        """A new one-time activation code for a pending account (the old one stops working); Conflict
        ``account_not_pending`` once it is activated or ended. Audited as ``resident.code_reissued``."""
        now = self._clock.now()
        code = new_activation_code()
        expires = now + self.settings.activation_ttl
        digest = code_digest(code)
        if not await self._run(lambda db: store.replace_activation_code(db, account_id, digest, expires.isoformat())):
            raise Conflict("the account is no longer waiting for activation", code="account_not_pending")
        account = await self.get(account_id)
        await self._audit_about(by, "resident.code_reissued", account)
        return NewAccount(account, code, expires)

    async def create_operator(self, username: str, password: str, *, created_by: str) -> Account:
        """Create an active operator account with the given password (bootstrap or CLI), audited as such."""
        check_password_policy(password, username)
        hashed = await self._passwords.hash_async(password)
        now = self._clock.now()
        row = self._row(username, Role.OPERATOR, None, None, None, created_by, now)
        row.update(status=AccountStatus.ACTIVE, activated_at=now.isoformat(), password_hash=hashed)
        await self._insert(row, None)
        log.info("operator account created", extra={"account": row["id"], "by": created_by})
        action = "account.bootstrap_operator" if created_by == "bootstrap" else "account.create_operator"
        await self._audit.record(None, action, target=row["id"])
        return await self.get(row["id"])

    async def has_operator(self) -> bool:
        """Whether any operator account exists (whatever its status)."""
        return bool(await self.find("role = ?", [str(Role.OPERATOR)]))

    async def activate(self, username: str, code: str, password: str, *, source: str = LOCAL) -> Account:
        """Set the first password with the one-time code; the code is spent. Throttled like a sign-in from
        ``source``; the code is checked before the new password is hashed (a wrong one costs no argon2)."""
        check_password_policy(password, username)  # before the attempt is counted: a weak password is no guess
        await self._throttle.attempt(username, source)
        account = await self._run(lambda db: store.account_by_username(db, username))

        def valid(db: sqlite_utils.Database, now: datetime) -> bool:
            if account is None or account.status is not AccountStatus.PENDING:
                return False
            row = next(db.table("activation_codes").rows_where("account_id = ?", [account.id], limit=1), None)
            if row is None or row["used_at"] is not None or datetime.fromisoformat(row["expires_at"]) <= now:
                return False
            return digests_equal(row["code_hash"], code_digest(code))

        def spend(db: sqlite_utils.Database, hashed: str, now: datetime) -> bool:
            assert account is not None
            with transaction(db):  # checked again: another activation may have spent the code while this hashed
                if not valid(db, now):
                    return False
                db.conn.execute(
                    "UPDATE activation_codes SET used_at = ? WHERE account_id = ?", (now.isoformat(), account.id)
                )
                db.conn.execute(
                    "UPDATE accounts SET password_hash = ?, status = ?, activated_at = ? WHERE id = ?",
                    (hashed, AccountStatus.ACTIVE, now.isoformat(), account.id),
                )
            return True

        checked = self._clock.now()
        spent = False
        if await self._run(lambda db: valid(db, checked)):
            hashed = await self._passwords.hash_async(password)
            now = self._clock.now()
            spent = await self._run(lambda db: spend(db, hashed, now))
        if not spent:
            raise InvalidRequest(
                "activation code is wrong, used or expired", code="activation_invalid", field="activation_code"
            )
        assert account is not None
        await self._throttle.succeeded(username, source)
        log.info("account activated", extra={"account": account.id})
        return await self.get(account.id)

    # --- sessions ----------------------------------------------------------------------------------

    async def login(
        self,
        username: str,
        password: str,
        client: str | None,
        *,
        admit: Admission | None = None,
        replace_session: str | None = None,
        source: str = LOCAL,
    ) -> SessionGrant:
        """Check the password (throttled per username and ``source`` address, see SignInThrottle) and open a
        session.

        ``admit`` may refuse the account or limit its sessions; ``replace_session`` ends one of the account's own
        sessions first (a lost app device). An unknown or pending username costs one argon2 verification too.
        """
        await self._throttle.attempt(username, source)
        found = await self._run(lambda db: _with_hash(db, username))
        account, stored = found if found is not None else (None, None)
        # Always one verification (against a dummy hash when there is no password), so timing tells nothing.
        if not await self._passwords.verify_async(stored, password) or account is None:
            raise AuthError("wrong username or password", code="login_failed")
        await self._throttle.succeeded(username, source)
        error = status_error(account)  # only once the password is right: the state is the owner's to learn
        if error is not None:
            raise error
        limit = None if admit is None else await admit(account)
        grant = await self.open_session(account, client, limit=limit, replace_session=replace_session)
        if replace_session is not None:
            await self._audit.record(
                Principal(grant.account, grant.session),
                "session.reported_lost",
                property_id=account.property_id,
                unit_id=account.unit_id,
                target=replace_session,
                detail={"at_sign_in": True},
            )
        return grant

    async def open_session(
        self,
        account: Account,
        client: str | None,
        *,
        limit: SessionLimit | None = None,
        replace_session: str | None = None,
    ) -> SessionGrant:
        """Open a session for an account that has proven who it is, within its limit of live sessions."""
        now = self._clock.now()
        token = new_token()
        row = {
            "id": uuid.uuid4().hex,
            "token_hash": token_digest(token),
            "account_id": account.id,
            "client": client,
            "created_at": now.isoformat(),
            "last_used_at": now.isoformat(),
            "expires_at": (now + self.settings.session_ttl).isoformat(),
            "revoked_at": None,
            "revoked_reason": None,
        }
        idle_since = now - self.settings.idle_timeout

        def admit(db: sqlite_utils.Database) -> tuple[list[Session], list[Session]]:
            # One writer transaction: two sign-ins at once cannot both squeeze under the limit.
            with transaction(db):
                live = [s for s in store.sessions_of(db, account.id) if _live(s, now, idle_since)]
                live.sort(key=lambda s: s.created_at)
                ended: list[Session] = []
                if replace_session is not None:
                    lost = next((s for s in live if s.id == replace_session), None)
                    if lost is None:
                        return live, []  # refused below, nothing written
                    store.revoke_sessions(db, account.id, now.isoformat(), REPORTED_LOST, lost.id)
                    live.remove(lost)
                    ended.append(lost)
                if limit is not None and len(live) >= limit.max_sessions:
                    if not limit.displace:
                        return live, ended  # refused; a lost device reported on the way stays ended
                    for old in live[: len(live) - limit.max_sessions + 1]:
                        store.revoke_sessions(db, account.id, now.isoformat(), DISPLACED, old.id)
                        ended.append(old)
                store.insert_session(db, row)
                return [], ended

        refused_by, ended = await self._run(admit)
        for old in ended:
            self._notify(account.id, old.id)
        if replace_session is not None and not any(s.id == replace_session for s in ended):
            raise InvalidRequest(
                "no such live session of yours to end", code="session_not_found", field="replace_session_id"
            )
        if refused_by:
            assert limit is not None
            raise PolicyRefused(
                f"this account may be signed in on {limit.max_sessions} app device(s) at a time; sign out there, "
                "or end the session of a lost device with replace_session_id",
                code="plan_limit_app_devices",
                link="plan",
                extra={
                    "limit": limit.max_sessions,
                    "sessions": [
                        {
                            "id": s.id,
                            "client": s.client,
                            "created_at": s.created_at.isoformat(),
                            "last_used_at": s.last_used_at.isoformat(),
                        }
                        for s in refused_by
                    ],
                },
            )
        digest = str(row["token_hash"])
        session = await self._run(lambda db: store.session_by_digest(db, digest))
        assert session is not None
        log.info("session opened", extra={"account": account.id, "session": session.id})
        return SessionGrant(token, session, account)

    async def authenticate(self, token: str) -> Principal:
        """The caller behind a bearer token; AuthError with the precise code otherwise."""
        digest = token_digest(token)
        found = self._signed_in.get(digest)
        if found is None:
            generation = self._generation
            found = await self._db.run(lambda db: store.with_account(db, store.session_by_digest(db, digest)))
            # Kept only if nothing was written meanwhile: a read queued before a revocation must not be kept after.
            if found is not None and generation == self._generation:
                self._signed_in[digest] = found
                while len(self._signed_in) > _SIGNED_IN_KEPT:
                    self._signed_in.popitem(last=False)
        return await self._check(found)

    async def recheck(self, principal: Principal) -> Principal:
        """Check a long-lived request's session again (e.g. an open stream); AuthError once it has ended."""
        session_id = principal.session.id
        # A read that remembers nothing, so it need not forget: every open stream does it at each keepalive.
        found = await self._db.run(lambda db: store.with_account(db, store.session_by_id(db, session_id)))
        return await self._check(found)

    async def _check(self, found: tuple[Session, Account | None] | None) -> Principal:
        if found is None:
            raise AuthError("unknown token", code="token_invalid")
        session, account = found
        if account is None:
            raise NotFound(f"no account {session.account_id!r}", code="account_not_found")
        # Before the revocation check: suspending revokes every session too, and the client must learn why
        # (signing in again will not help until the operator enables the account).
        error = status_error(account)
        if error is not None:
            raise error
        if session.revoked_reason == DISPLACED:
            raise AuthError("you signed in on another app device, which ended this session", code="session_displaced")
        if session.revoked_reason == PLAN_LIMIT_LOWERED:
            raise AuthError(
                "the building's plan now allows fewer app devices at a time and this one was used least recently; "
                "sign in again (ending another device's session) to use it",
                code="session_displaced",
            )
        if session.revoked_at is not None:
            raise AuthError(f"the session was ended ({session.revoked_reason})", code="session_revoked")
        now = self._clock.now()
        if now >= session.expires_at:
            raise AuthError("the session expired; sign in again", code="session_expired")
        if now >= session.last_used_at + self.settings.idle_timeout:
            raise AuthError("the session expired after being idle; sign in again", code="session_expired")
        if now - session.last_used_at >= self.settings.touch_interval:
            await self._run(lambda db: store.touch_session(db, session.id, now.isoformat()))
        return Principal(account, session)

    async def logout(self, principal: Principal) -> None:
        """End the caller's own session."""
        now = self._clock.now().isoformat()
        await self._run(lambda db: store.revoke_sessions(db, principal.account.id, now, "logout", principal.session.id))

    async def revoke_sessions(self, account_id: str, reason: str, *, by: Principal | None = None) -> int:
        """End every session of an account, effective on its next request; return how many. ``by``: the operator
        who asked (audited; NotFound for an unknown account)."""
        account = None if by is None else await self.get(account_id)
        now = self._clock.now().isoformat()
        count = await self._run(lambda db: store.revoke_sessions(db, account_id, now, reason))
        self._notify(account_id, None)
        if by is not None and account is not None:
            await self._audit_about(by, "account.revoke_sessions", account, detail={"sessions": count})
        return count

    async def end_session(self, account_id: str, session_id: str, reason: str) -> Session:
        """End one live session of an account (a credential, or a lost app device); NotFound otherwise."""
        now = self._clock.now().isoformat()
        count = await self._run(lambda db: store.revoke_sessions(db, account_id, now, reason, session_id))
        session = await self._run(lambda db: store.session_by_id(db, session_id))
        if count == 0 or session is None or session.account_id != account_id:
            raise NotFound(f"no live session {session_id!r}", code="session_not_found")
        self._notify(account_id, session_id)
        return session

    async def report_lost(self, principal: Principal, session_id: str) -> Session:
        """End one of the caller's own sessions whose app device was lost or stolen (audited)."""
        ended = await self.end_session(principal.account.id, session_id, REPORTED_LOST)
        await self._audit_about(
            principal, "session.reported_lost", principal.account, target=session_id, detail={"client": ended.client}
        )
        return ended

    async def revoke_session(self, account_id: str, session_id: str, reason: str, *, by: Principal) -> None:
        """The operator disables one credential (session) of an account (audited)."""
        account = await self.get(account_id)
        await self.end_session(account.id, session_id, f"revoked by the operator: {reason}")
        await self._audit.record(
            by, "session.revoke", property_id=account.property_id, target=session_id, detail={"reason": reason}
        )

    async def trim_sessions(
        self, property_id: str, max_sessions: int, *, by: Principal
    ) -> list[tuple[Account, Session]]:
        """End the live sessions of each active resident of the property beyond ``max_sessions`` (a lowered plan
        limit, set ``by`` the operator), keeping the most recently used; return the accounts and sessions ended
        (each audited)."""
        now = self._clock.now()
        idle_since = now - self.settings.idle_timeout
        where = "property_id = ? AND role = ? AND status = ?"

        def trim(db: sqlite_utils.Database) -> list[tuple[Account, Session]]:
            ended: list[tuple[Account, Session]] = []
            with transaction(db):  # with open_session's: a sign-in meanwhile cannot slip past the new limit
                for account in store.accounts_where(
                    db, where, [property_id, str(Role.RESIDENT), str(AccountStatus.ACTIVE)]
                ):
                    live = [s for s in store.sessions_of(db, account.id) if _live(s, now, idle_since)]
                    live.sort(key=lambda s: (s.last_used_at, s.created_at), reverse=True)
                    for surplus in live[max_sessions:]:
                        store.revoke_sessions(db, account.id, now.isoformat(), PLAN_LIMIT_LOWERED, surplus.id)
                        ended.append((account, surplus))
            return ended

        ended = await self._run(trim)
        for account, session in ended:
            self._notify(account.id, session.id)
            await self._audit.record(
                by,
                "session.ended_by_plan",
                property_id=property_id,
                unit_id=account.unit_id,
                target=session.id,
                detail={"account": account.id, "client": session.client, "app_devices_per_account": max_sessions},
            )
        if ended:
            log.info("sessions over the plan's limit ended", extra={"property": property_id, "count": len(ended)})
        return ended

    def _notify(self, account_id: str, session_id: str | None) -> None:
        for callback in self._revoked_listeners:
            callback(account_id, session_id)

    async def sessions(self, account_id: str, *, by: Principal | None = None) -> list[Session]:
        """Every session of an account, newest first. ``by``: the operator reading them (audited; NotFound for an
        unknown account)."""
        if by is not None:
            await self._audit.record(by, "account.read_sessions", target=(await self.get(account_id)).id)
        return await self._run(lambda db: store.sessions_of(db, account_id))

    # --- status ------------------------------------------------------------------------------------

    async def get(self, account_id: str) -> Account:
        """The account with that id; NotFound otherwise."""
        account = await self._run(lambda db: store.account_by_id(db, account_id))
        if account is None:
            raise NotFound(f"no account {account_id!r}", code="account_not_found")
        return account

    async def find(self, where: str | None = None, args: list[Any] | None = None) -> list[Account]:
        """Accounts matching an SQL condition (callers pass fixed conditions, values as parameters)."""
        return await self._run(lambda db: store.accounts_where(db, where, args or []))

    async def list_accounts(self, role: Role | None, property_id: str | None, *, by: Principal) -> list[Account]:
        """Accounts, optionally of one role or property, read by the operator (audited)."""
        clauses, args = [], []
        if role is not None:
            clauses.append("role = ?")
            args.append(str(role))
        if property_id is not None:
            clauses.append("property_id = ?")
            args.append(property_id)
        accounts = await self.find(" AND ".join(clauses) or None, args)
        await self._audit.record(
            by, "account.list", property_id=property_id, detail={"role": role, "count": len(accounts)}
        )
        return accounts

    async def residents(self, unit: UnitRef, *, by: Principal | None = None) -> list[Account]:
        """The unit's resident accounts that have not ended. ``by``: the staff member reading them (audited)."""
        where = "unit_id = ? AND role = ? AND status != 'terminated'"
        residents = await self._run(lambda db: store.accounts_where(db, where, [unit.id, str(Role.RESIDENT)]))
        if by is not None:
            await self._audit.record(by, "unit.read_residents", property_id=unit.property_id, unit_id=unit.id)
        return residents

    async def set_status(self, account_id: str, status: AccountStatus, reason: str | None, *, by: Principal) -> Account:
        """The operator suspends (never their own account) or re-enables an account; suspending revokes its
        sessions at once (audited)."""
        if status is not AccountStatus.ACTIVE:
            _not_own(by, account_id)
        account = await self.get(account_id)
        if account.status is AccountStatus.TERMINATED:
            raise Conflict("a terminated account can never be used again", code="account_terminated")
        if status is AccountStatus.ACTIVE and account.activated_at is None:
            raise Conflict("the account was never activated", code="account_not_activated")
        await self._run(lambda db: store.set_status(db, account_id, status, reason))
        if status is not AccountStatus.ACTIVE:
            await self.revoke_sessions(account_id, f"account {status}")
        changed = await self.get(account_id)
        if status is AccountStatus.ACTIVE:
            await self._audit_about(by, "account.enable", changed)
        else:
            await self._audit_about(by, "account.disable", changed, detail={"reason": reason})
        return changed

    async def terminate(self, account_id: str, reason: str, *, by: Principal | None = None) -> Account:
        """End an account for good: sessions revoked, name and password erased, the username freed. ``by``: the
        operator who ends it (never their own; audited); None for a move-out (audited as the move-out)."""
        if by is not None:
            _not_own(by, account_id)
        account = await self.get(account_id)
        now = self._clock.now().isoformat()
        await self._run(lambda db: store.end_account(db, account.id, reason, now))
        await self.revoke_sessions(account.id, reason)
        ended = await self.get(account.id)
        if by is not None:
            await self._audit_about(by, "account.terminate", ended, detail={"reason": reason})
        return ended

    async def unlock(self, username: str, *, by: Principal) -> None:
        """The operator clears a username's failed logins and lockouts from every source (audited)."""
        await self._run(lambda db: store.clear_attempts(db, username))
        await self._audit.record(by, "account.unlock", target=username)

    async def _audit_about(
        self,
        by: Principal,
        action: str,
        account: Account,
        *,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        # An entry about an account carries its property and unit, so the property's audit shows it.
        await self._audit.record(
            by, action, property_id=account.property_id, unit_id=account.unit_id, target=target or account.id,
            detail=detail,
        )  # fmt: skip

    # --- internals ---------------------------------------------------------------------------------

    def _row(
        self,
        username: str,
        role: Role,
        property_id: str | None,
        unit_id: str | None,
        display_name: str | None,
        created_by: str,
        now: datetime,
    ) -> dict[str, Any]:
        return {
            "id": uuid.uuid4().hex,
            "username": username,
            "display_name": display_name,
            "role": role,
            "property_id": property_id,
            "unit_id": unit_id,
            "password_hash": None,
            "status": AccountStatus.PENDING,
            "status_reason": None,
            "created_at": now.isoformat(),
            "created_by": created_by,
            "activated_at": None,
            "ended_at": None,
        }

    async def _insert(self, row: dict[str, Any], code: tuple[str, str] | None) -> None:
        def insert(db: sqlite_utils.Database) -> bool:
            if store.account_by_username(db, row["username"]) is not None:
                return False
            store.insert_account(db, row, code)
            return True

        if not await self._run(insert):
            raise Conflict(f"username {row['username']!r} is taken", code="username_taken", field="username")


def _with_hash(db: sqlite_utils.Database, username: str) -> tuple[Account, str | None] | None:
    account = store.account_by_username(db, username)
    return None if account is None else (account, store.password_hash(db, account.id))


def _not_own(by: Principal, account_id: str) -> None:
    # An operator who suspends or ends their own account may leave nobody to administer the gateway.
    if account_id == by.account.id:
        raise Conflict("you cannot disable or end your own account; another operator can", code="own_account")


def _live(session: Session, now: datetime, idle_since: datetime) -> bool:
    return session.revoked_at is None and session.expires_at > now and session.last_used_at > idle_since


def status_error(account: Account) -> AuthError | None:
    """Why the account cannot be used now (suspended, with the operator's reason; terminated; not activated)."""
    if account.status is AccountStatus.SUSPENDED:
        reason = f": {account.status_reason}" if account.status_reason else ""
        return AuthError(
            f"the account is disabled{reason}", code="account_disabled", extra={"reason": account.status_reason}
        )
    if account.status is AccountStatus.TERMINATED:
        return AuthError("the account has ended and can never be used again", code="account_terminated")
    if account.status is not AccountStatus.ACTIVE:
        return AuthError("the account is not activated yet", code="account_not_active")
    return None
