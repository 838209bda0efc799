"""Rule 5 over HTTP: the self-test, testing status, reminders, failure reports, storms, outages and uptime.

All of it checks that the home automation works; none of it is a security or alarm system.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response

from ...checks import NOT_AN_ALARM, ComplianceStatus, Notification, Report, SelfTestResult, Trigger
from ...connectivity import month_window
from ...connectivity.models import Outage
from ..context import ApiContext
from ..deps import Ctx, Manager, Operator, Resident, Staff, own_property, own_unit, resident_unit
from ..problems import PROBLEM_RESPONSES
from ..schemas_checks import (
    ComplianceReportOut,
    ConnectivityOut,
    EndStormRequest,
    MySelfTestOut,
    OutageOut,
    ReportRequest,
    StormRequest,
    UnitUptimeOut,
    UptimeOut,
)

__all__ = ["operator_router", "property_router", "resident_router"]

resident_router = APIRouter(prefix="/me", tags=["self-test"], responses=PROBLEM_RESPONSES)
property_router = APIRouter(prefix="/properties", tags=["self-test"], responses=PROBLEM_RESPONSES)
operator_router = APIRouter(prefix="/operator", tags=["self-test"], responses=PROBLEM_RESPONSES)

Id = Annotated[str, Path(min_length=1, max_length=128)]
Limit = Annotated[int, Query(ge=1, le=200)]
# Bounded at the edge (a 422 naming the field): year 0000 or 9999-12 would overflow datetime, an over-long integer
# SQLite's 64 bits.
MonthQuery = Annotated[
    str | None,
    Query(pattern=r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$", description="YYYY-MM (UTC), 1970-01 to 2999-12"),
]
RowId = Annotated[int, Path(ge=1, le=2**62)]


# --- resident -------------------------------------------------------------------------------------


@resident_router.post("/self-test", operation_id="runMySelfTest")
async def run_my_test(principal: Resident, ctx: Ctx) -> SelfTestResult:
    """Test my home automation now: the building's uplink, the broker, and each of my devices asked for its state.

    Nothing is switched, locked or unlocked. This checks that the home automation works; it is not a security
    or alarm system. A failed test is reported to the internet provider and the operator.
    """
    unit_id = resident_unit(principal)
    ctx.policy.check_service(unit_id)
    return await ctx.checks.run_test(unit_id, Trigger.RESIDENT, principal.actor)


@resident_router.get("/self-test", operation_id="getMySelfTestStatus")
async def my_test_status(principal: Resident, ctx: Ctx) -> MySelfTestOut:
    """Whether my unit's test is ok, due, overdue or failing, why, and by when."""
    compliance = await ctx.checks.compliance(resident_unit(principal))
    return MySelfTestOut(compliance=compliance, note=NOT_AN_ALARM)


@resident_router.get("/self-tests", operation_id="listMySelfTests")
async def my_tests(principal: Resident, ctx: Ctx, limit: Limit = 20) -> list[SelfTestResult]:
    """My unit's self-tests, newest first."""
    return await ctx.checks.tests(resident_unit(principal), limit)


@resident_router.get("/notifications", operation_id="listMyNotifications")
async def my_notifications(
    principal: Resident,
    ctx: Ctx,
    after: Annotated[int, Query(ge=0, le=2**62, description="only notifications with a higher id (a cursor)")] = 0,
    limit: Limit = 50,
) -> list[Notification]:
    """Reminders queued for my app (test due, overdue or failed), oldest first, from my move-in on."""
    unit_id = resident_unit(principal)
    return await ctx.checks.notifications(unit_id, after, principal.account.created_at, limit)


@resident_router.post(
    "/reports",
    status_code=201,
    operation_id="fileMyReport",
    responses={200: {"model": Report, "description": "The report this Idempotency-Key already filed (a retry)"}},
)
async def file_report(
    body: ReportRequest,
    principal: Resident,
    ctx: Ctx,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            pattern=r"^[\x21-\x7e]{1,128}$",
            description="The app's key for this report: a retry with the same key is answered with the report it "
            "filed (200), never a second report; the same key with another description is 409 idempotency_key_reused",
        ),
    ] = None,
) -> Report:
    """Report a failure of my home automation by hand; it goes to the internet provider and the operator."""
    report, new = await ctx.checks.file_resident_report(
        resident_unit(principal),
        principal.actor,
        body.description,
        account_id=principal.account.id,
        client_key=idempotency_key,
    )
    if not new:
        response.status_code = 200
    return report


@resident_router.get("/reports", operation_id="listMyReports")
async def my_reports(principal: Resident, ctx: Ctx) -> list[Report]:
    """Failure reports about my unit, with when each was delivered."""
    return await ctx.checks.reports(unit_id=resident_unit(principal))


@resident_router.get("/uptime", operation_id="getMyUptime")
async def my_uptime(principal: Resident, ctx: Ctx, month: MonthQuery = None) -> UnitUptimeOut:
    """My unit's uptime over a calendar month (default: this one, so far)."""
    unit = ctx.building.unit(resident_unit(principal))
    figures = await _uptime(ctx, unit.property_id, month)
    return next(u for u in figures.units if u.unit_id == unit.id)


# --- property manager -----------------------------------------------------------------------------


@property_router.post("/{property_id}/units/{unit_id}/self-test", operation_id="runUnitSelfTest")
async def run_unit_test(property_id: Id, unit_id: Id, principal: Manager, ctx: Ctx) -> SelfTestResult:
    """Test a unit's home automation now (manager; audited). Nothing is actuated. Refused while the lessor's
    contract is not in force (no service, nothing to test)."""
    unit = own_unit(principal, ctx, property_id, unit_id)
    ctx.policy.check_service(unit.id)
    return await ctx.checks.run_staff_test(unit, by=principal)


@property_router.get("/{property_id}/compliance", operation_id="getComplianceReport")
async def compliance_report(property_id: Id, principal: Manager, ctx: Ctx) -> ComplianceReportOut:
    """Every unit's testing status, worst first: which are failing or overdue, since when, and what failed."""
    units = await ctx.checks.property_report(own_property(principal, ctx, property_id))
    counts = Counter(u.status for u in units)
    return ComplianceReportOut(
        property_id=property_id,
        generated_at=ctx.gateway.clock.now(),
        counts={s: counts.get(s, 0) for s in ComplianceStatus},
        units=units,
        note=NOT_AN_ALARM,
    )


@property_router.get("/{property_id}/outages", operation_id="listOutages")
async def list_outages(
    property_id: Id,
    principal: Staff,
    ctx: Ctx,
    month: MonthQuery = None,
) -> list[OutageOut]:
    """Outages that touched the property in a calendar month (default: this one): broadband, broker link,
    gateway power, its devices, and declared storms."""
    start, end = _month(ctx, month)
    outages = await ctx.checks.outages(own_property(principal, ctx, property_id), start, end)
    return [_outage_out(o) for o in outages]


@property_router.post("/{property_id}/storms", status_code=201, operation_id="declareStorm")
async def declare_storm(property_id: Id, body: StormRequest, principal: Manager, ctx: Ctx) -> OutageOut:
    """Declare a storm for the property (manager; audited): every unit's test becomes due once it is over."""
    now = ctx.gateway.clock.now()
    storm = await ctx.checks.declare_storm(
        own_property(principal, ctx, property_id), body.started_at or now, body.ended_at, body.description,
        by=principal,
    )  # fmt: skip
    return _outage_out(storm)


@property_router.post("/{property_id}/storms/{storm_id}/end", operation_id="endStorm")
async def end_storm(property_id: Id, storm_id: RowId, body: EndStormRequest, principal: Manager, ctx: Ctx) -> OutageOut:
    """Record that a declared storm is over (manager; audited)."""
    storm = await ctx.checks.end_storm(
        own_property(principal, ctx, property_id), storm_id, body.ended_at or ctx.gateway.clock.now(), by=principal
    )
    return _outage_out(storm)


@property_router.get("/{property_id}/uptime", operation_id="getPropertyUptime")
async def property_uptime(property_id: Id, principal: Manager, ctx: Ctx, month: MonthQuery = None) -> UptimeOut:
    """Per unit and per device, the share of a calendar month (default: this one, so far) they could be reached."""
    return await _uptime(ctx, own_property(principal, ctx, property_id), month)


@property_router.get("/{property_id}/reports", operation_id="listPropertyReports")
async def property_reports(property_id: Id, principal: Manager, ctx: Ctx) -> list[Report]:
    """Failure reports of the property, newest first, with delivery times."""
    return await ctx.checks.reports(property_id=own_property(principal, ctx, property_id))


# --- operator -------------------------------------------------------------------------------------


@operator_router.get("/reports", operation_id="listAllReports")
async def all_reports(principal: Operator, ctx: Ctx) -> list[Report]:
    """Every failure report, newest first, with delivery attempts and times."""
    return await ctx.checks.reports()


@operator_router.get("/connectivity", operation_id="getConnectivity")
async def connectivity(principal: Operator, ctx: Ctx) -> ConnectivityOut:
    """The broadband check, the broker link, outages going on now, and where reports go."""
    tracker = ctx.gateway.connectivity
    metrics = ctx.gateway.metrics
    last = tracker.uplink.last
    target = tracker.uplink.settings.target
    pending = [r for r in await ctx.checks.reports() if r.delivered_at is None]
    return ConnectivityOut(
        uplink_state=str(tracker.uplink.state),
        uplink_target=None if target is None else str(target),
        last_probe_at=None if last is None else last.at,
        last_probe_ok=None if last is None else last.ok,
        last_probe_error=None if last is None else last.error,
        broker_connected=ctx.gateway.link.connected,
        resyncs=dict(metrics.resyncs),
        recovered=dict(metrics.recovered),
        broker_dropped=dict(metrics.broker_dropped),
        last_resync_at=None if metrics.last_resync is None else metrics.last_resync[0],
        last_resync_reason=None if metrics.last_resync is None else metrics.last_resync[1],
        open_outages=[_outage_out(o) for o in tracker.open_now()],
        report_upstream=ctx.checks.outbox.upstream_description,
        reports_pending=len(pending),
    )


# --- helpers --------------------------------------------------------------------------------------


def _month(ctx: ApiContext, month: str | None) -> tuple[datetime, datetime]:
    return month_window(month or f"{ctx.gateway.clock.now():%Y-%m}")


async def _uptime(ctx: ApiContext, property_id: str, month: str | None) -> UptimeOut:
    start, end = _month(ctx, month)
    units = await ctx.checks.uptime(property_id, start, end)
    return UptimeOut(
        month=f"{start:%Y-%m}", start=start, end=end, units=[UnitUptimeOut.model_validate(u) for u in units]
    )


def _outage_out(outage: Outage) -> OutageOut:
    return OutageOut.model_validate(outage)
