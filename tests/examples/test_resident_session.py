"""The README's five-minute tour, pasted as written into bash against ``gateway run``: each answer is its comment."""

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
from tests.support.brokers import REPO

ROOT = REPO
PASSWORD = "choose a long passphrase"
BEGIN, END = "<!-- tour:begin -->", "<!-- tour:end -->"
ANSWER = "# → "  # a comment line promising, exactly, what the command above it prints


def tour_block() -> str:
    """The fenced shell block between the tour's markers in README.md."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.count(BEGIN) == 1 and readme.count(END) == 1, "README.md marks its tour once"
    section = readme.split(BEGIN, 1)[1].split(END, 1)[0]
    match = re.fullmatch(r"\s*```sh\n(.*?)```\s*", section, re.DOTALL)
    assert match is not None, "the tour is one ```sh block between the markers"
    return match.group(1)


def promised_answers(block: str) -> list[str]:
    """What each command of the block promises to print, in order."""
    return [line.removeprefix(ANSWER) for line in block.splitlines() if line.startswith(ANSWER)]


def test_the_example_script_is_the_readme_tour() -> None:
    script = (ROOT / "examples" / "resident-session.sh").read_text(encoding="utf-8")
    header, _, body = script.partition("\n\n")
    assert all(line.startswith("#") for line in header.splitlines()), "the script is a comment header, then the tour"
    assert body == tour_block()
    assert os.access(ROOT / "examples" / "resident-session.sh", os.X_OK)


def test_the_tour_promises_what_the_readme_says_it_shows() -> None:
    answers = promised_answers(tour_block())
    for promise in (
        '{"status":403,"code":"agreement_not_accepted","version":"1"}',
        '{"status":"confirmed","command":{"on":true}}',
        '{"status":"confirmed","command":{"action":"unlock"}}',
        '{"status":"unlocked"}',
        '{"status":"confirmed","command":{"action":"lock"}}',
        '{"unit":"101","residents":[{"username":"dana","accepted_version":"1"}]}',
    ):
        assert promise in answers


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="the tour needs curl and jq")
async def test_the_readme_tour_pasted_into_bash_gives_the_promised_answers(tmp_path: Path) -> None:
    block = tour_block()
    # As the README starts it (./run.sh: embedded broker, a simulated unit), on a fresh database and free ports.
    env = {**os.environ, "GATEWAY_OPERATOR_USERNAME": "ops", "GATEWAY_OPERATOR_PASSWORD": PASSWORD}
    gateway = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "--log-format", "json", "run",
        "--db", str(tmp_path / "gw.sqlite3"), "--listen-port", str(free_port()), "--api-port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        assert gateway.stdout is not None
        api = None
        async with asyncio.timeout(30):
            while "simulated unit" not in (line := (await gateway.stdout.readline()).decode()):
                assert line, "gateway exited"
                if match := re.match(r"API(?: on|:)\s+(http://\S+/api/v1)", line):
                    api = match.group(1)
        assert api is not None
        shell_env = {k: v for k, v in os.environ.items() if k not in ("OP", "PM", "TOKEN", "CODE", "DEVICE")}
        bash = await asyncio.create_subprocess_exec(
            "bash", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**shell_env, "API": api},
        )  # fmt: skip
        async with asyncio.timeout(60):
            out, err = await bash.communicate(block.encode())
        assert err.decode() == ""
        assert out.decode().splitlines() == promised_answers(block)
    finally:
        if gateway.returncode is None:
            gateway.send_signal(signal.SIGINT)
            async with asyncio.timeout(20):
                await gateway.wait()
    assert gateway.returncode == 0
