"""Device-plane security on both brokers alike: every client logs in, and uses only its own topics.

The embedded broker (its gate over the credential store) and Mosquitto (dynamic security, managed by the gateway's
admin client) are given the same credentials from the same model, and must agree with ``acl.allowed`` and each
other. Whether nothing arrived is told by a fence: a message the attacker publishes on its own topic afterwards,
at the same QoS, which the observer receives only after anything the attacker sent before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from gateway.errors import Conflict, NotFound
from gateway.mqtt.acl import Action, Credential, CredentialKind, Namespace, Scope, allowed
from gateway.mqtt.drops import DROPPED_TOPIC
from tests.support.secure_brokers import PROPERTY, SecuredBroker, dynsec_missing, embedded_secured, mosquitto_secured

VICTIM_ROOT, ATTACKER_ROOT = "fwsim/u101/lock", "fwsim/u102/lock"


@pytest.fixture(params=["embedded", pytest.param("mosquitto", marks=pytest.mark.mosquitto)])
async def secured(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SecuredBroker]:
    if request.param == "embedded":
        async with embedded_secured(tmp_path) as embedded:
            yield embedded
        return
    missing = dynsec_missing()
    if missing is not None:
        pytest.skip(missing)
    async with mosquitto_secured(tmp_path) as mosquitto:
        yield mosquitto


def device(username: str, root: str, node: str) -> Credential:
    namespace = Namespace(node_ids=(node,), state_roots=(root,), command_roots=(root,))
    return Credential(
        id=username, username=username, kind=CredentialKind.DEVICE, property_id=PROPERTY, client_id=username,
        namespace=namespace,
    )  # fmt: skip


VICTIM = device("lock-u101", VICTIM_ROOT, "u101-lock")
ATTACKER = device("lock-u102", ATTACKER_ROOT, "u102-lock")


def client(
    broker: SecuredBroker, username: str | None, password: str | None, client_id: str, **kw: object
) -> aiomqtt.Client:
    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=username,
        password=password,
        identifier=client_id,
        timeout=5,
        **kw,  # type: ignore[arg-type]
    )


def gateway(broker: SecuredBroker, client_id: str = "aptgateway-test") -> aiomqtt.Client:
    return client(broker, *broker.gateway, client_id)


def granted(codes: tuple[int, ...] | list[ReasonCode]) -> bool:
    code = codes[0]
    return (code.value if isinstance(code, ReasonCode) else code) < 128


async def until_fence(observer: aiomqtt.Client, fence: str) -> list[tuple[str, bytes]]:
    """Messages the observer gets before the fence message (on topic ``fence``) arrives."""
    got: list[tuple[str, bytes]] = []
    async with asyncio.timeout(10):
        async for message in observer.messages:
            if str(message.topic) == fence:
                return got
            got.append((str(message.topic), bytes(message.payload)))
    return got


async def test_anonymous_clients_wrong_passwords_and_borrowed_client_ids_are_refused(secured: SecuredBroker) -> None:
    password = await secured.issue(ATTACKER)
    for username, secret, client_id in [
        (None, None, "anon"),
        (ATTACKER.username, password + "x", ATTACKER.username),
        (ATTACKER.username, "", ATTACKER.username),
        ("nobody", password, "nobody"),
        (ATTACKER.username, password, "aptgateway-test"),  # the gateway's client id
        (ATTACKER.username, password, VICTIM.username),  # another device's
    ]:
        with pytest.raises(aiomqtt.MqttError):
            async with client(secured, username, secret, client_id):
                pass
    async with client(secured, ATTACKER.username, password, ATTACKER.username):
        pass  # and the right login works


SUBSCRIPTIONS = [
    f"{ATTACKER_ROOT}/lock/set", f"{ATTACKER_ROOT}/#", f"{ATTACKER_ROOT}/+/set", ATTACKER_ROOT, "homeassistant/status",
    "#", "+/#", "fwsim/#", "fwsim/+/lock/lock/set", f"{VICTIM_ROOT}/lock/set", f"{VICTIM_ROOT}/#", "homeassistant/#",
    "homeassistant/lock/u102-lock/lock/config", "$SYS/#", "+/u102/lock/lock/set", "fwsim/u102/#",
]  # fmt: skip


async def test_subscriptions_are_granted_exactly_as_the_scope_says(secured: SecuredBroker) -> None:
    password = await secured.issue(ATTACKER)
    scope = Scope.of(ATTACKER)
    async with client(secured, ATTACKER.username, password, ATTACKER.username) as attacker:
        outcome = {f: granted(await attacker.subscribe(f, qos=1)) for f in SUBSCRIPTIONS}
    assert outcome == {f: allowed(scope, Action.SUBSCRIBE, f) for f in SUBSCRIPTIONS}
    assert not outcome["#"] and outcome[f"{ATTACKER_ROOT}/lock/set"]


PUBLICATIONS = [
    f"{ATTACKER_ROOT}/lock", f"{ATTACKER_ROOT}/availability", "homeassistant/lock/u102-lock/lock/config",
    f"{VICTIM_ROOT}/lock/set", f"{VICTIM_ROOT}/lock", f"{VICTIM_ROOT}/availability",
    "homeassistant/lock/u101-lock/lock/config", "homeassistant/lock/u102-lock2/lock/config", "homeassistant/status",
    "aptgateway/aptgateway-test/status", "fwsim/u102", "other/topic",
]  # fmt: skip


async def test_publishes_arrive_exactly_as_the_scope_says(secured: SecuredBroker) -> None:
    password = await secured.issue(ATTACKER)
    scope = Scope.of(ATTACKER)
    fence = f"{ATTACKER_ROOT}/fence"
    async with (
        gateway(secured) as observer,
        client(secured, ATTACKER.username, password, ATTACKER.username) as attacker,
    ):
        await observer.subscribe("#", qos=1)
        for topic in PUBLICATIONS:
            await attacker.publish(topic, b"UNLOCK", qos=1)
        await attacker.publish(fence, b"", qos=1)
        arrived = [topic for topic, _ in await until_fence(observer, fence)]
    assert arrived == [t for t in PUBLICATIONS if allowed(scope, Action.PUBLISH, t)]
    assert f"{VICTIM_ROOT}/lock/set" not in arrived and f"{ATTACKER_ROOT}/lock" in arrived


async def test_the_gateway_reads_the_brokers_drop_count_and_no_device_can_forge_it(secured: SecuredBroker) -> None:
    """The gateway's login may subscribe to the broker's $SYS drop counter (gateway.mqtt.drops: a rise resyncs); a
    device may neither read it nor publish a count the gateway would take for the broker's."""
    password = await secured.issue(ATTACKER)
    fence = f"{ATTACKER_ROOT}/fence"
    async with gateway(secured) as observer:
        await observer.subscribe(f"{ATTACKER_ROOT}/#", qos=1)
        assert granted(await observer.subscribe(DROPPED_TOPIC, qos=1))
        # amqtt closes the connection of a client publishing to a $ topic; Mosquitto drops the message.
        with contextlib.suppress(aiomqtt.MqttError):
            async with client(secured, ATTACKER.username, password, ATTACKER.username) as attacker:
                assert not granted(await attacker.subscribe(DROPPED_TOPIC, qos=1))
                await attacker.publish(DROPPED_TOPIC, b"999999", qos=1)
        await observer.publish(fence, b"", qos=1)  # after the forged count was refused, one way or the other
        arrived = await until_fence(observer, fence)
    assert (DROPPED_TOPIC, b"999999") not in arrived


async def test_a_device_cannot_overwrite_another_devices_retained_state_or_config(secured: SecuredBroker) -> None:
    victim_password, attacker_password = await secured.issue(VICTIM), await secured.issue(ATTACKER)
    config = "homeassistant/lock/u101-lock/lock/config"
    async with client(secured, VICTIM.username, victim_password, VICTIM.username) as victim:
        await victim.publish(f"{VICTIM_ROOT}/lock", b"UNLOCKED", qos=1, retain=True)
        await victim.publish(config, b'{"command_topic":"fwsim/u101/lock/lock/set"}', qos=1, retain=True)
    async with client(secured, ATTACKER.username, attacker_password, ATTACKER.username) as attacker:
        await attacker.publish(f"{VICTIM_ROOT}/lock", b"LOCKED", qos=1, retain=True)
        await attacker.publish(config, b"", qos=1, retain=True)  # an empty config would remove the lock
        await attacker.publish(f"{VICTIM_ROOT}/availability", b"offline", qos=1, retain=True)
    async with gateway(secured) as observer:
        await observer.subscribe([(f"{VICTIM_ROOT}/#", 1), (config, 1)])
        seen = {}
        async for message in observer.messages:
            seen[str(message.topic)] = message.payload
            if len(seen) == 2:
                break
    assert seen == {f"{VICTIM_ROOT}/lock": b"UNLOCKED", config: b'{"command_topic":"fwsim/u101/lock/lock/set"}'}


async def test_a_device_gets_its_commands_and_cannot_take_over_the_gateways_session(secured: SecuredBroker) -> None:
    victim_password, attacker_password = await secured.issue(VICTIM), await secured.issue(ATTACKER)
    gateway_id = f"aptgateway-{uuid.uuid4().hex[:8]}"
    async with (
        gateway(secured, gateway_id) as gw,
        client(secured, VICTIM.username, victim_password, VICTIM.username) as victim,
    ):
        await gw.subscribe(f"{VICTIM_ROOT}/#", qos=1)
        await victim.subscribe(f"{VICTIM_ROOT}/lock/set", qos=1)
        for username, secret in [(ATTACKER.username, attacker_password), (None, None), ("gateway", "guess")]:
            with pytest.raises(aiomqtt.MqttError):
                async with client(secured, username, secret, gateway_id, clean_session=True):
                    pass
        # The gateway is still connected and still hears its devices; the device still hears the gateway.
        await victim.publish(f"{VICTIM_ROOT}/lock", b"LOCKED", qos=1)
        async for message in gw.messages:
            assert (str(message.topic), message.payload) == (f"{VICTIM_ROOT}/lock", b"LOCKED")
            break
        await gw.publish(f"{VICTIM_ROOT}/lock/set", b"UNLOCK", qos=1)
        async for message in victim.messages:
            assert (str(message.topic), message.payload) == (f"{VICTIM_ROOT}/lock/set", b"UNLOCK")
            break


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


async def connect_with_will_and_vanish(broker: SecuredBroker, username: str, password: str, will_topic: str) -> int:
    """CONNECT (MQTT 3.1.1) with a QoS 1 last will, then drop the connection without DISCONNECT; the CONNACK code."""
    flags = 0x80 | 0x40 | 0x08 | 0x04 | 0x02  # username, password, will QoS 1, will, clean session
    variable = _field(b"MQTT") + bytes([4, flags]) + (60).to_bytes(2, "big")
    payload = b"".join(_field(x.encode()) for x in (username, will_topic, "UNLOCK", username, password))
    body = variable + payload
    assert len(body) < 128
    reader, writer = await asyncio.open_connection(broker.host, broker.port)
    writer.write(bytes([0x10, len(body)]) + body)
    await writer.drain()
    connack = await reader.read(4)
    writer.transport.abort()  # an abrupt loss: the broker sends the last will, if it accepted it
    return connack[3] if len(connack) == 4 else -1


@pytest.mark.parametrize(("will_topic", "arrives"), [(f"{VICTIM_ROOT}/lock/set", False), (f"{ATTACKER_ROOT}/x", True)])
async def test_a_last_will_is_published_only_within_the_scope(
    secured: SecuredBroker, will_topic: str, arrives: bool
) -> None:
    """Mosquitto accepts the CONNECT and drops the will, the embedded broker refuses the CONNECT: nothing arrives."""
    password = await secured.issue(ATTACKER)
    fence = f"{ATTACKER_ROOT}/fence"
    async with gateway(secured) as observer:
        await observer.subscribe("#", qos=1)
        code = await connect_with_will_and_vanish(secured, ATTACKER.username, password, will_topic)
        assert code in (0, 5)
        # Taking over the client id makes the broker finish the vanished session (and its will) first.
        async with client(secured, ATTACKER.username, password, ATTACKER.username) as attacker:
            await attacker.publish(fence, b"", qos=1)
            arrived = await until_fence(observer, fence)
    assert arrived == ([(will_topic, b"UNLOCK")] if arrives else [])


async def test_revoked_credentials_are_cut_off_on_both_brokers(tmp_path: Path) -> None:
    """Embedded: revoke, then ``drop``; Mosquitto: ``disable_client`` and ``delete_client`` (errors translated)."""
    async with embedded_secured(tmp_path) as embedded:
        password = await embedded.issue(ATTACKER)
        async with client(embedded, ATTACKER.username, password, ATTACKER.username) as attacker:
            [record] = await embedded.credentials.find(PROPERTY)
            await embedded.credentials.revoke(record.credential.id)
            assert embedded.broker.drop(ATTACKER.username) == 1
            with pytest.raises(aiomqtt.MqttError):
                await attacker.publish(f"{ATTACKER_ROOT}/lock", b"x", qos=1)
            attacker._disconnected.exception()
        with pytest.raises(aiomqtt.MqttError):
            async with client(embedded, ATTACKER.username, password, ATTACKER.username):
                pass
    if dynsec_missing() is not None:
        return
    async with mosquitto_secured(tmp_path) as mosquitto:
        password = await mosquitto.issue(ATTACKER)
        assert ATTACKER.username in await mosquitto.admin.list_clients()
        with pytest.raises(Conflict):
            await mosquitto.issue(ATTACKER)
        await mosquitto.admin.disable_client(ATTACKER.username)
        with pytest.raises(aiomqtt.MqttError):
            async with client(mosquitto, ATTACKER.username, password, ATTACKER.username):
                pass
        await mosquitto.admin.withdraw(ATTACKER.username)
        assert ATTACKER.username not in await mosquitto.admin.list_clients()
        with pytest.raises(NotFound):
            await mosquitto.admin.delete_client(ATTACKER.username)
