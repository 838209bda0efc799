"""The simulated building and the gateway, each a child process: ``firmware-sim fleet`` and ``gateway run``."""

from __future__ import annotations

import asyncio
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from fwsim import BrokerAddress, UnitSim
from fwsim.fleet import unit_id

from .process import BenchError, Child, child_env

__all__ = ["FleetProcess", "GatewayProcess", "fleet_devices"]

_DRIFT_OFF = "86400"  # thermostats would otherwise report a drifting room temperature on their own


def fleet_devices(units: int) -> dict[str, int]:
    """Device id -> how many entities it announces, for units u001.. of ``firmware-sim fleet``."""
    nowhere = BrokerAddress("127.0.0.1", 1)
    return {
        device.client_id: len(device.configs)
        for n in range(1, units + 1)
        for device in UnitSim(nowhere, unit_id(n)).devices.values()
    }


class FleetProcess:
    """``firmware-sim fleet --units N --command-delay 0``: five MQTT clients per unit, in their own process."""

    def __init__(self, units: int, broker_url: str, logdir: Path, *, first_unit: int = 1, name: str = "fleet") -> None:
        self.units = units
        argv = [sys.executable, "-m", "fwsim", "fleet", "--units", str(units), "--first-unit", str(first_unit)]
        argv += ["--broker", broker_url, "--command-delay", "0", "--drift-interval", _DRIFT_OFF, "--log-level", "INFO"]
        self.child = Child(name, argv, logdir)

    async def start(self, timeout: float) -> float:
        """Start it and wait until it says every device is online; return its own start time in seconds."""
        await self.child.start()
        match = await self.child.wait_output(
            r"fleet of \d+ units started: (\d+)/(\d+) devices online in ([\d.]+) s", timeout, stderr=True
        )
        online, total, seconds = int(match.group(1)), int(match.group(2)), float(match.group(3))
        if online != total:
            raise BenchError(f"fleet: only {online}/{total} devices came online:\n{self.child.tail()}")
        return seconds

    async def stop(self) -> None:
        """Stop it (each device says goodbye)."""
        await self.child.stop(timeout=30.0)


@dataclass
class GatewayProcess:
    """``gateway run`` against the broker, with a fresh database and the API on a free port."""

    broker_url: str
    workdir: Path
    operator: str = "bench-operator"
    operator_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    api: str = ""  # http://127.0.0.1:PORT/api/v1 once up

    def __post_init__(self) -> None:
        self.db_path = self.workdir / "gateway.sqlite3"
        argv = [sys.executable, "-m", "gateway", "--log-format", "json", "--log-level", "warning", "run"]
        argv += ["--broker", self.broker_url, "--db", str(self.db_path), "--api-port", "0", "--simulate", "never"]
        env = child_env(GATEWAY_OPERATOR_USERNAME=self.operator, GATEWAY_OPERATOR_PASSWORD=self.operator_password)
        self.child = Child("gateway", argv, self.workdir, env=env)

    @property
    def pid(self) -> int:
        """The gateway's process id."""
        return self.child.pid

    async def start(self) -> None:
        """Spawn it on a fresh database (one left in the work directory by an earlier run is removed first)."""
        for suffix in ("", "-wal", "-shm"):
            self.db_path.with_name(self.db_path.name + suffix).unlink(missing_ok=True)
        await self.child.start()

    def api_ready(self) -> bool:
        """Whether it has printed its API address (which it does once the API listens)."""
        try:
            text = self.child.stdout_path.read_text(errors="replace")
        except OSError:
            return False
        for line in text.splitlines():
            if line.startswith("API: "):
                self.api = line.split()[1]
                return True
        return False

    async def wait_api(self, timeout: float) -> str:
        """Wait for the API address; raise BenchError if it does not come or the gateway ends."""
        try:
            async with asyncio.timeout(timeout):
                while not self.api_ready():
                    self.child.check_alive()
                    await asyncio.sleep(0.02)
        except TimeoutError as exc:
            raise BenchError(f"gateway: no API after {timeout:g} s:\n{self.child.tail()}") from exc
        return self.api

    async def stop(self) -> int | None:
        """Stop it cleanly (SIGTERM: it flushes and records a clean stop)."""
        return await self.child.stop(timeout=20.0)
