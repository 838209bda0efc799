"""External broker options: username/password and TLS against a private Mosquitto."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from gateway.app import Gateway
from gateway.config import BrokerSettings, GatewaySettings
from gateway.errors import BrokerUnavailable
from gateway.mqtt.broker import free_port
from gateway.mqtt.transport import InboundMessage, LinkState, MqttLink, Subscription
from gateway.subcommands import check_broker
from tests.support.brokers import mosquitto_binary, wait_port
from tests.support.polling import eventually

pytestmark = pytest.mark.mosquitto


@dataclass(frozen=True)
class SecureBroker:
    plain_port: int
    tls_port: int
    ca_file: Path


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


@pytest.fixture
async def secure_broker(tmp_path: Path) -> AsyncIterator[SecureBroker]:
    binary, passwd, openssl = mosquitto_binary(), shutil.which("mosquitto_passwd"), shutil.which("openssl")
    if binary is None or passwd is None or openssl is None:
        pytest.skip("needs mosquitto, mosquitto_passwd and openssl")
    _run(
        openssl,
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        cwd=tmp_path,
    )
    _run(
        openssl,
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
        cwd=tmp_path,
    )
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _run(
        openssl,
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        cwd=tmp_path,
    )
    _run(passwd, "-b", "-c", "passwd", "gateway", "s3cret-pass", cwd=tmp_path)
    plain, tls = free_port(), free_port()
    (tmp_path / "mosquitto.conf").write_text(
        f"user root\nallow_anonymous false\npassword_file {tmp_path}/passwd\nset_tcp_nodelay true\n"
        f"listener {plain} 127.0.0.1\n"
        f"listener {tls} 127.0.0.1\ncafile {tmp_path}/ca.crt\ncertfile {tmp_path}/server.crt\n"
        f"keyfile {tmp_path}/server.key\n"
    )
    proc = await asyncio.create_subprocess_exec(
        binary,
        "-c",
        str(tmp_path / "mosquitto.conf"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await wait_port("127.0.0.1", plain)
        await wait_port("127.0.0.1", tls)
        yield SecureBroker(plain, tls, tmp_path / "ca.crt")
    finally:
        proc.kill()
        await proc.wait()


async def test_gateway_logs_in_over_tls_and_discovers(secure_broker: SecureBroker, tmp_path: Path) -> None:
    url = f"mqtts://gateway:s3cret-pass@127.0.0.1:{secure_broker.tls_port}"
    broker = BrokerSettings.from_url(url, ca_file=secure_broker.ca_file)
    assert broker.tls and broker.username == "gateway"
    settings = GatewaySettings(broker=broker, database=tmp_path / "gw.sqlite3", client_id=f"gw-{uuid.uuid4().hex[:6]}")
    async with Gateway(settings) as gw:
        await gw.wait_connected(10)
        async with aiomqtt.Client(
            "127.0.0.1", secure_broker.plain_port, username="gateway", password="s3cret-pass"
        ) as device:
            config = b'{"state_topic":"door/state","device_class":"door","device":{"identifiers":["door"]}}'
            await device.publish("homeassistant/binary_sensor/door/contact/config", config, qos=1)
            await device.publish("door/state", b"ON", qos=1, retain=True)
        entity_id = "binary_sensor/door/contact"
        await eventually(
            lambda: (e := gw.registry.get(entity_id)) is not None and e.state is not None,
            what=f"door discovered over TLS ({gw.metrics.snapshot()})",
        )


async def test_wrong_password_never_connects_and_says_so(secure_broker: SecureBroker, tmp_path: Path) -> None:
    broker = BrokerSettings(host="127.0.0.1", port=secure_broker.plain_port, username="gateway", password="wrong")
    settings = GatewaySettings(broker=broker, database=tmp_path / "gw.sqlite3", client_id=f"gw-{uuid.uuid4().hex[:6]}")
    async with Gateway(settings) as gw:
        with pytest.raises(BrokerUnavailable):
            await gw.wait_connected(1.5)
        assert gw.link.state in (LinkState.BACKOFF, LinkState.CONNECTING)


async def test_check_broker_command(secure_broker: SecureBroker, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    good = argparse.Namespace(
        broker=f"mqtt://127.0.0.1:{secure_broker.plain_port}",
        username="gateway",
        password="s3cret-pass",
        tls=None,
        ca_file=None,
        tls_insecure=None,
    )
    assert await check_broker(good) == 0
    bad = argparse.Namespace(**{**vars(good), "password": "nope"})
    assert await check_broker(bad) == 1
    assert "unreachable" in capsys.readouterr().out


def _tls_link(
    secure_broker: SecureBroker, topic: str, on_message: Callable[[InboundMessage], None], **options: Any
) -> MqttLink:
    """The gateway's link to the TLS listener, subscribed to ``topic`` at QoS 0."""
    url = f"mqtts://gateway:s3cret-pass@127.0.0.1:{secure_broker.tls_port}"
    return MqttLink(
        BrokerSettings.from_url(url, ca_file=secure_broker.ca_file),
        client_id=f"tls-{uuid.uuid4().hex[:8]}",
        subscriptions=[Subscription(topic, 0)],
        on_message=on_message,
        **options,
    )


def _plain_publisher(secure_broker: SecureBroker) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", secure_broker.plain_port, username="gateway", password="s3cret-pass")


@pytest.mark.parametrize("hold", [0.0, 30.0], ids=["read-at-once", "reads-held"])
async def test_a_qos0_burst_over_tls_arrives_whole_and_in_order(secure_broker: SecureBroker, hold: float) -> None:
    """QoS 0 messages parsed from TLS reads (payloads up to 40 KB, across TLS records and 64 KiB reads) arrive
    once each, in order, intact; with reads held 30 s at a quiet rate, the burst ends the hold at once."""
    topic = f"tlsburst/{uuid.uuid4().hex[:8]}"
    count = 300
    sent = [f"{seq}:".encode() + b"t" * (seq * 137 % 40_000) for seq in range(count)]
    received: list[bytes] = []
    done = asyncio.Event()

    def on_message(message: InboundMessage) -> None:
        received.append(message.payload)
        if len(received) == count:
            done.set()

    async with _tls_link(secure_broker, topic, on_message, read_hold=hold) as link:
        await link.wait_connected(10)
        async with _plain_publisher(secure_broker) as publisher:
            for payload in sent:
                await publisher.publish(topic, payload, qos=1)
        async with asyncio.timeout(15):
            await done.wait()
    assert received == sent


async def test_quiet_messages_over_tls_are_held_then_read_together(secure_broker: SecureBroker) -> None:
    """Over TLS too, ten messages 10 ms apart wait for the 1 s hold and arrive in one read, in order."""
    topic = f"tlsquiet/{uuid.uuid4().hex[:8]}"
    received: list[tuple[bytes, int, float]] = []
    probes: list[bytes] = []
    held_reads = [0]

    def on_message(message: InboundMessage) -> None:
        if message.payload != b"probe":
            received.append((message.payload, held_reads[0], asyncio.get_running_loop().time()))
        else:
            probes.append(message.payload)

    def on_held_read() -> None:
        held_reads[0] += 1

    async with _tls_link(secure_broker, topic, on_message, read_hold=1.0, on_held_read=on_held_read) as link:
        await link.wait_connected(10)
        async with _plain_publisher(secure_broker) as publisher:
            with link.expedite():  # subscribed: a probe came back
                while not probes:
                    await publisher.publish(topic, b"probe", qos=0)
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.1)
            held_reads[0] = 0
            first = asyncio.get_running_loop().time()
            for seq in range(10):
                await publisher.publish(topic, str(seq).encode(), qos=0)
                await asyncio.sleep(0.01)
            await eventually(lambda: len(received) == 10, timeout=10, what="ten messages")
    assert [payload for payload, _read, _at in received] == [str(i).encode() for i in range(10)]
    assert {read for _payload, read, _at in received} == {0}, "one held read took all ten"
    assert received[0][2] - first >= 0.9, "the first was held for the hold's time"
