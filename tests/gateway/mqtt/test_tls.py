"""TLS for the embedded broker's LAN listener: the CA and server certificate the gateway makes (kept, private,
renewed when expired), a listener that only speaks TLS and still asks for credentials when gated, and the command
line that refuses a plaintext listener off loopback."""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import stat
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest
from cryptography import x509

from gateway.clock import ManualClock, SystemClock
from gateway.errors import ConfigError
from gateway.mqtt.acl import CredentialKind
from gateway.mqtt.broker import EmbeddedBroker, free_port
from gateway.mqtt.credentials import BrokerCredentials
from gateway.mqtt.tls import (
    CA_VALIDITY,
    SERVER_VALIDITY,
    TlsFiles,
    TlsListener,
    ensure_ca,
    ensure_server_certificate,
    parse_listen,
    tls_directory,
)
from gateway.storage.db import Database
from gateway.subcommands import tls_listener
from tests.support.brokers import REPO, wait_port

LAN = "127.0.0.2"  # stands in for the building's network: a second loopback address, no traffic leaves the machine
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def san(path: Path) -> list[str]:
    """The names a certificate file is valid for."""
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(n.value) for n in names]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def trusting(ca: Path | None) -> aiomqtt.TLSParameters:
    """TLS client parameters trusting ``ca`` (None: the system's CAs only, as a device not given the CA)."""
    return aiomqtt.TLSParameters(ca_certs=str(ca) if ca else None, cert_reqs=ssl.CERT_REQUIRED)


@pytest.fixture
def files(tmp_path: Path) -> TlsFiles:
    return tls_directory(tmp_path / "data" / "gateway.sqlite3")


@pytest.fixture
async def lan_broker(files: TlsFiles) -> AsyncIterator[EmbeddedBroker]:
    """The open embedded broker (the suite's default) with a TLS listener on the stand-in LAN address."""
    made = ensure_server_certificate(files, LAN)
    async with EmbeddedBroker(tls=made) as broker:
        assert broker.tls is not None
        await wait_port(LAN, broker.tls.port)
        yield broker


# --- the generated files -----------------------------------------------------------------------------------------


def test_the_generated_ca_and_certificate_are_private_named_for_the_listener_and_kept(files: TlsFiles) -> None:
    made = ensure_server_certificate(files, LAN, now=T0)
    assert (made.cert, made.key) == (files.cert, files.key)
    assert files.directory == files.ca_cert.parent and files.directory.name == "tls"
    assert mode(files.directory) == 0o700
    assert mode(files.ca_key) == 0o600 and mode(files.key) == 0o600
    assert mode(files.ca_cert) == 0o644 and mode(files.cert) == 0o644
    assert san(files.cert) == [LAN, "localhost", "127.0.0.1", "::1"]
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_after_utc == T0 + SERVER_VALIDITY and ca.not_valid_after_utc == T0 + CA_VALIDITY
    assert cert.not_valid_before_utc < T0  # a device whose clock is a little behind still accepts it
    # Another start, a year on: nothing is made anew, nothing overwritten.
    before = {p: p.read_bytes() for p in (files.ca_cert, files.ca_key, files.cert, files.key)}
    ensure_server_certificate(files, LAN, now=T0 + timedelta(days=365))
    assert {p: p.read_bytes() for p in before} == before


def test_an_expired_certificate_is_made_anew_by_the_same_ca(files: TlsFiles, caplog: pytest.LogCaptureFixture) -> None:
    ensure_server_certificate(files, LAN, now=T0)
    ca, old = files.ca_cert.read_bytes(), files.cert.read_bytes()
    ensure_server_certificate(files, LAN, now=T0 + SERVER_VALIDITY + timedelta(days=1))
    assert files.ca_cert.read_bytes() == ca  # devices keep trusting the CA they were given
    assert files.cert.read_bytes() != old
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    assert cert.not_valid_after_utc > T0 + SERVER_VALIDITY + timedelta(days=1)
    assert mode(files.key) == 0o600
    assert any("made anew" in r.getMessage() and "expires" in r.getMessage() for r in caplog.records)


def test_a_certificate_not_naming_the_listening_host_is_made_anew(files: TlsFiles) -> None:
    ensure_server_certificate(files, LAN, now=T0)
    ensure_server_certificate(files, "127.0.0.3", now=T0)
    assert san(files.cert)[0] == "127.0.0.3"


def test_an_expired_ca_is_made_anew_and_the_certificate_with_it(files: TlsFiles) -> None:
    ensure_server_certificate(files, LAN, now=T0)
    old_ca, old_key = files.ca_cert.read_bytes(), files.ca_key.read_bytes()
    later = T0 + CA_VALIDITY + timedelta(days=1)
    ensure_server_certificate(files, LAN, now=later)
    assert files.ca_cert.read_bytes() != old_ca and files.ca_key.read_bytes() != old_key
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    x509.load_pem_x509_certificate(files.cert.read_bytes()).verify_directly_issued_by(ca)
    assert mode(files.ca_key) == 0o600


def test_a_pre_made_expired_certificate_is_replaced(files: TlsFiles) -> None:
    # Made on a day long gone (as if copied from an old installation), used today.
    ensure_server_certificate(files, LAN, now=datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=1))
    assert x509.load_pem_x509_certificate(files.cert.read_bytes()).not_valid_after_utc < datetime.now(UTC)
    ensure_server_certificate(files, LAN)
    assert x509.load_pem_x509_certificate(files.cert.read_bytes()).not_valid_after_utc > datetime.now(UTC)


def test_a_ca_certificate_without_its_key_is_refused_not_replaced(files: TlsFiles) -> None:
    ensure_ca(files, now=T0)
    files.ca_key.unlink()
    kept = files.ca_cert.read_bytes()
    with pytest.raises(ConfigError, match=r"ca\.key"):
        ensure_server_certificate(files, LAN, now=T0)
    assert files.ca_cert.read_bytes() == kept


# --- the listener -------------------------------------------------------------------------------------------------


async def test_a_client_trusting_the_generated_ca_connects_over_tls(
    lan_broker: EmbeddedBroker, files: TlsFiles
) -> None:
    assert lan_broker.tls is not None
    topic = f"tls/{uuid.uuid4().hex[:8]}"
    async with (
        aiomqtt.Client(LAN, lan_broker.tls.port, identifier="dev-tls", tls_params=trusting(files.ca_cert)) as dev,
        aiomqtt.Client(lan_broker.host, lan_broker.port, identifier="gw-plain") as gateway,  # over loopback
    ):
        await gateway.subscribe(topic, qos=1)
        await dev.publish(topic, b"over tls", qos=1)
        async with asyncio.timeout(5):
            message = await anext(aiter(gateway.messages))
        assert bytes(message.payload) == b"over tls"


async def test_a_client_without_the_ca_fails_verification(lan_broker: EmbeddedBroker, files: TlsFiles) -> None:
    assert lan_broker.tls is not None
    # A TLS client as a device's: the system's CAs only (the gateway's CA not given to it), then the CA given.
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        await asyncio.open_connection(LAN, lan_broker.tls.port, ssl=ssl.create_default_context())
    _, writer = await asyncio.open_connection(
        LAN, lan_broker.tls.port, ssl=ssl.create_default_context(cafile=files.ca_cert)
    )
    writer.close()
    await writer.wait_closed()


async def test_plaintext_on_the_tls_port_fails(lan_broker: EmbeddedBroker) -> None:
    assert lan_broker.tls is not None
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(LAN, lan_broker.tls.port, identifier="dev-plain", timeout=3):
            pass


async def test_the_plaintext_listener_is_on_loopback_only(files: TlsFiles) -> None:
    with pytest.raises(ConfigError, match="loopback only") as refused:
        EmbeddedBroker("0.0.0.0", 1883)
    assert refused.value.field == "listen_host"
    with pytest.raises(ConfigError, match="loopback only"):
        EmbeddedBroker("192.168.1.10", 1883, tls=ensure_server_certificate(files, LAN))


async def test_a_gated_broker_still_asks_for_credentials_over_tls(tmp_path: Path, files: TlsFiles) -> None:
    async with Database(tmp_path / "credentials.sqlite3") as db:
        credentials = BrokerCredentials(db, ManualClock())
        issued = await credentials.create("gateway", CredentialKind.GATEWAY, property_id=None)
        async with EmbeddedBroker(credentials=credentials.verify, tls=ensure_server_certificate(files, LAN)) as broker:
            assert broker.tls is not None
            port, tls = broker.tls.port, trusting(files.ca_cert)

            def login(username: str | None, password: str | None) -> aiomqtt.Client:
                return aiomqtt.Client(LAN, port, identifier="gw", username=username, password=password, tls_params=tls)

            for refused in (login(None, None), login("gateway", "wrong")):
                with pytest.raises(aiomqtt.MqttError):
                    async with refused:
                        pass
            async with login("gateway", issued.password.get_secret_value()):
                pass


# --- the command line ---------------------------------------------------------------------------------------------


def run_args(tmp_path: Path, **options: object) -> argparse.Namespace:
    values: dict[str, object] = {
        "listen_tls": None, "tls_cert": None, "tls_key": None, "broker": None, "db": tmp_path / "gw.sqlite3",
    }  # fmt: skip
    return argparse.Namespace(**{**values, **options})


async def test_listen_tls_options_are_checked(tmp_path: Path) -> None:
    assert await tls_listener(run_args(tmp_path)) is None
    cases: list[tuple[dict[str, object], str]] = [
        ({"tls_cert": tmp_path / "c.pem"}, "listen_tls"),
        ({"listen_tls": f"{LAN}:8883", "broker": "mqtt://127.0.0.1:1883"}, "listen_tls"),
        ({"listen_tls": "no-port"}, "listen_tls"),
        ({"listen_tls": f"{LAN}:70000"}, "listen_tls"),
        ({"listen_tls": f"{LAN}:8883", "tls_cert": tmp_path / "c.pem"}, "tls_cert"),
        ({"listen_tls": f"{LAN}:8883", "tls_cert": tmp_path / "c.pem", "tls_key": tmp_path / "k.pem"}, "tls_cert"),
    ]
    for options, field in cases:
        with pytest.raises(ConfigError) as refused:
            await tls_listener(run_args(tmp_path, **options))
        assert refused.value.field == field, options
    assert parse_listen("[::1]:8883", "--listen-tls") == ("::1", 8883)


async def test_listen_tls_uses_the_operators_own_certificate(tmp_path: Path) -> None:
    own = ensure_server_certificate(TlsFiles(tmp_path / "own"), LAN)
    listener = await tls_listener(run_args(tmp_path, listen_tls=f"{LAN}:8883", tls_cert=own.cert, tls_key=own.key))
    assert listener == TlsListener(LAN, 8883, own.cert, own.key)
    assert not (tmp_path / "tls").exists()  # nothing made


async def gateway_cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Run a ``gateway`` command that ends by itself: exit code, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "--log-format", "json", *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_gateway_run_refuses_a_plaintext_listener_off_loopback(tmp_path: Path) -> None:
    code, _out, err = await gateway_cli(
        "run", "--db", str(tmp_path / "gw.sqlite3"), "--listen-host", "192.168.1.10", "--no-api", cwd=tmp_path
    )
    assert code == 2
    assert "error [config_invalid]" in err and "loopback only" in err and "--listen-tls" in err


async def test_gateway_run_serves_devices_over_tls_with_the_ca_tls_ca_prints(tmp_path: Path) -> None:
    db = tmp_path / "data" / "gw.sqlite3"
    code, path, _err = await gateway_cli("tls-ca", "--db", str(db), cwd=tmp_path)
    ca = tls_directory(db).ca_cert
    assert code == 0 and path == f"{ca}\n"
    code, pem, _err = await gateway_cli("tls-ca", "--db", str(db), "--pem", cwd=tmp_path)
    assert code == 0 and pem == ca.read_text() and pem.startswith("-----BEGIN CERTIFICATE-----")
    # The embedded broker admits nobody without a credential the gateway issued, over TLS too: a watcher's.
    async with Database(db) as database:
        watcher = await BrokerCredentials(database, SystemClock()).create(
            "tls-watcher", CredentialKind.GATEWAY, property_id=None, client_id="tls-watcher", created_by="test"
        )
    tls_port = free_port(LAN)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "--log-format", "json", "run", "--db", str(db), "--listen-port", "0",
        "--listen-tls", f"{LAN}:{tls_port}", "--no-api", "--simulate", "never", cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(60):
            line = (await proc.stdout.readline()).decode()
        assert line.startswith("gateway running: broker mqtt://127.0.0.1:"), line  # the gateway itself: loopback
        # A device given the CA (a file written from the PEM, as an installer would) sees the gateway over TLS.
        (tmp_path / "given-ca.pem").write_text(pem)
        tls = trusting(tmp_path / "given-ca.pem")
        password = watcher.password.get_secret_value()
        with pytest.raises(aiomqtt.MqttCodeError):  # anonymous over TLS: refused
            async with aiomqtt.Client(LAN, tls_port, identifier="anon-tls", tls_params=tls):
                pass
        async with aiomqtt.Client(
            LAN, tls_port, username="tls-watcher", password=password, identifier="tls-watcher", tls_params=tls
        ) as device:
            await device.subscribe("aptgateway/+/status", qos=1)
            async with asyncio.timeout(10):
                message = await anext(aiter(device.messages))
            assert bytes(message.payload) == b"online"
    finally:
        proc.terminate()
        async with asyncio.timeout(20):
            await proc.wait()
    assert mode(tmp_path / "data" / "tls" / "server.key") == 0o600
