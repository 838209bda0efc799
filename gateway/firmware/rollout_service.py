"""Firmware rollouts: staff start an update for a device, a unit or a property; it runs in stages, each device's
progress followed from its update entity and its self-test probe run after, a failure stopping the rollout."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from functools import partial
from types import TracebackType
from typing import Self

from devices import Component, UpdateCommand, UpdateConfig, UpdateState

from ..accounts import Principal
from ..audit import AuditLog
from ..building import BuildingService
from ..checks import ChecksService, CheckStatus, ReportKind, SelfTestRunner
from ..clock import Clock
from ..core.commands import CommandService, CommandStatus
from ..core.entity import Entity
from ..core.registry import Registry
from ..errors import Conflict, GatewayError, NotFound
from ..policy import main_kind
from ..storage import Database
from ..tasks import TaskOwner
from . import store
from .models import (
    FINISHED,
    DeviceFirmware,
    DeviceStep,
    Rollout,
    RolloutDevice,
    RolloutRules,
    RolloutScope,
    RolloutStatus,
)
from .plan import stages

__all__ = ["FirmwareService"]

log = logging.getLogger(__name__)


class FirmwareService:
    """Every device's firmware as reported, and the rollouts; ``async with`` runs the rollout loop (a TaskGroup
    with the named loop and one named task per install and per probe in flight)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        registry: Registry,
        commands: CommandService,
        building: BuildingService,
        checks: ChecksService,
        runner: SelfTestRunner,
        audit: AuditLog,
        rules: RolloutRules | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.registry = registry
        self.commands = commands
        self.building = building
        self.checks = checks
        self.runner = runner
        self.audit = audit
        self.rules = rules or RolloutRules()
        self._running: dict[str, Rollout] = {}
        self._stage: dict[str, int | None] = {}  # the stage each running rollout was at on its last pass
        self._busy: set[tuple[str, str]] = set()  # (rollout, device) with an install or probe task in flight
        # Update entities seen updating since their install was sent (every report counts, not only those a pass
        # of the loop happens to see): one that stops updating short of the new version has failed.
        self._progressed: set[str] = set()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks = TaskOwner()
        self._started = False
        registry.add_listener(self)

    # --- lifecycle ------------------------------------------------------------------------------

    async def load(self) -> None:
        """Take up the rollouts that were running when the gateway stopped (their steps are in the database)."""
        for rollout in await self.db.run(partial(store.load_rollouts, property_id=None, limit=1000)):
            self._running[rollout.id] = rollout
            self._stage[rollout.id] = rollout.current_stage()
            log.info("firmware rollout resumed", extra={"rollout": rollout.id})

    async def __aenter__(self) -> Self:
        await self.load()
        await self._tasks.__aenter__()
        self._started = True
        self._tasks.start(self._loop(), name="firmware-rollouts")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._started = False
        await self._tasks.__aexit__(exc_type, exc, tb)

    def on_state(self, entity: Entity) -> None:
        """An update entity reported: a rollout may move on."""
        if entity.component is Component.UPDATE:
            if isinstance(entity.state, UpdateState) and entity.state.in_progress:
                self._progressed.add(entity.id)
            self._wake.set()

    def on_availability(self, entity: Entity) -> None:
        """Availability changes do not move a rollout (a device may restart while it updates)."""

    # --- what staff see -------------------------------------------------------------------------

    def firmware(self, property_id: str, unit_id: str | None = None) -> list[DeviceFirmware]:
        """Every device of the property (or one unit) with an update entity: installed and latest version."""
        units = [unit_id] if unit_id is not None else [u.id for u in self.building.units(property_id)]
        device_ids: list[tuple[str, str | None]] = [(d, u) for u in units for d in self.building.devices_of_unit(u)]
        if unit_id is None:
            unbound = self.building.unbound(self.registry.device_ids())
            device_ids += [(d, None) for d in unbound if self.registry.published_for(d, property_id)]
        out = []
        for device_id, unit in sorted(device_ids):
            info = self._device_firmware(device_id, unit)
            if info is not None:
                out.append(info)
        return out

    def device_firmware(self, property_id: str, device_id: str) -> DeviceFirmware:
        """One device's firmware; NotFound when it is not the property's or announces no update entity."""
        unit = self.building.unit_of_device(device_id)
        in_property = (
            self.building.unit(unit).property_id == property_id
            if unit is not None
            else self.registry.has_device(device_id) and self.registry.published_for(device_id, property_id)
        )
        info = self._device_firmware(device_id, unit) if in_property else None
        if info is None:
            raise NotFound(f"no updatable device {device_id!r}", code="device_not_found")
        return info

    async def rollouts(self, property_id: str, limit: int = 50) -> list[Rollout]:
        """The property's rollouts, newest first (running ones as they stand now)."""
        stored = await self.db.run(partial(store.load_rollouts, property_id=property_id, limit=limit))
        return [self._running.get(r.id, r) for r in stored]

    async def rollout(self, property_id: str, rollout_id: str) -> Rollout:
        """One rollout of the property; NotFound otherwise."""
        for rollout in await self.rollouts(property_id, limit=1000):
            if rollout.id == rollout_id:
                return rollout
        raise NotFound(f"no rollout {rollout_id!r}", code="rollout_not_found")

    # --- starting -------------------------------------------------------------------------------

    async def start(self, property_id: str, scope: RolloutScope, target: str, *, by: Principal) -> Rollout:
        """Plan and start a rollout (audited; the residents of every unit in it told first). Conflict with a stable
        code when nothing can be updated (``not_updatable``, ``no_update_available``), another rollout of the
        property is running (``rollout_in_progress``) or a command for one of the devices is pending
        (``command_pending``)."""
        async with self._lock:  # one start at a time, and never halfway through a pass of the loop
            return await self._start(property_id, scope, target, by)

    async def _start(self, property_id: str, scope: RolloutScope, target: str, by: Principal) -> Rollout:
        candidates = self._scope(property_id, scope, target)
        if not candidates:
            raise Conflict("no device here announces a firmware update entity", code="not_updatable")
        # One rollout at a time per property: two rollouts' stages side by side could take every lock at once.
        running = next((r.id for r in self._running.values() if r.property_id == property_id), None)
        if running is not None:
            raise Conflict(f"rollout {running} is still running in this property", code="rollout_in_progress")
        pending = [info.device_id for info in candidates if self.commands.pending(info.device_id)]
        if pending:
            raise Conflict(f"a command for {pending[0]} is pending; try again once it ends", code="command_pending")
        due = [c for c in candidates if c.update_available and c.installable and c.available is not False]
        if not due:
            raise Conflict("every device here runs its latest firmware (or cannot install)", code="no_update_available")
        planned = stages([(c.device_id, c.kind) for c in due], self.rules)
        stage_of = {device_id: n for n, stage in enumerate(planned) for device_id in stage}
        now = self.clock.now()
        rollout = Rollout(
            id=f"fr_{secrets.token_hex(8)}", property_id=property_id, scope=scope, target=target,
            status=RolloutStatus.RUNNING, created_by=by.actor, created_at=now,
        )  # fmt: skip
        for info in candidates:
            skipped = info.device_id not in stage_of
            rollout.devices.append(
                RolloutDevice(
                    device_id=info.device_id,
                    unit_id=info.unit_id,
                    entity_id=info.entity_id,
                    stage=stage_of.get(info.device_id, -1),
                    kind=info.kind,
                    status=DeviceStep.SKIPPED if skipped else DeviceStep.WAITING,
                    from_version=info.installed_version,
                    target_version=info.latest_version,
                    finished_at=now if skipped else None,
                    reason=_skip_reason(info) if skipped else None,
                )
            )
        await self.db.run(partial(store.insert_rollout, rollout=rollout))
        await self.audit.record(
            by, "firmware.rollout_started", property_id=property_id, unit_id=target if scope is RolloutScope.UNIT
            else None, target=rollout.id,
            detail={"scope": str(scope), "target": target, "stages": planned,
                    "skipped": [d.device_id for d in rollout.devices if d.status is DeviceStep.SKIPPED]},
        )  # fmt: skip
        await self._tell_residents(rollout)
        self._running[rollout.id] = rollout
        self._stage[rollout.id] = rollout.current_stage()
        self._wake.set()
        return rollout

    def _scope(self, property_id: str, scope: RolloutScope, target: str) -> list[DeviceFirmware]:
        if scope is RolloutScope.DEVICE:
            return [self.device_firmware(property_id, target)]
        if scope is RolloutScope.UNIT:
            unit = self.building.unit(target, property_id)
            return self.firmware(property_id, unit.id)
        return [f for f in self.firmware(property_id) if f.unit_id is not None]

    async def _tell_residents(self, rollout: Rollout) -> None:
        """One notification per unit, before any of its devices updates."""
        first = self.clock.now() + self.rules.notice
        for unit_id in sorted({d.unit_id for d in rollout.devices if d.unit_id and d.status is DeviceStep.WAITING}):
            names = [d.device_id for d in rollout.devices if d.unit_id == unit_id and d.status is DeviceStep.WAITING]
            await self.checks.notify(
                unit_id,
                key=f"firmware:{rollout.id}:{unit_id}",
                kind="firmware_update",
                message=(
                    f"Firmware updates for {len(names)} of your devices start from {first:%Y-%m-%d %H:%M} UTC; "
                    "a device may not respond for a few minutes while it updates."
                ),
                data={"rollout_id": rollout.id, "devices": names, "from": first.isoformat()},
            )

    # --- running --------------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.rules.poll_seconds):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.tick()
            except GatewayError as exc:  # storage trouble: try again on the next wake
                log.error("firmware rollout step failed: %s", exc, extra={"code": exc.code})  # noqa: TRY400

    async def tick(self) -> None:
        """Move every running rollout on as far as the devices' reports and the clock allow."""
        async with self._lock:
            for rollout in list(self._running.values()):
                await self._advance(rollout)
                if rollout.status is not RolloutStatus.RUNNING:
                    del self._running[rollout.id]
                    self._stage.pop(rollout.id, None)

    async def _advance(self, rollout: Rollout) -> None:
        now = self.clock.now()
        failed = [d for d in rollout.devices if d.status is DeviceStep.FAILED]
        if failed:
            await self._stop(rollout, failed[0])
            return
        number = rollout.current_stage()
        passed = self._stage.get(rollout.id)
        if passed is not None and passed != number:
            await self.audit.record(
                None, "firmware.stage_passed", property_id=rollout.property_id, target=rollout.id,
                detail={"stage": passed, "devices": [d.device_id for d in rollout.stage(passed)]},
            )  # fmt: skip
        self._stage[rollout.id] = number
        if number is None:
            rollout.status, rollout.finished_at = RolloutStatus.COMPLETED, now
            await self.db.run(partial(store.save_rollout, rollout=rollout))
            await self.audit.record(None, "firmware.rollout_completed", property_id=rollout.property_id,
                                    target=rollout.id)  # fmt: skip
            return
        if now < rollout.created_at + self.rules.notice:
            return
        for device in rollout.stage(number):
            await self._step(rollout, device)
        if any(d.status is DeviceStep.FAILED for d in rollout.devices) or rollout.current_stage() != number:
            self._wake.set()  # stopped, or the next stage started, on the next pass

    async def _step(self, rollout: Rollout, device: RolloutDevice) -> None:
        if (rollout.id, device.device_id) in self._busy:
            return
        entity = self.registry.get(device.entity_id)
        if device.status is DeviceStep.WAITING:
            if entity is None:
                await self._fail(rollout, device, "device_removed", "its update entity is gone")
            elif (topic := self.registry.foreign_command_topic(entity)) is not None:
                await self._fail(rollout, device, "install_topic_conflict", f"{topic[:80]} is another device's")
            elif not self.commands.pending(device.device_id):  # never while a command for it is pending
                await self._install(rollout, device)
        elif device.status is DeviceStep.INSTALLING:
            state = entity.state if entity is not None else None
            if isinstance(state, UpdateState) and not state.in_progress and _installed(state, device):
                self._progressed.discard(device.entity_id)
                device.status = DeviceStep.VERIFYING
                await self.db.run(partial(store.save_device, rollout_id=rollout.id, device=device))
                self._probe(rollout, device)
            elif isinstance(state, UpdateState) and not state.in_progress and device.entity_id in self._progressed:
                # It was updating and stopped short of the new version: the firmware says the install failed.
                self._progressed.discard(device.entity_id)
                await self._fail(rollout, device, "update_failed", f"ended at {state.installed_version}")
            elif device.started_at is not None and self.clock.now() - device.started_at > self.rules.install_timeout:
                got = state.installed_version if isinstance(state, UpdateState) else None
                detail = f"not at {device.target_version} within {self.rules.install_timeout} (at {got})"
                await self._fail(rollout, device, "update_timeout", detail)
        elif device.status is DeviceStep.VERIFYING:
            self._probe(rollout, device)  # resumed after a restart: probe again

    async def _install(self, rollout: Rollout, device: RolloutDevice) -> None:
        device.status, device.started_at = DeviceStep.INSTALLING, self.clock.now()
        self._progressed.discard(device.entity_id)
        await self.db.run(partial(store.save_device, rollout_id=rollout.id, device=device))
        await self.audit.record(
            None, "firmware.install_sent", property_id=rollout.property_id, unit_id=device.unit_id,
            target=device.device_id,
            detail={"rollout": rollout.id, "from": device.from_version, "to": device.target_version},
        )  # fmt: skip
        self._busy.add((rollout.id, device.device_id))
        self._tasks.start(self._send(rollout, device), name=f"firmware-install-{rollout.id}-{device.device_id}")

    async def _send(self, rollout: Rollout, device: RolloutDevice) -> None:
        """Publish the install as a recorded command; its progress is followed from the entity's reports."""
        try:
            try:
                result = await self.commands.execute(
                    device.entity_id, UpdateCommand(action="install"), actor=f"firmware:{rollout.id}"
                )
            except GatewayError as exc:  # the entity went away meanwhile, the database refused the record, ...
                reason, detail = exc.code, str(exc)
            else:
                if result.status not in (CommandStatus.REJECTED, CommandStatus.FAILED, CommandStatus.REFUSED):
                    return  # confirmed, or timed out while the device downloads: its reports tell the rest
                reason, detail = result.reason or "install_failed", result.detail or ""
            async with self._lock:
                await self._fail(rollout, device, reason, detail)
        finally:
            self._busy.discard((rollout.id, device.device_id))
            self._wake.set()

    def _probe(self, rollout: Rollout, device: RolloutDevice) -> None:
        self._busy.add((rollout.id, device.device_id))
        self._tasks.start(self._verify(rollout, device), name=f"firmware-probe-{rollout.id}-{device.device_id}")

    async def _verify(self, rollout: Rollout, device: RolloutDevice) -> None:
        """The device's self-test probe, as the unit's self-test runs it, on the updated device."""
        try:
            try:
                check = await self.runner.check_device(device.device_id)
            except GatewayError as exc:
                async with self._lock:
                    await self._fail(rollout, device, "self_test_failed", f"{exc.code}: {exc}")
                return
            async with self._lock:
                if check.status is CheckStatus.FAILED:
                    await self._fail(rollout, device, "self_test_failed", f"{check.reason}: {check.detail or ''}")
                    return
                device.status, device.finished_at = DeviceStep.DONE, self.clock.now()
                await self.db.run(partial(store.save_device, rollout_id=rollout.id, device=device))
                await self.audit.record(
                    None, "firmware.device_updated", property_id=rollout.property_id, unit_id=device.unit_id,
                    target=device.device_id,
                    detail={"rollout": rollout.id, "version": device.target_version, "self_test": str(check.status)},
                )  # fmt: skip
        finally:
            self._busy.discard((rollout.id, device.device_id))
            self._wake.set()

    async def _fail(self, rollout: Rollout, device: RolloutDevice, reason: str, detail: str) -> None:
        if device.status in FINISHED:
            return
        device.status, device.finished_at, device.reason = DeviceStep.FAILED, self.clock.now(), reason
        await self.db.run(partial(store.save_device, rollout_id=rollout.id, device=device))
        await self.audit.record(
            None, "firmware.device_failed", property_id=rollout.property_id, unit_id=device.unit_id,
            target=device.device_id, detail={"rollout": rollout.id, "reason": reason, "detail": detail[:300]},
        )  # fmt: skip
        log.warning("firmware update failed", extra={"rollout": rollout.id, "device": device.device_id,
                                                     "reason": reason})  # fmt: skip

    async def _stop(self, rollout: Rollout, failed: RolloutDevice) -> None:
        """Stop at a failed device: nothing more is installed, a report is filed, the stop audited."""
        now = self.clock.now()
        for device in rollout.devices:
            if device.status is DeviceStep.WAITING:
                device.status, device.finished_at, device.reason = DeviceStep.NOT_STARTED, now, "rollout_stopped"
        rollout.status, rollout.finished_at = RolloutStatus.FAILED, now
        rollout.reason = f"{failed.device_id}: {failed.reason}"
        await self.db.run(partial(store.save_rollout, rollout=rollout))
        await self.checks.outbox.file(
            ReportKind.FIRMWARE_UPDATE_FAILED,
            f"firmware:{rollout.id}",
            f"firmware rollout {rollout.id} stopped: {rollout.reason}",
            property_id=rollout.property_id,
            unit_id=failed.unit_id,
            details={"rollout": rollout.id, "device_id": failed.device_id, "reason": failed.reason,
                     "from": failed.from_version, "to": failed.target_version,
                     "stage": failed.stage, "stages": rollout.stages},
            created_by=rollout.created_by,
            to_internet_provider=False,
        )  # fmt: skip
        await self.audit.record(
            None, "firmware.rollout_failed", property_id=rollout.property_id, target=rollout.id,
            detail={"device": failed.device_id, "reason": failed.reason, "stage": failed.stage},
        )  # fmt: skip

    # --- views ----------------------------------------------------------------------------------

    def _device_firmware(self, device_id: str, unit_id: str | None) -> DeviceFirmware | None:
        entities = self.registry.entities_of_device(device_id)
        update = next((e for e in entities if isinstance(e.config, UpdateConfig)), None)
        if update is None:
            return None
        assert isinstance(update.config, UpdateConfig)
        state = update.state if isinstance(update.state, UpdateState) else UpdateState()
        kind = main_kind({e.kind for e in entities})
        rollout = next(
            (r.id for r in self._running.values() for d in r.devices
             if d.device_id == device_id and d.status not in FINISHED),
            None,
        )  # fmt: skip
        name = update.config.device.name if update.config.device and update.config.device.name else device_id
        return DeviceFirmware(
            device_id=device_id, unit_id=unit_id, entity_id=update.id, name=name, kind=kind and str(kind),
            installed_version=state.installed_version, latest_version=state.latest_version,
            update_available=state.update_available, in_progress=state.in_progress,
            update_percentage=state.update_percentage,
            installable=update.config.installable and self.registry.foreign_command_topic(update) is None,
            available=update.available, rollout_id=rollout,
        )  # fmt: skip


def _installed(state: UpdateState, device: RolloutDevice) -> bool:
    """The device runs the version it was to install (or, where that was unknown, no update is left)."""
    if device.target_version is not None:
        return state.installed_version == device.target_version
    return not state.update_available


def _skip_reason(info: DeviceFirmware) -> str:
    if not info.installable:
        return "not_installable"
    if info.available is False:
        return "device_offline"
    return "up_to_date"
