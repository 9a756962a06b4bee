"""Development PKI for the simulator (cryptography): one CA, one server and one client certificate.

Files created in DIR when absent (PEM, keys unencrypted, mode 0600):
    ca.pem, ca.key          development CA ("gp-gateway dev CA"), 2 years
    server.pem, server.key  server certificate for 127.0.0.1 / localhost, signed by the CA
    client.pem, client.key  client certificate ("gp-gateway client G0000"), signed by the CA
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertPaths", "ensure_certs"]


@dataclass(frozen=True, slots=True)
class CertPaths:
    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def server(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    @property
    def client(self) -> Path:
        return self.directory / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.directory / "client.key"


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gp-gateway dev"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    server: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=730))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def ensure_certs(directory: Path) -> CertPaths:
    """Create the development CA, server and client material in `directory` unless all are there."""
    paths = CertPaths(directory)
    wanted = (paths.ca, paths.ca_key, paths.server, paths.server_key, paths.client, paths.client_key)
    if all(p.is_file() for p in wanted):
        return paths
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _issue("gp-gateway dev CA", ca_key, _name("gp-gateway dev CA"), ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _issue("127.0.0.1", server_key, ca_cert.subject, ca_key, ca=False, server=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = _issue("gp-gateway client G0000", client_key, ca_cert.subject, ca_key, ca=False)
    pem = serialization.Encoding.PEM
    paths.ca.write_bytes(ca_cert.public_bytes(pem))
    _write_key(paths.ca_key, ca_key)
    paths.server.write_bytes(server_cert.public_bytes(pem))
    _write_key(paths.server_key, server_key)
    paths.client.write_bytes(client_cert.public_bytes(pem))
    _write_key(paths.client_key, client_key)
    return paths
