"""One simulated physical device: one MQTT client with discovery, state, availability, commands and faults."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self, TypedDict

import aiomqtt

from devices import (
    AvailabilityEntry,
    Command,
    DeviceCodecError,
    DeviceInfo,
    DiscoveryKey,
    EntityConfig,
    EntityState,
    Publish,
    SensorConfig,
    discovery_topic,
    state_queries,
)

from .address import BrokerAddress
from .backoff import Backoff
from .faults import DEFAULT_OFFLINE_SECONDS, DEFAULT_REBOOT_SECONDS, Fault, FaultInvalid, FaultKind, parse_fault
from .link import DeviceLink, DeviceOffline

__all__ = [
    "MANUFACTURER",
    "OFFLINE",
    "ONLINE",
    "SW_VERSION",
    "DeviceIdentity",
    "DeviceOffline",
    "DeviceOptions",
    "SimulatedDevice",
]

log = logging.getLogger(__name__)

MANUFACTURER = "fwsim"
SW_VERSION = "0.1.0"
ONLINE = "online"
OFFLINE = "offline"
_ID = re.compile(r"[A-Za-z0-9_]{1,30}")
_COMMAND_QUEUE = 64


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """Who a simulated device is on the broker: its client id, discovery node id and the root of its own topics.

    Known without starting the device, so that whoever issues its broker login can scope it first.
    """

    unit: str
    name: str
    base_topic: str = "fwsim"

    @property
    def client_id(self) -> str:
        """The MQTT client id, ``fwsim-<unit>-<name>``."""
        return f"fwsim-{self.unit}-{self.name}"

    @property
    def node_id(self) -> str:
        """The discovery node id, ``<unit>-<name>``."""
        return f"{self.unit}-{self.name}"

    @property
    def topic_root(self) -> str:
        """Every state, availability, command and fault topic of the device lies under ``<base>/<unit>/<name>``."""
        return "/".join((self.base_topic.strip("/"), self.unit, self.name))


class DeviceOptions(TypedDict, total=False):
    """Options every simulated device takes besides its address, unit and name."""

    discovery_prefix: str
    base_topic: str
    command_delay: float
    backoff: Backoff
    keepalive: int
    mqtt_timeout: float
    connect_gate: asyncio.Semaphore


class SimulatedDevice:
    """Base of every simulated device: ONE physical device is ONE MQTT client (an async context manager)."""

    # Subclasses register their entities with ``add_entity`` and implement ``entity_state`` (and
    # ``execute`` if they take commands). Entering starts a TaskGroup running the connection
    # supervisor, the command worker and any ``extra_tasks``; leaving reports offline and stops them.

    model: ClassVar[str] = "generic device"

    def __init__(
        self,
        address: BrokerAddress,
        *,
        unit: str,
        name: str,
        discovery_prefix: str = "homeassistant",
        base_topic: str = "fwsim",
        command_delay: float = 0.2,
        backoff: Backoff | None = None,
        keepalive: int = 15,
        mqtt_timeout: float = 5.0,
        connect_gate: asyncio.Semaphore | None = None,
    ) -> None:
        for label, value in (("unit", unit), ("name", name)):
            if not _ID.fullmatch(value):
                raise ValueError(f"{label} must be 1-30 of [A-Za-z0-9_], got {value[:40]!r}")
        if command_delay < 0:
            raise ValueError("command_delay must not be negative")
        self.address = address
        self.unit = unit
        self.name = name
        self.discovery_prefix = discovery_prefix.strip("/")
        self.base_topic = base_topic.strip("/")
        self.identity = DeviceIdentity(unit, name, self.base_topic)
        self.command_delay = command_delay
        self.ignore_commands = False
        self._entities: dict[str, EntityConfig] = {}
        self._routes: dict[str, str] = {}
        self._state_requests: dict[str, list[str]] = {}  # request topic -> entities whose state answers it
        # One state report at a time, each read when it goes out: an announce under way must not send an older
        # state after the report of a command that has just been obeyed (the broker would retain the old one).
        self._reporting = asyncio.Lock()
        self.link = DeviceLink(
            address,
            client_id=self.client_id,
            will=lambda: self.availability_publish(False),
            topics=lambda: [*self._routes, *self._state_requests, self.status_topic, self.fault_topic],
            on_connect=self._announce,
            on_message=self._dispatch,
            backoff=backoff,
            keepalive=keepalive,
            timeout=mqtt_timeout,
            connect_gate=connect_gate,
        )
        self._commands: asyncio.Queue[tuple[str, Command]] = asyncio.Queue(maxsize=_COMMAND_QUEUE)
        self._group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # --- identity and topics ------------------------------------------------------------------

    @property
    def client_id(self) -> str:
        """The MQTT client id, ``fwsim-<unit>-<name>``."""
        return self.identity.client_id

    @property
    def node_id(self) -> str:
        """The discovery node id, ``<unit>-<name>``."""
        return self.identity.node_id

    def topic(self, *parts: str) -> str:
        """A topic under this device's base, ``<base>/<unit>/<name>/<parts...>``."""
        return "/".join((self.identity.topic_root, *parts))

    @property
    def availability_topic(self) -> str:
        """Where ``online`` / ``offline`` (the last will) is published, retained."""
        return self.topic("availability")

    @property
    def fault_topic(self) -> str:
        """The fault-control topic this device listens to."""
        return self.topic("fault")

    @property
    def status_topic(self) -> str:
        """Home Assistant's birth/last-will topic; ``online`` there makes the device announce itself again."""
        return f"{self.discovery_prefix}/status"

    @property
    def device_info(self) -> DeviceInfo:
        """The ``device`` block every entity of this device shares."""
        return DeviceInfo(
            identifiers=(self.client_id,),
            name=f"{self.unit} {self.name}",
            manufacturer=MANUFACTURER,
            model=self.model,
            sw_version=SW_VERSION,
        )

    def entity_fields(self, object_id: str, title: str) -> dict[str, Any]:
        """Config fields common to every entity of this device (name, unique id, device, availability)."""
        return {
            "name": title,
            "unique_id": f"{self.client_id}-{object_id}",
            "device": self.device_info,
            "availability_topic": self.availability_topic,
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
        }

    def battery_config(self, object_id: str = "battery") -> SensorConfig:
        """A battery-level sensor entity (device class battery, unit %) on ``<base>/.../<object_id>``."""
        return SensorConfig(
            state_topic=self.topic(object_id),
            device_class="battery",
            unit_of_measurement="%",
            **self.entity_fields(object_id, "Battery"),
        )

    def add_entity(self, object_id: str, config: EntityConfig) -> None:
        """Register one entity of this device and route its command topics."""
        if not _ID.fullmatch(object_id) or object_id in self._entities:
            raise ValueError(f"bad or duplicate object id {object_id!r}")
        self._entities[object_id] = config
        for command_topic in config.command_topics():
            self._routes[command_topic] = object_id
        # The requests the gateway's codec would send this firmware are the ones it answers.
        for query in state_queries([config]):
            for request in query.requests:
                self.listen_for_request(request.topic, object_id)

    def listen_for_request(self, topic: str, object_id: str) -> None:
        """Answer state requests on ``topic`` with the state of ``object_id`` (as ``answers`` decides)."""
        ids = self._state_requests.setdefault(topic, [])
        if object_id not in ids:
            ids.append(object_id)

    def answers(self, topic: str, payload: bytes) -> list[str]:
        """The entities whose state a request on ``topic`` gets reported (every one listening there by default)."""
        return list(self._state_requests[topic])

    @property
    def configs(self) -> Mapping[str, EntityConfig]:
        """The entities' discovery configs by object id."""
        return dict(self._entities)

    def discovery_key(self, object_id: str) -> DiscoveryKey:
        """Where the entity's discovery config lives."""
        return DiscoveryKey(self._entities[object_id].component, self.node_id, object_id)

    def discovery_topics(self) -> list[str]:
        """Every discovery config topic of this device."""
        return [discovery_topic(self.discovery_prefix, self.discovery_key(oid)) for oid in self._entities]

    # --- what subclasses provide --------------------------------------------------------------

    def entity_state(self, object_id: str) -> EntityState:
        """The current state of one entity."""
        raise NotImplementedError

    async def execute(self, object_id: str, command: Command) -> None:
        """Carry out one decoded command (called by the command worker, one at a time)."""
        log.warning("%s: %s takes no commands", self.client_id, object_id)

    async def apply_kind_fault(self, fault: Fault) -> bool:
        """Apply a fault only some kinds support; return False if this kind does not support it."""
        return False

    def extra_tasks(self) -> dict[str, Coroutine[Any, Any, None]]:
        """Further long-running coroutines to run in the device's TaskGroup, by task name."""
        return {}

    # --- messages -----------------------------------------------------------------------------

    def discovery_publishes(self) -> list[Publish]:
        """The retained discovery configs, built by the config models."""
        return [
            Publish(discovery_topic(self.discovery_prefix, self.discovery_key(oid)), cfg.to_payload(), retain=True)
            for oid, cfg in self._entities.items()
        ]

    def state_publishes(self, object_ids: Iterable[str] | None = None) -> list[Publish]:
        """The retained state reports of the given entities (all by default), built by the config models."""
        ids = list(self._entities) if object_ids is None else list(object_ids)
        return [p for oid in ids for p in self._entities[oid].encode_state(self.entity_state(oid))]

    def availability_publish(self, available: bool) -> Publish:
        """The retained availability message, in the words the entities' configs advertise."""
        entries = [e for cfg in self._entities.values() for e in cfg.availability_entries()]
        entry = entries[0] if entries else AvailabilityEntry(topic=self.availability_topic)
        word = entry.payload_available if available else entry.payload_not_available
        return Publish(entry.topic, word.encode(), retain=True)

    async def publish_state(self, *object_ids: str) -> None:
        """Publish the state of the given entities (all if none given); skipped while offline."""
        async with self._reporting:
            await self.link.send(self.state_publishes(object_ids or None))

    async def settle(self) -> None:
        """Wait ``command_delay``: how long the hardware takes to obey."""
        await asyncio.sleep(self.command_delay)

    async def publish_raw(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        """Publish anything on this device's connection (for tests sending garbage); raise DeviceOffline."""
        await self.link.send_now(topic, payload, retain=retain)

    async def _announce(self, client: aiomqtt.Client) -> None:
        """Publish discovery configs, then state, then ``online``: what HA expects on every (re)connect."""
        for p in self.discovery_publishes():
            await client.publish(p.topic, p.payload, qos=p.qos, retain=p.retain)
        async with self._reporting:
            for p in self.state_publishes():
                await client.publish(p.topic, p.payload, qos=p.qos, retain=p.retain)
        p = self.availability_publish(True)
        await client.publish(p.topic, p.payload, qos=p.qos, retain=p.retain)

    async def _dispatch(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        payload = _as_bytes(message.payload)
        if topic == self.fault_topic:
            if message.retain or not payload:
                return  # a retained fault would replay on every reconnect
            try:
                fault = parse_fault(payload)
            except FaultInvalid as exc:
                log.warning("%s: ignoring fault payload %r: %s", self.client_id, payload[:64], exc)
                return
            await self.apply_fault(fault)
        elif topic == self.status_topic:
            if payload == ONLINE.encode() and not message.retain:
                log.info("%s: Home Assistant is online; announcing again", self.client_id)
                await self._announce(client)
        elif topic in self._routes:
            self._on_command(topic, payload)
        elif topic in self._state_requests and not message.retain:
            if self.ignore_commands:
                log.info("%s: ignoring state request on %s (fault)", self.client_id, topic)
                return
            if object_ids := self.answers(topic, payload):
                await self.publish_state(*object_ids)

    def _on_command(self, topic: str, payload: bytes) -> None:
        object_id = self._routes[topic]
        try:
            command = self._entities[object_id].decode_command(topic, payload)
        except (DeviceCodecError, ValueError) as exc:
            log.warning("%s: ignoring bad command on %s %r: %s", self.client_id, topic, payload[:64], exc)
            return
        if self.ignore_commands:
            log.info("%s: ignoring command %s (fault)", self.client_id, command)
            return
        try:
            self._commands.put_nowait((object_id, command))
        except asyncio.QueueFull:
            log.warning("%s: command queue full; dropping %s", self.client_id, command)

    async def _work_commands(self) -> None:
        while True:
            object_id, command = await self._commands.get()
            if self.ignore_commands:
                continue
            log.debug("%s: executing %s", self.client_id, command)
            await self.execute(object_id, command)

    # --- connection state and faults ----------------------------------------------------------

    @property
    def connections(self) -> int:
        """How many times the device has connected so far."""
        return self.link.connections

    @property
    def is_online(self) -> bool:
        """Whether the device is connected and has announced itself."""
        return self.link.is_online

    async def wait_online(self, timeout: float | None = None) -> None:
        """Wait until connected and announced; raise TimeoutError after ``timeout`` seconds."""
        await self.link.wait_online(timeout)

    async def wait_offline(self, timeout: float | None = None) -> None:
        """Wait until the connection is gone; raise TimeoutError after ``timeout`` seconds."""
        await self.link.wait_offline(timeout)

    async def drop_offline(self, seconds: float | None = None) -> None:
        """Cut TCP without DISCONNECT (the broker fires the will); stay away until come_back() or ``seconds``."""
        self.link.drop(seconds)
        await self.link.wait_offline()

    async def come_back(self) -> None:
        """End an offline spell: the supervisor reconnects now (await ``wait_online`` to see it done)."""
        self.link.release()

    async def reboot(self, downtime: float = DEFAULT_REBOOT_SECONDS) -> None:
        """Drop abruptly, forget queued commands, and come back after ``downtime`` seconds."""
        self._drain_commands()
        await self.drop_offline(downtime)

    async def apply_fault(self, fault: Fault) -> None:
        """Apply one parsed fault (from the control topic or the command line)."""
        log.info("%s: fault %s", self.client_id, fault.model_dump(mode="json", exclude_none=True))
        if fault.fault is FaultKind.OFFLINE:
            self.link.drop(fault.seconds or DEFAULT_OFFLINE_SECONDS)
        elif fault.fault is FaultKind.REBOOT:
            self._drain_commands()
            self.link.drop(fault.seconds or DEFAULT_REBOOT_SECONDS)
        elif fault.fault is FaultKind.IGNORE:
            self.ignore_commands = True
        elif fault.fault is FaultKind.OBEY:
            self.ignore_commands = False
        elif not await self.apply_kind_fault(fault):
            log.warning("%s: fault %s not supported by a %s", self.client_id, fault.fault, self.model)

    def _drain_commands(self) -> None:
        while not self._commands.empty():
            self._commands.get_nowait()

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._group is not None:
            raise RuntimeError(f"{self.client_id} is already running")
        group = asyncio.TaskGroup()
        await group.__aenter__()
        self._group = group
        self._spawn("supervisor", self.link.run())
        self._spawn("commands", self._work_commands())
        for name, coro in self.extra_tasks().items():
            self._spawn(name, coro)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        group, self._group = self._group, None
        if group is None:
            return
        try:
            if exc_type is None:
                await self.link.goodbye(self.availability_publish(False))
        finally:
            try:
                pending = {task for task in self._tasks if not task.done()}
                while pending:
                    # Cancelled again until ended: 3.11's asyncio.wait_for (aiomqtt's waits) can swallow a cancel.
                    for task in pending:
                        task.cancel()
                    _, pending = await asyncio.wait(pending, timeout=0.25)
            finally:
                self._tasks.clear()
                # The tasks are ours and cancelled; the caller's own exception propagates unwrapped.
                await group.__aexit__(None, None, None)

    def _spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        if self._group is None:
            coro.close()
            raise RuntimeError(f"{self.client_id} is not running")
        self._tasks.append(self._group.create_task(coro, name=f"{self.client_id}:{name}"))


def _as_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if payload is None:
        return b""
    return str(payload).encode()
