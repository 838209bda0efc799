"""The simulated unit that ``gateway run`` (on an embedded broker) and ``gateway demo`` start beside the gateway."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .config import BrokerSettings
from .mqtt.acl import CredentialKind, Namespace
from .mqtt.credentials import MADE_AT_START, BrokerCredentials

if TYPE_CHECKING:
    from fwsim import UnitSim

__all__ = ["SIMULATED_UNIT", "simulated_unit", "simulator_logins"]

SIMULATED_UNIT = "u101"
SIMULATOR_BASE_TOPIC = "fwsim"

Login = tuple[str, str]


async def simulator_logins(credentials: BrokerCredentials, prefix: str, unit: str = SIMULATED_UNIT) -> dict[str, Login]:
    """A broker login for each simulated device, by device name: a device credential of no property, scoped to the
    device's own discovery node id and topic root, made by the gateway for this start only (its password is held
    here and nowhere else; the next start revokes it with everything else ``MADE_AT_START``)."""
    from fwsim import UnitSim

    logins: dict[str, Login] = {}
    for name, device in UnitSim.identities(unit, SIMULATOR_BASE_TOPIC).items():
        # The simulators keep state, availability, commands and faults under one root (as ESPHome does).
        root = (device.topic_root,)
        namespace = Namespace(discovery_prefix=prefix, node_ids=(device.node_id,), state_roots=root, command_roots=root)
        issued = await credentials.create(
            device.client_id,
            CredentialKind.DEVICE,
            property_id=None,
            client_id=device.client_id,
            namespace=namespace,
            label=f"simulated unit {unit}: {name}",
            created_by=MADE_AT_START,
        )
        logins[name] = (device.client_id, issued.password.get_secret_value())
    return logins


def simulated_unit(
    broker: BrokerSettings, prefix: str, command_delay: float = 0.2, *, logins: Mapping[str, Login] | None = None
) -> UnitSim:
    """The simulated unit u101 on the gateway's broker: each device with its own login from ``logins``, or (an
    external broker) logging in as the gateway does."""
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
    return UnitSim(
        address,
        unit=SIMULATED_UNIT,
        discovery_prefix=prefix,
        base_topic=SIMULATOR_BASE_TOPIC,
        command_delay=command_delay,
        logins=logins,
    )
