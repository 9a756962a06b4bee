"""Preflight names why TLS is refused: an expired broker certificate, a certificate for another host,
no broker at all (retriable). A local TLS server stands in for the broker's listener (the Kafka
exchange is never reached: the handshake fails first)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from gateway.broker.local import free_port
from gateway.errors import ConfigError, RetriableError
from gateway.security.preflight import preflight


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _cert(tmp: Path, *, days: int, host: str) -> tuple[Path, Path]:
    """A CA file and a server PEM (key + certificate) valid until now + `days` for `host`."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    skey = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(name).public_key(skey.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=20)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([_san(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    ca_file, pem = tmp / "ca.pem", tmp / "server.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        skey.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        + server.public_bytes(serialization.Encoding.PEM)
    )
    return ca_file, pem


@pytest.fixture
def tls_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    days, host = request.param
    ca_file, pem = _cert(tmp_path, days=days, host=host)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pem)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    threading.Thread(target=serve, daemon=True).start()
    yield port, ca_file
    listener.close()


def _kwargs(port: int, ca_file: Path) -> dict[str, object]:
    return {
        "bootstrap_servers": f"127.0.0.1:{port}",
        "security_protocol": "SASL_SSL",
        "ssl_cafile": str(ca_file),
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "200000001",
        "sasl_plain_password": "never-printed",
    }


@pytest.mark.parametrize("tls_server", [(-1, "127.0.0.1")], indirect=True)
def test_an_expired_broker_certificate_is_named(tls_server: tuple[int, Path]) -> None:
    port, ca_file = tls_server
    with pytest.raises(ConfigError, match="certificate is refused \\(certificate has expired\\)") as info:
        preflight(_kwargs(port, ca_file), timeout_s=5)
    assert "never-printed" not in str(info.value)


@pytest.mark.parametrize("tls_server", [(30, "kafka.elsewhere.example")], indirect=True)
def test_a_certificate_for_another_host_is_named(tls_server: tuple[int, Path]) -> None:
    port, ca_file = tls_server
    with pytest.raises(ConfigError, match="certificate is refused"):
        preflight(_kwargs(port, ca_file), timeout_s=5)


def test_no_broker_is_retriable() -> None:
    with pytest.raises(RetriableError, match="no Kafka broker answers"):
        preflight({"bootstrap_servers": f"127.0.0.1:{free_port()}"}, timeout_s=2)
