"""The policy service: keeps contracts, agreement versions and acceptances, and applies ``decide`` to requests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from pydantic import TypeAdapter

from devices import DeviceKind

from ..accounts import Account, Principal, Role, Session
from ..accounts.account_service import SessionLimit
from ..audit import AuditLog
from ..building import Binding, BuildingService, Unit
from ..clock import Clock
from ..core.registry import Registry
from ..core.typed_command import TypedCommand
from ..errors import Conflict, InvalidRequest, NotFound, PolicyRefused
from ..storage import Database
from . import store
from .decide import (
    admission_refusal,
    app_refusal,
    binding_refusal,
    contract_refusal,
    decide,
    opt_out_deadline,
    opt_out_refusal,
)
from .models import (
    AgreementRecord,
    AgreementState,
    AgreementVersion,
    Allowed,
    AppVersion,
    AppVersionCheck,
    Contract,
    ControlCommand,
    ControlRequest,
    ControlTarget,
    Plan,
    Refusal,
    RefusalCode,
    SecondLogin,
)

__all__ = ["DEVICE_KIND_PRIORITY", "PolicyService", "UnitAgreements", "main_kind", "refused"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_CONTRACT_JSON = TypeAdapter(Contract)
_CONTRACT_AS_SET = ("status", "status_reason", "starts_at", "ends_at", "offers_service", "internet", "plan")
# The audit entry of a contract change carries the contract as the operator sent it.

MIN_APP_VERSION = "min_app_version"
EFFECTIVE_GRACE = timedelta(minutes=5)  # clock skew allowed for "effective now" versions sent with a timestamp

DEVICE_KIND_PRIORITY: tuple[DeviceKind, ...] = (
    DeviceKind.LOCK,
    DeviceKind.THERMOSTAT,
    DeviceKind.LIGHT,
    DeviceKind.SWITCH,
    DeviceKind.LEAK_SENSOR,
    DeviceKind.CONTACT_SENSOR,
    DeviceKind.BINARY_SENSOR,
    DeviceKind.TEMPERATURE_SENSOR,
    DeviceKind.SENSOR,
    DeviceKind.BATTERY_SENSOR,
)


UnitAgreements = tuple[AgreementVersion | None, set[str] | None, list[tuple[Unit, list[store.ResidentAgreement]]]]
"""The version in effect, the versions that count as up to date (None while none is in effect), and each unit of a
property with its current residents' agreement records."""


def main_kind(kinds: set[DeviceKind]) -> DeviceKind | None:
    """A device's main kind among its entities' kinds (a lock with a battery sensor is a lock)."""
    return next((k for k in DEVICE_KIND_PRIORITY if k in kinds), None)


def refused(refusal: Refusal) -> PolicyRefused:
    """The exception that carries a refusal to the API."""
    return PolicyRefused(refusal.detail, code=str(refusal.code), link=str(refusal.link), extra=refusal.extra)


class PolicyService:
    """Contracts, agreement versions, acceptances and the minimum app version; every control goes through here."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        building: BuildingService,
        registry: Registry,
        *,
        audit: AuditLog,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit  # the operator's rule changes and staff reads are recorded here
        self._building = building
        self._registry = registry
        self._contracts: dict[str, Contract] = {}
        self._versions: tuple[AgreementVersion, ...] = ()
        self._records: dict[str, AgreementRecord] = {}  # account id -> record, filled on first use
        self._min_app: AppVersion | None = None
        self._limits = asyncio.Lock()  # a limit check and the write it admits happen together

    async def load(self) -> None:
        """Read contracts, agreement versions and settings (once, at start)."""
        contracts, versions, minimum = await self._db.run(
            lambda db: (store.load_contracts(db), store.load_versions(db), store.get_setting(db, MIN_APP_VERSION))
        )
        self._contracts = {c.property_id: c for c in contracts}
        self._versions = tuple(versions)
        self._min_app = None if minimum is None else AppVersion.parse(minimum)

    # --- the decision ------------------------------------------------------------------------------

    async def authorize(
        self, account: Account, session: Session | None, app: AppVersionCheck, command: TypedCommand
    ) -> Allowed:
        """Allowed if every link holds now for this typed command; PolicyRefused naming the failed link otherwise.
        Nothing is sent here."""
        device_id = command.entity.device_id
        contract = self.contract_of_unit(account.unit_id)
        request = ControlRequest(
            contract=contract,
            plan=None if contract is None else contract.plan,
            agreement=await self.agreement_state(account.id),
            account=account,
            session=session,
            app=app,
            device=ControlTarget(device_id, self._building.unit_of_device(device_id)),
            command=ControlCommand(command),
        )
        decision = decide(request, self._clock.now())
        if isinstance(decision, Refusal):
            log.info(
                "command refused: %s",
                decision.code,
                extra={"account": account.id, "entity": command.entity.id, "link": str(decision.link)},
            )
            raise refused(decision)
        return decision

    def check_service(self, unit_id: str | None) -> None:
        """PolicyRefused unless the unit's property has a contract in force (the service exists)."""
        refusal = contract_refusal(self.contract_of_unit(unit_id), self._clock.now())
        if refusal is not None:
            raise refused(refusal)

    # --- app versions ------------------------------------------------------------------------------

    @property
    def min_app_version(self) -> AppVersion | None:
        """The operator's minimum app version."""
        return self._min_app

    def app_check(self, reported: str | None) -> AppVersionCheck:
        """The client's stated version against the minimum; 422 ``app_version_invalid`` if it is not a version."""
        try:
            version = None if reported is None else AppVersion.parse(reported.strip())
        except ValueError as exc:
            raise InvalidRequest(f"X-App-Version: {exc}", code="app_version_invalid", field="X-App-Version") from exc
        return AppVersionCheck(self._min_app, version)

    def check_app(self, check: AppVersionCheck) -> None:
        """PolicyRefused (``app_update_required``) for an app older than the minimum."""
        refusal = app_refusal(check)
        if refusal is not None:
            raise refused(refusal)

    async def set_min_app_version(self, version: str | None, *, by: Principal) -> AppVersion | None:
        """The operator sets (or clears) the minimum app version (audited)."""
        parsed = None if version is None else self.app_check(version).reported
        now = self._clock.now()
        text = None if parsed is None else str(parsed)
        await self._db.run(lambda db: store.set_setting(db, MIN_APP_VERSION, text, now, by.actor))
        self._min_app = parsed
        await self._audit.record(by, "app.minimum_version", detail={"minimum_app_version": version})
        return parsed

    # --- contracts and plan limits -----------------------------------------------------------------

    def contract(self, property_id: str) -> Contract | None:
        """The property's contract record."""
        return self._contracts.get(property_id)

    def recorded_contract(self, property_id: str) -> Contract:
        """The property's contract; NotFound for an unknown property or one with no contract recorded."""
        contract = self._contracts.get(self._building.property(property_id).id)
        if contract is None:
            raise NotFound(f"no contract recorded for {property_id!r}", code="contract_not_found")
        return contract

    def contract_of_unit(self, unit_id: str | None) -> Contract | None:
        """The contract of the unit's property."""
        if unit_id is None:
            return None
        try:
            unit = self._building.unit(unit_id)
        except NotFound:
            return None
        return self._contracts.get(unit.property_id)

    async def set_contract(self, contract: Contract, *, by: Principal) -> Contract:
        """The operator records (or replaces) a property's contract (audited); it applies to the very next
        request."""
        self._building.property(contract.property_id)  # NotFound for an unknown property
        if contract.ends_at is not None and contract.ends_at <= contract.starts_at:
            raise InvalidRequest(
                "the contract must end after it starts", code="contract_dates_invalid", field="ends_at"
            )
        await self._db.run(lambda db: store.upsert_contract(db, contract))
        self._contracts[contract.property_id] = contract
        log.info(
            "lessor contract recorded",
            extra={"property": contract.property_id, "status": str(contract.status), "by": contract.updated_by},
        )
        recorded = _CONTRACT_JSON.dump_python(contract, mode="json")
        await self._audit.record(
            by,
            "contract.set",
            property_id=contract.property_id,
            target=contract.property_id,
            detail={k: recorded[k] for k in _CONTRACT_AS_SET},
        )
        return contract

    async def bind_device(self, unit: Unit, device_id: str, *, by: Principal) -> Binding:
        """Staff bind a device to a unit within the plan's limits (device kinds, devices per unit); audited."""
        async with self._limits:
            plan = self._plan(unit.property_id)
            kind = main_kind({e.kind for e in self._registry.entities_of_device(device_id)})
            bound = self._building.devices_of_unit(unit.id)
            refusal = binding_refusal(plan, kind, len(bound), device_id in bound)
            if refusal is not None:
                raise refused(refusal)
            binding = await self._building.bind(device_id, unit.id, by.actor)
        await self._audit.record(by, "device.bind", property_id=unit.property_id, unit_id=unit.id, target=device_id)
        return binding

    async def admit_resident(
        self, unit: Unit, count: Callable[[], Awaitable[int]], create: Callable[[], Awaitable[T]]
    ) -> T:
        """Run ``create`` (a move-in) if the unit has room for one more resident account under the plan."""
        async with self._limits:
            refusal = admission_refusal(self._plan(unit.property_id), await count())
            if refusal is not None:
                raise refused(refusal)
            return await create()

    async def session_limit(self, account: Account) -> SessionLimit | None:
        """The single-device licence: how many app devices a resident may use at a time (staff: no limit)."""
        if account.role is not Role.RESIDENT:
            return None
        contract = self.contract_of_unit(account.unit_id)
        plan = Plan() if contract is None else contract.plan  # the agreement's default: one app device
        return SessionLimit(plan.app_devices_per_account, plan.second_login is SecondLogin.DISPLACE)

    def _plan(self, property_id: str) -> Plan:
        contract = self._contracts.get(property_id)
        if contract is None:
            raise PolicyRefused(
                "record the lessor's contract (with its plan) for this property first",
                code=RefusalCode.LESSOR_CONTRACT_MISSING,
                link="contract",
            )
        return contract.plan

    # --- the agreement -----------------------------------------------------------------------------

    def versions(self) -> tuple[AgreementVersion, ...]:
        """Every published version, oldest effective first."""
        return self._versions

    def current_version(self) -> AgreementVersion | None:
        """The version in effect now."""
        return AgreementState(self._versions, AgreementRecord()).current(self._clock.now())

    def acceptable_versions(self) -> set[str]:
        """The version in effect now and every later published one: what a resident may accept, and what counts
        as up to date."""
        return {v.version for v in AgreementState(self._versions, AgreementRecord()).not_superseded(self._clock.now())}

    async def publish(
        self, version: str, text: str, effective_at: datetime | None, *, by: Principal
    ) -> AgreementVersion:
        """The operator publishes a new version (audited); from its effective time on, residents must accept it
        before controlling anything."""
        now = self._clock.now()
        effective = effective_at or now
        if effective < now - EFFECTIVE_GRACE:
            raise InvalidRequest(
                "a version cannot take effect in the past", code="effective_at_in_past", field="effective_at"
            )
        latest = max((v.effective_at for v in self._versions), default=None)
        if latest is not None and effective < latest:
            raise Conflict(
                f"a later version takes effect at {latest.isoformat()}; versions take effect in order",
                code="agreement_out_of_order",
                field="effective_at",
            )
        new = AgreementVersion(version, effective, text, now)
        if not await self._db.run(lambda db: store.insert_version(db, new, by.actor)):
            raise Conflict(f"version {version!r} exists already", code="agreement_version_exists", field="version")
        self._versions = (*self._versions, new)
        log.info("agreement version published", extra={"version": version, "effective_at": effective.isoformat()})
        await self._audit.record(
            by,
            "agreement.publish",
            target=version,
            detail={"effective_at": effective.isoformat(), "characters": len(text)},
        )
        return new

    async def record(self, account_id: str, *, by: Principal | None = None) -> AgreementRecord:
        """The account's acceptances and opt-out. ``by``: the operator reading them (audited)."""
        if by is not None:
            await self._audit.record(by, "agreement.read_record", target=account_id)
        cached = self._records.get(account_id)
        if cached is None:
            cached = await self._db.run(lambda db: store.record_of(db, account_id))
            self._records[account_id] = cached
        return cached

    async def agreement_state(self, account_id: str) -> AgreementState:
        """The published versions and the account's record."""
        return AgreementState(self._versions, await self.record(account_id))

    async def acceptances(self, account_id: str) -> list[store.Acceptance]:
        """The account's acceptances (kept after the account ends)."""
        return await self._db.run(lambda db: store.acceptances_of(db, account_id))

    async def accept(self, principal: Principal, version: str, age_confirmed: bool, client: str | None) -> None:
        """Record the resident's acceptance of the current (or an already published later) version."""
        if not age_confirmed:
            raise InvalidRequest(
                "accepting the agreement requires stating that you are 18 or older",
                code="age_confirmation_required",
                field="age_confirmed",
            )
        now = self._clock.now()
        if version not in self.acceptable_versions():
            raise Conflict(
                f"version {version!r} is not the one in effect",
                code="agreement_version_not_current",
                field="version",
            )
        account_id, session_id = principal.account.id, principal.session.id
        await self._db.run(lambda db: store.insert_acceptance(db, account_id, version, now, client, session_id))
        self._records.pop(account_id, None)
        log.info("agreement accepted", extra={"account": account_id, "version": version})

    async def opt_out(self, principal: Principal, client: str | None) -> tuple[datetime, bool]:
        """Record the arbitration opt-out within 30 days of the first acceptance; return when it was recorded and
        whether this call recorded it (False: it was on record already, nothing changed)."""
        account_id = principal.account.id
        record = await self.record(account_id)
        if record.opted_out_at is not None:
            return record.opted_out_at, False
        if opt_out_deadline(record) is None:
            raise Conflict("accept the agreement first", code="agreement_not_accepted")
        now = self._clock.now()
        refusal = opt_out_refusal(record, now)
        if refusal is not None:
            raise refused(refusal)
        await self._db.run(lambda db: store.insert_opt_out(db, account_id, now, client))
        self._records.pop(account_id, None)
        log.info("arbitration opt-out recorded", extra={"account": account_id})
        return now, True

    async def property_agreements(self, property_id: str) -> list[store.ResidentAgreement]:
        """Each current resident of the property with every acceptance and their opt-out (console)."""
        return await self._db.run(lambda db: store.property_agreements(db, property_id))

    async def read_agreements(self, property_id: str, *, by: Principal) -> UnitAgreements:
        """Per unit, who has accepted which version, read by a manager (audited)."""
        found = await self._unit_agreements(property_id)
        await self._audit.record(by, "property.read_agreements", property_id=property_id)
        return found

    async def read_console(self, property_id: str, *, by: Principal) -> UnitAgreements:
        """Per unit, each resident's agreement records as the console shows them, read by a manager (audited)."""
        found = await self._unit_agreements(property_id)
        shown = sum(len(residents) for _, residents in found[2])
        await self._audit.record(by, "property.read_console", property_id=property_id, detail={"residents": shown})
        return found

    async def _unit_agreements(self, property_id: str) -> UnitAgreements:
        current = self.current_version()
        fresh = None if current is None else self.acceptable_versions()
        rows = await self.property_agreements(property_id)
        return current, fresh, [(u, [r for r in rows if r.unit_id == u.id]) for u in self._building.units(property_id)]

    def forget(self, account_id: str) -> None:
        """Drop a cached record (e.g. after the account ended); it is read again from the database if needed."""
        self._records.pop(account_id, None)
