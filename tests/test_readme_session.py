"""The README's resident session (examples/resident-session.sh) run as written against ``gateway run``."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
from pathlib import Path

import pytest

from gateway.mqtt.broker import free_port

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "choose a long passphrase"


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="the session needs curl and jq")
async def test_resident_session_script_runs_start_to_finish(tmp_path: Path) -> None:
    env = {**os.environ, "GATEWAY_OPERATOR_USERNAME": "ops", "GATEWAY_OPERATOR_PASSWORD": PASSWORD}
    gateway = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "--log-format", "json", "run",
        "--db", str(tmp_path / "gw.sqlite3"), "--listen-port", str(free_port()), "--api-port", "0",
        "--simulate", "always",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        assert gateway.stdout is not None
        api = None
        async with asyncio.timeout(30):
            while not (line := (await gateway.stdout.readline()).decode()).startswith("no devices found"):
                assert line, "gateway exited"
                if match := re.match(r"API: +(http://\S+)/api/v1", line):
                    api = match.group(1)
        assert api is not None
        script = await asyncio.create_subprocess_exec(
            "bash", str(ROOT / "examples" / "resident-session.sh"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "API": api, "OPERATOR_PASSWORD": PASSWORD},
        )  # fmt: skip
        async with asyncio.timeout(60):
            out, _ = await script.communicate()
        text = out.decode()
        assert script.returncode == 0, text
        assert '{"in_force":true,' in text, text
        assert '{"status":403,"code":"agreement_not_accepted","version":"2026-11"}' in text, text
        assert '{"can_control":true,"contract_in_force":true,"agreement_version":"2026-11"}' in text, text
        assert text.count('{"status":"confirmed"') >= 2, text
        assert '"code":"out_of_range"' in text
        assert '{"passed":true,"broker":"passed","devices":[' in text, text
        assert '{"status":"ok","due_at":' in text, text
        assert "stream: event: state" in text
        assert '{"status":404,"code":"device_not_found"}' in text
        assert '{"status":401,"code":"session_revoked"}' in text
        assert '"status":"terminated"' in text
    finally:
        if gateway.returncode is None:
            gateway.send_signal(signal.SIGINT)
            async with asyncio.timeout(20):
                await gateway.wait()
    assert gateway.returncode == 0
