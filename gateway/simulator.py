"""The simulated unit that ``gateway run`` (on an embedded broker) and ``gateway demo`` start beside the gateway."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import BrokerSettings

if TYPE_CHECKING:
    from fwsim import UnitSim

__all__ = ["simulated_unit"]


def simulated_unit(broker: BrokerSettings, prefix: str, command_delay: float = 0.2) -> UnitSim:
    """The simulated unit u101 on the gateway's broker, logging in as the gateway does."""
    # Imported only when a simulation is started: a gateway on a real building never loads the simulator.
    from fwsim import BrokerAddress, UnitSim

    address = BrokerAddress(
        host=broker.host,
        port=broker.port,
        username=broker.username,
        password=broker.password,
        tls=broker.tls,
        ca_file=str(broker.ca_file) if broker.ca_file else None,
    )
    return UnitSim(address, unit="u101", discovery_prefix=prefix, command_delay=command_delay)
