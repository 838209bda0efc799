"""The composed services run the same with or without the HTTP API: ``gateway run --no-api`` still tests, reminds
and reports."""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from gateway.clock import ManualClock
from gateway.config import GatewaySettings
from gateway.services import Services
from tests.support.brokers import BrokerHandle
from tests.support.checks import EMBEDDED, ROOT, Webhook, checked_building, delivered
from tests.support.gateway import GatewayFactory
from tests.support.polling import until


@EMBEDDED
async def test_run_without_the_api_tests_the_units_owing_a_test_reminds_their_residents_and_reports_the_failures(
    make_gateway: GatewayFactory, broker: BrokerHandle, prefix: str, clock: ManualClock, tmp_path: Path
) -> None:
    db = tmp_path / "gateway.sqlite3"  # make_gateway's database: the building below lives there
    # The building was set up two months ago (the clock moved back, not slept through): both units owe a test now,
    # and their simulated devices are gone, so a test now fails.
    clock.set(datetime.now(UTC) - timedelta(days=60))
    async with checked_building(make_gateway, broker, prefix, clock, None):
        pass
    log = tmp_path / "gateway.log"
    with log.open("wb") as stderr:
        async with Webhook() as hook:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "run", "--db", str(db),
                "--broker", f"mqtt://{broker.host}:{broker.port}", "--discovery-prefix", prefix,
                "--no-api", "--simulate", "never", "--report-webhook", hook.url,
                stdout=asyncio.subprocess.DEVNULL, stderr=stderr, cwd=ROOT,
            )  # fmt: skip
            try:
                await until(partial(delivered, hook, 2), timeout=30, what="both units' failure reports delivered")
            finally:
                process.send_signal(signal.SIGINT)
                async with asyncio.timeout(20):
                    code = await process.wait()
    assert code == 0, log.read_text()[-2000:]
    reports = [body for _, body in hook.received]
    assert sorted(r["unit"]["id"] for r in reports) == ["a", "b"]
    assert {r["kind"] for r in reports} == {"self_test_failed"}
    assert {r["details"]["trigger"] for r in reports} == {"automatic"}
    # The reminders were queued for each resident's app, with no HTTP API anywhere: due, then failing.
    async with Services.offline(GatewaySettings(database=db)) as services:
        for unit_id in ("a", "b"):
            notes = await services.checks.notifications(unit_id, 0, None, 50)
            reminders = [n.kind for n in notes if n.kind.startswith("self_test_")]  # alerts may come between
            assert reminders == ["self_test_overdue", "self_test_failing"], notes
