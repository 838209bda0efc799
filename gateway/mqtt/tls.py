"""TLS for the embedded broker's LAN listener: a CA and a server certificate the gateway makes and keeps on site."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import ConfigError

__all__ = [
    "CA_VALIDITY",
    "RENEW_BEFORE",
    "SERVER_VALIDITY",
    "TlsFiles",
    "TlsListener",
    "ensure_ca",
    "ensure_server_certificate",
    "is_loopback",
    "parse_listen",
    "subject_alt_names",
    "tls_directory",
]

log = logging.getLogger(__name__)

CA_VALIDITY = timedelta(days=3650)
SERVER_VALIDITY = timedelta(days=825)  # the longest a TLS client (Apple's) accepts a server certificate for
RENEW_BEFORE = timedelta(days=30)
"""A server certificate this close to its end is made anew at the start (a gateway runs for months)."""
KEY_BITS = 2048  # RSA: what every MQTT device stack (mbedTLS, BearSSL, OpenSSL) verifies
_BACKDATE = timedelta(minutes=5)  # a device whose clock runs a little behind still accepts a fresh certificate
_PRIVATE = 0o600


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Where the generated CA and server certificate live (the keys readable by the gateway's user only)."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        """The CA certificate: what devices are given to trust."""
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        """The CA's private key (mode 0600; never leaves the gateway)."""
        return self.directory / "ca.key"

    @property
    def cert(self) -> Path:
        """The server certificate the broker presents."""
        return self.directory / "server.crt"

    @property
    def key(self) -> Path:
        """The server's private key (mode 0600)."""
        return self.directory / "server.key"


@dataclass(frozen=True, slots=True)
class TlsListener:
    """A TLS listener of the embedded broker: where, and the certificate chain and key it presents."""

    host: str
    port: int
    cert: Path
    key: Path

    @property
    def url(self) -> str:
        """``mqtts://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mqtts://{host}:{self.port}"


def tls_directory(database: Path) -> TlsFiles:
    """The generated files of the installation whose database is ``database``: ``tls/`` beside it."""
    return TlsFiles(database.parent / "tls")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (a loopback address, or ``localhost``)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_listen(value: str, option: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[v6]:PORT`` (port 1 to 65535); ConfigError naming ``option`` otherwise."""
    host, sep, port_text = value.strip().rpartition(":")
    host = host.strip("[]")
    field = option.removeprefix("--").replace("-", "_")
    if not sep or not host or not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{option} must be HOST:PORT, got {value[:80]!r}", field=field)
    return host, int(port_text)


def subject_alt_names(host: str) -> list[str]:
    """Names a device may use to reach a listener on ``host``: that host (for every address: this machine's name and
    addresses), and ``localhost``, 127.0.0.1 and ::1 for checks on the machine itself."""
    names = [host]
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_unspecified:
            hostname = socket.gethostname()
            names = [hostname, f"{hostname}.local", *_addresses(hostname)]
    return _unique([*names, "localhost", "127.0.0.1", "::1"])


def ensure_ca(files: TlsFiles, now: datetime | None = None) -> x509.Certificate:
    """The installation's CA: made when missing or expired; a CA certificate without its key is refused."""
    now = now or datetime.now(UTC)
    have_cert, have_key = files.ca_cert.exists(), files.ca_key.exists()
    if have_cert != have_key:
        present, absent = (files.ca_cert, files.ca_key) if have_cert else (files.ca_key, files.ca_cert)
        raise ConfigError(
            f"{present} is there but {absent} is not: restore it, or move {present} away to make a new CA "
            "(every device must then be given the new CA certificate)",
            field="tls",
        )
    if have_cert:
        ca = _load_cert(files.ca_cert)
        if ca.not_valid_after_utc > now:
            return ca
        log.warning(
            "the TLS CA expired on %s: a new CA is made; every device must be given the new CA certificate %s",
            ca.not_valid_after_utc.isoformat(),
            files.ca_cert,
        )
    files.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "aptgateway"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"aptgateway CA {now:%Y-%m-%d}"),
        ]
    )
    ca = (
        _builder(name, name, key.public_key(), now, CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_private(files.ca_key, _key_pem(key))
    _write_public(files.ca_cert, ca.public_bytes(serialization.Encoding.PEM))
    log.info("TLS CA made", extra={"ca_cert": str(files.ca_cert), "expires": ca.not_valid_after_utc.isoformat()})
    return ca


def ensure_server_certificate(files: TlsFiles, host: str, now: datetime | None = None) -> TlsListener:
    """The broker's server certificate for a listener on ``host``, signed by the installation's CA.

    Made when missing, expired or about to expire (``RENEW_BEFORE``), signed by another CA, or not naming every
    one of ``subject_alt_names(host)``; otherwise kept as it is. The port is left 0 for the caller to set.
    """
    now = now or datetime.now(UTC)
    ca = ensure_ca(files, now)
    names = subject_alt_names(host)
    why = _why_remake(files, ca, names, now)
    if why is not None:
        if why != "missing":
            log.warning("the TLS server certificate is made anew: %s", why, extra={"cert": str(files.cert)})
        ca_key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
        if not isinstance(ca_key, rsa.RSAPrivateKey):
            raise ConfigError(f"{files.ca_key} is not the RSA key this gateway made", field="tls")
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "aptgateway"),
                x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64]),
            ]
        )
        cert = (
            _builder(subject, ca.subject, key.public_key(), now, SERVER_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(files.key, _key_pem(key))
        _write_public(files.cert, cert.public_bytes(serialization.Encoding.PEM))
        log.info("TLS server certificate made", extra={"names": names, "expires": cert.not_valid_after_utc.isoformat()})
    return TlsListener(host=host, port=0, cert=files.cert, key=files.key)


# --- helpers --------------------------------------------------------------------------------------------------


def _why_remake(files: TlsFiles, ca: x509.Certificate, names: Sequence[str], now: datetime) -> str | None:
    if not files.cert.exists() or not files.key.exists():
        return "missing"
    cert = _load_cert(files.cert)
    if cert.not_valid_after_utc - RENEW_BEFORE <= now:
        return f"it expires on {cert.not_valid_after_utc.isoformat()}"
    if cert.issuer != ca.subject or not _signed_by(cert, ca):
        return "it was not signed by this installation's CA"
    try:
        present = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "it names no host"
    missing = [n for n in _general_names(names) if n not in present]
    if missing:
        return f"it does not name {', '.join(str(n.value) for n in missing)}"
    return None


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: rsa.RSAPublicKey, now: datetime, validity: timedelta
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _general_names(names: Iterable[str]) -> list[x509.GeneralName]:
    result: list[x509.GeneralName] = []
    for name in names:
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            result.append(x509.DNSName(name))
    return result


def _addresses(hostname: str) -> list[str]:
    """This machine's addresses under ``hostname`` other than loopback ones (none when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    return [str(a) for a in (ipaddress.ip_address(i[4][0]) for i in infos) if not a.is_loopback]


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError as exc:
        raise ConfigError(f"{path} is not a PEM certificate: move it away to have a new one made", field="tls") from exc


def _write_private(path: Path, data: bytes) -> None:
    """Write a key readable by this user only: created 0600, never world-readable for a moment."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, _PRIVATE)  # whatever the umask
    tmp.replace(path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    tmp.replace(path)
