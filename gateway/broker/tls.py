"""Security material of the local broker: a CA, the broker's key and certificate, the SCRAM secrets
of the `broker` and `gateway-admin` principals and the admin client file, created on first start.

Every private file (keys, secrets, client files) is created 0600 from the start (`os.open` with
mode 0o600, never chmod afterwards). The server certificate names 127.0.0.1 and localhost so that
clients keep hostname verification on. Layout of `<dir>`:

    ca.pem            the CA certificate (public: clients trust it)
    ca.key            the CA key (0600): signs the broker certificate, nothing else
    server.pem        the broker key + certificate chain, PEM keystore (0600)
    broker.secret     SCRAM password of the `broker` principal (inter-broker listener, 0600)
    admin-client.json the admin principal's client file (0600): `gateway-admin`, its password, ca.pem
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ADMIN_PRINCIPAL",
    "BROKER_PRINCIPAL",
    "BrokerSecurity",
    "new_secret",
    "read_private",
    "write_private",
]

BROKER_PRINCIPAL = "broker"
ADMIN_PRINCIPAL = "gateway-admin"
SCRAM_MECHANISM = "SCRAM-SHA-512"
_VALIDITY_DAYS = 825  # the longest validity clients accept for a server certificate


def new_secret() -> str:
    """A random password: 32 bytes, URL-safe (no character a properties or JSON file must escape)."""
    return secrets.token_urlsafe(32)


def write_private(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` readable by the owner only: created 0600 (never world-readable, not even
    for an instant), replaced atomically."""
    raw = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, raw)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)


def read_private(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip()


@dataclass(frozen=True)
class BrokerSecurity:
    """The security material in `dir` (see the module docstring)."""

    dir: Path
    hosts: tuple[str, ...] = ()  # more names for the server certificate (e.g. the compose host name)

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def server_pem(self) -> Path:
        return self.dir / "server.pem"

    @property
    def broker_secret_file(self) -> Path:
        return self.dir / "broker.secret"

    @property
    def admin_client_file(self) -> Path:
        return self.dir / "admin-client.json"

    def complete(self) -> bool:
        files = (self.ca_cert, self.ca_key, self.server_pem, self.broker_secret_file, self.admin_client_file)
        return all(f.exists() for f in files)

    def ensure(self) -> BrokerSecurity:
        """Create what is missing (once; concurrent starts are serialised with a file lock)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        with (self.dir / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.complete():
                return self
            ca_key, ca_cert = _make_ca()
            server_key, server_cert = _make_server(ca_key, ca_cert, self.hosts)
            write_private(self.ca_key, _key_pem(ca_key))
            write_private(self.server_pem, _key_pem(server_key) + _cert_pem(server_cert) + _cert_pem(ca_cert))
            write_private(self.broker_secret_file, new_secret())
            write_private(
                self.admin_client_file,
                json.dumps(
                    {
                        "security_protocol": "SASL_SSL",
                        "sasl_mechanism": SCRAM_MECHANISM,
                        "sasl_username": ADMIN_PRINCIPAL,
                        "sasl_password": new_secret(),
                        "ssl_cafile": str(self.ca_cert),
                    },
                    indent=1,
                ),
            )
            self.ca_cert.write_bytes(_cert_pem(ca_cert))  # public
        return self

    def broker_secret(self) -> str:
        return read_private(self.broker_secret_file)

    def admin_secret(self) -> str:
        value: str = json.loads(self.admin_client_file.read_text(encoding="utf-8"))["sasl_password"]
        return value


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _make_ca() -> tuple[object, object]:
    from cryptography import x509  # noqa: PLC0415 - only on first start
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"gp-gateway local CA {secrets.token_hex(4)}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _make_server(ca_key: object, ca_cert: object, hosts: tuple[str, ...] = ()) -> tuple[object, object]:
    """The broker's certificate: SAN 127.0.0.1, ::1 and localhost; server and client authentication
    (the broker presents it on the client listener and, mutual TLS, on the controller listener)."""
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    issuer = ca_cert.subject  # type: ignore[attr-defined]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BROKER_PRINCIPAL)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=_VALIDITY_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    *(x509.DNSName(h) for h in hosts if h != "localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return key, cert


def _key_pem(key: object) -> bytes:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert_pem(cert: object) -> bytes:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    return cert.public_bytes(serialization.Encoding.PEM)  # type: ignore[attr-defined, no-any-return]
