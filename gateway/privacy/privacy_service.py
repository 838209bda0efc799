"""Residents' rights: the export, requests (access, correction, deletion, restriction) handled by staff with a
deadline, an answer naming legal holds and an appeal, the disclosure log, and erasure."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import sqlite_utils

from ..accounts import Account, AccountService, AccountStatus, Principal, Role
from ..accounts.store import set_display_name
from ..audit import AuditLog
from ..building import BuildingService
from ..clock import Clock
from ..errors import AccessDenied, Conflict, InvalidRequest, NotFound
from ..storage import Database
from . import store
from .erasure import Person, erase, forget_former, pseudonym_of
from .export import SECTIONS, Cursor, Subject, page
from .models import HOLDS, Disclosure, Held, PrivacyRequest, PrivacySettings, RefusalCode, RequestKind, RequestState

__all__ = ["ERASED", "PrivacyService"]

log = logging.getLogger(__name__)
ERASED = "erased-resident"  # how the unit's command history names a person after an erasure
EXPORT_PAGE = 500  # rows per read: the export's memory is one page, however long the history
EXPORT_FORMAT = "aptgateway-export/1"
Settle = Callable[[str], Awaitable[None]]
Forget = Callable[[str], None]
_ANSWERS = {"grant": RequestState.GRANTED, "refuse": RequestState.REFUSED, "answer": RequestState.ANSWERED}


class PrivacyService:
    """Every privacy request, disclosure, export and erasure goes through here (audited)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        accounts: AccountService,
        building: BuildingService,
        *,
        audit: AuditLog,
        settle: Settle,
        forget: Forget,
        defaults: PrivacySettings | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._accounts = accounts
        self._building = building
        self._audit = audit
        self._settle = settle  # waits until no command of an actor is in flight (the command gate)
        self._forget = forget  # drops cached per-account records (the policy service)
        self._defaults = defaults or PrivacySettings()

    # --- settings ----------------------------------------------------------------------------------

    async def settings(self) -> PrivacySettings:
        """The operator's settings (deadline, whether managers handle their property's requests)."""
        return await self._db.run(partial(store.read_settings, default=self._defaults))

    async def set_settings(self, settings: PrivacySettings, *, by: Principal) -> PrivacySettings:
        """The operator sets the deadline and whether managers handle requests (audited)."""
        days = settings.deadline.days
        if not 1 <= days <= 90 or settings.deadline != timedelta(days=days):
            raise InvalidRequest("the deadline is 1 to 90 whole days", code="deadline_invalid", field="deadline_days")
        now = self._clock.now().isoformat()

        def write(db: sqlite_utils.Database) -> None:
            store.write_setting(db, store.SETTING_DEADLINE, str(days), now, by.actor)
            store.write_setting(
                db, store.SETTING_MANAGERS, "true" if settings.managers_handle else "false", now, by.actor
            )

        await self._db.run(write)
        await self._audit.record(
            by, "privacy.settings", detail={"deadline_days": days, "managers_handle": settings.managers_handle}
        )
        return await self.settings()

    # --- the export --------------------------------------------------------------------------------

    async def export(self, principal: Principal) -> AsyncIterator[bytes]:
        """Everything the gateway holds about the signed-in person as one JSON document, streamed a page at a
        time; the export is logged as a disclosure (and audited) before the first byte."""
        account = principal.account
        now = self._clock.now()
        export_id = f"ex_{secrets.token_hex(8)}"
        subject = Subject(
            account_id=account.id,
            actor=account.actor,
            unit_id=account.unit_id if account.role is Role.RESIDENT else None,
            since=(account.activated_at or account.created_at).isoformat(),
            until=None if account.ended_at is None else account.ended_at.isoformat(),
        )
        sections = [s.name for s in SECTIONS]
        await self._db.run(
            partial(
                store.insert_disclosure,
                account_id=account.id,
                at=now.isoformat(),
                kind="export",
                recipient="you (a copy of your own data)",
                reference=export_id,
                detail={"sections": sections},
            )
        )
        await self._audit.record(
            principal, "privacy.export", property_id=account.property_id, unit_id=account.unit_id, target=account.id,
            detail={"export": export_id},
        )  # fmt: skip
        return self._stream(account, subject, export_id, now)

    async def _stream(self, account: Account, subject: Subject, export_id: str, now: datetime) -> AsyncIterator[bytes]:
        head = {
            "format": EXPORT_FORMAT,
            "export_id": export_id,
            "generated_at": now.isoformat(),
            "account": {
                "id": account.id,
                "username": account.username,
                "display_name": account.display_name,
                "role": str(account.role),
                "property_id": account.property_id,
                "unit_id": account.unit_id,
                "status": str(account.status),
                "created_at": account.created_at.isoformat(),
                "activated_at": None if account.activated_at is None else account.activated_at.isoformat(),
                "ended_at": None if account.ended_at is None else account.ended_at.isoformat(),
            },
            "residency": {"unit_id": subject.unit_id, "since": subject.since, "until": subject.until},
        }
        yield json.dumps(head)[:-1].encode()
        for section in SECTIONS:
            yield f', "{section.name}": ['.encode()
            after: Cursor | None = None
            first = True
            while True:
                rows, after = await self._db.run(
                    partial(page, section=section, subject=subject, after=after, limit=EXPORT_PAGE)
                )
                chunk = b", ".join(json.dumps(row, default=str).encode() for row in rows)
                if chunk:
                    yield chunk if first else b", " + chunk
                    first = False
                if after is None:
                    break
            yield b"]"
        yield b"}\n"

    # --- correction --------------------------------------------------------------------------------

    async def correct(self, principal: Principal, display_name: str | None) -> Account:
        """Correct what the person may correct themselves: their display name (audited: the field, not its value)."""
        account = principal.account
        await self._accounts.rewrite(partial(set_display_name, account_id=account.id, display_name=display_name))
        await self._audit.record(
            principal, "account.correct", property_id=account.property_id, unit_id=account.unit_id,
            target=account.id, detail={"fields": ["display_name"]},
        )  # fmt: skip
        return await self._accounts.get(account.id)

    # --- requests: the resident's side -------------------------------------------------------------

    async def file(self, principal: Principal, kind: RequestKind, detail: str | None) -> PrivacyRequest:
        """A resident files a request; answered within the deadline (one pending request per kind)."""
        account = principal.account
        now = self._clock.now()
        deadline = (await self.settings()).deadline
        row = {
            "id": f"pr_{secrets.token_hex(8)}",
            "account_id": account.id,
            "property_id": account.property_id,
            "unit_id": account.unit_id,
            "kind": str(kind),
            "state": str(RequestState.OPEN),
            "detail": detail,
            "created_at": now.isoformat(),
            "due_at": (now + deadline).isoformat(),
            "handled_by": None,
            "answered_at": None,
            "answer": None,
            "refusal_code": None,
            "held": "[]",
            "appealed_at": None,
            "appeal": None,
            "closed_at": None,
            "updated_at": now.isoformat(),
        }
        request = await self._db.run(partial(store.insert_request, row=row))
        if request is None:  # checked in the insert's own transaction: two at once make one
            raise Conflict(f"you already have a {kind} request waiting for an answer", code="request_pending")
        await self._record(principal, "privacy.request", request, {"kind": str(kind)})
        return request

    async def requests_of(self, account_id: str) -> list[PrivacyRequest]:
        """The person's requests, newest first."""
        return await self._db.run(partial(store.requests_of, account_id=account_id))

    async def own_request(self, principal: Principal, request_id: str) -> PrivacyRequest:
        """One of the signed-in person's requests (404 for any other id)."""
        request = await self._db.run(partial(store.request_by_id, request_id=request_id))
        if request is None or request.account_id != principal.account.id:
            raise NotFound(f"no request {request_id!r}", code="request_not_found")
        return request

    async def appeal(self, principal: Principal, request_id: str, reason: str) -> PrivacyRequest:
        """The resident appeals an answer (granted, refused or answered): it waits for staff again, with a new
        deadline."""
        request = await self.own_request(principal, request_id)
        if request.state not in (RequestState.GRANTED, RequestState.REFUSED, RequestState.ANSWERED):
            raise Conflict(f"only an answered request can be appealed; this one is {request.state}",
                           code="request_not_answered")  # fmt: skip
        if request.appealed_at is not None:
            raise Conflict("this request was appealed once already", code="request_already_appealed")
        now = self._clock.now()
        deadline = (await self.settings()).deadline
        changed = await self._update(request, state=RequestState.APPEALED, appealed_at=now.isoformat(),
                                     appeal=reason, due_at=(now + deadline).isoformat())  # fmt: skip
        await self._record(principal, "privacy.appeal", changed)
        return changed

    async def withdraw(self, principal: Principal, request_id: str) -> PrivacyRequest:
        """The resident closes their own request (withdrawn while waiting, or done with the answer)."""
        request = await self.own_request(principal, request_id)
        if request.state is RequestState.CLOSED:
            raise Conflict("the request is closed already", code="request_closed")
        changed = await self._update(request, state=RequestState.CLOSED, closed_at=self._clock.now().isoformat())
        if request.kind is RequestKind.RESTRICTION and request.state is RequestState.GRANTED:
            await self._db.run(partial(store.set_restriction, account_id=request.account_id, request_id=None, at=""))
        await self._record(principal, "privacy.withdraw", changed)
        return changed

    async def disclosures(self, principal: Principal, after: int, limit: int) -> list[Disclosure]:
        """The signed-in person's disclosure log, oldest first."""
        return await self._db.run(
            partial(store.disclosures_of, account_id=principal.account.id, after=after, limit=limit)
        )

    # --- requests: the staff's side ----------------------------------------------------------------

    async def queue(self, by: Principal, pending_only: bool, limit: int) -> list[PrivacyRequest]:
        """The requests staff may handle (the operator: all; a manager: their property's, if the operator allows),
        by deadline; an audited read."""
        property_id = await self._scope(by)
        found = await self._db.run(
            partial(store.queue, property_id=property_id, pending_only=pending_only, limit=limit)
        )
        await self._audit.record(by, "privacy.read_queue", property_id=property_id, detail={"count": len(found)})
        return found

    async def take(self, by: Principal, request_id: str) -> PrivacyRequest:
        """Staff start on an open request (in progress)."""
        request = await self._handled(by, request_id)
        if request.state is not RequestState.OPEN:
            raise Conflict(f"only an open request can be taken; this one is {request.state}", code="request_not_open")
        changed = await self._update(request, state=RequestState.IN_PROGRESS, handled_by=by.account.id)
        await self._record(by, "privacy.take", changed)
        return changed

    async def decide(
        self, by: Principal, request_id: str, outcome: str, answer: str, refusal_code: RefusalCode | None
    ) -> PrivacyRequest:
        """Staff answer a waiting request: grant (a deletion erases the person, a restriction takes force), refuse
        (naming a stable refusal code) or answer (access, correction); a deletion's answer names what legal holds
        keep."""
        request = await self._handled(by, request_id)
        if not request.state.pending:
            raise Conflict(f"the request is {request.state}, not waiting for an answer", code="request_not_pending")
        state = _ANSWERS[outcome]
        if state is RequestState.REFUSED and refusal_code is None:
            raise InvalidRequest("a refusal names its reason", code="refusal_code_required", field="refusal_code")
        if state is RequestState.GRANTED and request.kind in (RequestKind.ACCESS, RequestKind.CORRECTION):
            state = RequestState.ANSWERED  # nothing to grant beyond the answer itself
        held = list(HOLDS) if request.kind is RequestKind.DELETION else []
        now = self._clock.now().isoformat()
        changed = await self._update(
            request, state=state, handled_by=by.account.id, answered_at=now, answer=answer,
            refusal_code=None if state is not RequestState.REFUSED else str(refusal_code), held=json.dumps(held),
        )  # fmt: skip
        detail: dict[str, Any] = {"outcome": str(state)}
        if refusal_code is not None and state is RequestState.REFUSED:
            detail["refusal_code"] = str(refusal_code)
        await self._record(by, "privacy.answer", changed, detail)
        if state is RequestState.GRANTED and request.kind is RequestKind.RESTRICTION:
            await self._db.run(partial(store.set_restriction, account_id=request.account_id, request_id=request.id,
                                       at=now))  # fmt: skip
        if state is RequestState.GRANTED and request.kind is RequestKind.DELETION:
            account = await self._accounts.get(request.account_id)
            await self.erase(account, by=by, reason=f"deletion request {request.id}")
            erased: PrivacyRequest | None = await self._db.run(partial(store.request_by_id, request_id=request.id))
            changed = erased or changed
        return changed

    async def close(self, by: Principal, request_id: str) -> PrivacyRequest:
        """Staff close an answered request (no appeal came, or the appeal was answered)."""
        request = await self._handled(by, request_id)
        if request.state.pending or request.state is RequestState.CLOSED:
            raise Conflict(f"only an answered request can be closed; this one is {request.state}",
                           code="request_not_answered")  # fmt: skip
        changed = await self._update(request, state=RequestState.CLOSED, closed_at=self._clock.now().isoformat())
        await self._record(by, "privacy.close", changed)
        return changed

    # --- erasure, disclosures and holds --------------------------------------------------------------

    async def erase(self, account: Account, *, by: Principal | None, reason: str) -> str:
        """Remove the person from every table but what a legal hold keeps (re-keyed to a pseudonym, which is
        returned): the account ends, sessions go, names and history that name them go."""
        if account.role is not Role.RESIDENT:
            raise Conflict("only a resident's account is erased this way", code="not_a_resident")
        usernames = (account.username, f"former-{account.id}")
        if account.status is not AccountStatus.TERMINATED:
            await self._accounts.terminate(account.id, reason)
        self._forget(account.id)
        await self._settle(account.actor)  # a command under way records its outcome (with the actor) first
        await self._building.erase_personal_data(account.actor, ERASED)
        person = Person(account.id, account.actor, usernames, account.display_name)
        changed = await self._accounts.rewrite(partial(erase, person=person))
        pseudonym = pseudonym_of(account.id)
        await self._audit.record(by, "privacy.erase", property_id=account.property_id, target=pseudonym,
                                 detail={"rows": changed, "held": list(HOLDS)})  # fmt: skip
        log.info("person erased", extra={"pseudonym": pseudonym})
        return pseudonym

    async def forget_former(self, former: Account) -> None:
        """The last step of a move-out (``former``: the account as it was before it ended): the person's username
        and name go from every table; what is linked by the account id stays for the holds and retention."""
        person = Person(former.id, former.actor, (former.username, f"former-{former.id}"), former.display_name)
        changed = await self._accounts.rewrite(partial(forget_former, person=person))
        log.info("former resident's name and username removed", extra={"account": former.id, "rows": changed})

    def report_delivered(self, db: sqlite_utils.Database, unit_id: str | None, report_id: str, kind: str,
                         recipient: str, at: datetime) -> None:  # fmt: skip
        """Log a report delivered upstream as a disclosure to its unit's residents (on the writer thread, in the
        delivery's own transaction)."""
        store.report_disclosures(db, unit_id, at.isoformat(), recipient, report_id, kind)

    async def check_unrestricted(self, account_id: str) -> None:
        """Refuse (403 ``data_restricted``) a staff read of the person's activity while a restriction stands."""
        if await self._db.run(partial(store.is_restricted, account_id=account_id)):
            raise AccessDenied(
                "the person restricted the processing of their data: it is kept, not read", code="data_restricted"
            )

    async def erase_account(self, account_id: str, reason: str, *, by: Principal) -> str:
        """The operator erases a resident's account (e.g. a former resident who asks in writing, and can no longer
        sign in); the pseudonym under which the holds keep their records."""
        return await self.erase(await self._accounts.get(account_id), by=by, reason=reason)

    async def holds(self) -> Held:
        """What a purge must keep now (see ``held_now``)."""
        return await self._db.run(store.held)

    # --- internals ---------------------------------------------------------------------------------

    async def _scope(self, by: Principal) -> str | None:
        if by.role is Role.OPERATOR:
            return None
        if by.role is Role.MANAGER and (await self.settings()).managers_handle:
            return by.account.property_id
        raise AccessDenied("the operator handles privacy requests here", code="privacy_requests_operator_only")

    async def _handled(self, by: Principal, request_id: str) -> PrivacyRequest:
        scope = await self._scope(by)
        request = await self._db.run(partial(store.request_by_id, request_id=request_id))
        if request is None or (scope is not None and request.property_id != scope):
            raise NotFound(f"no request {request_id!r}", code="request_not_found")
        return request

    async def _update(self, request: PrivacyRequest, **changes: Any) -> PrivacyRequest:
        values = {k: str(v) if isinstance(v, RequestState) else v for k, v in changes.items()}
        values["updated_at"] = self._clock.now().isoformat()
        return await self._db.run(partial(store.update_request, request_id=request.id, changes=values))

    async def _record(
        self, by: Principal, action: str, request: PrivacyRequest, detail: dict[str, Any] | None = None
    ) -> None:
        await self._audit.record(
            by, action, property_id=request.property_id, unit_id=request.unit_id, target=request.id,
            detail={"kind": str(request.kind), "state": str(request.state), **(detail or {})},
        )  # fmt: skip
