"""Kafka client security from the settings: precedence, refusal of unusable or plaintext settings
naming the setting (never the value), and the kwargs of each client library."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from gateway.broker.tls import BrokerSecurity, write_private
from gateway.errors import ConfigError
from gateway.kafka_config import RECONNECT, aiokafka_kwargs, client_kwargs, local_admin_client_file
from gateway.settings import GatewaySettings
from pydantic import SecretStr


def _settings(tmp_path: Path, **kw: object) -> GatewaySettings:
    base: dict[str, object] = {
        "state_dir": tmp_path,
        "bootstrap_servers": "127.0.0.1:9092",
        "kafka_client_file": None,
    }
    return GatewaySettings(**{**base, **kw})


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GATEWAY_KAFKA_"):
            monkeypatch.delenv(name)


def test_nothing_set_and_no_local_broker_is_refused_with_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"GATEWAY_KAFKA_SASL_USERNAME.*GATEWAY_KAFKA_ALLOW_PLAINTEXT"):
        client_kwargs(_settings(tmp_path))


def test_plaintext_only_with_the_development_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs GATEWAY_KAFKA_ALLOW_PLAINTEXT"):
        client_kwargs(_settings(tmp_path, kafka_security_protocol="PLAINTEXT"))
    kw = client_kwargs(_settings(tmp_path, kafka_security_protocol="PLAINTEXT", kafka_allow_plaintext=True))
    assert kw == {"bootstrap_servers": "127.0.0.1:9092", **RECONNECT, "security_protocol": "PLAINTEXT"}


def test_explicit_sasl_settings_and_the_unusable_ones_named_without_their_value(tmp_path: Path) -> None:
    secret = "s3cret-value-never-printed"  # noqa: S105 - a test value
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    kw = client_kwargs(
        _settings(
            tmp_path, kafka_sasl_username="u", kafka_sasl_password=SecretStr(secret), kafka_ssl_cafile=ca
        )
    )
    assert kw["security_protocol"] == "SASL_SSL" and kw["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kw["sasl_plain_password"] == secret and kw["ssl_cafile"] == str(ca) and kw["ssl_check_hostname"]
    with pytest.raises(ConfigError) as info:
        client_kwargs(
            _settings(
                tmp_path,
                kafka_sasl_username="u",
                kafka_sasl_password=SecretStr(secret),
                kafka_ssl_cafile=tmp_path / "nope.pem",
            )
        )
    assert "GATEWAY_KAFKA_SSL_CAFILE" in str(info.value) and secret not in str(info.value)
    with pytest.raises(ConfigError, match="GATEWAY_KAFKA_SASL_PASSWORD is required"):
        client_kwargs(_settings(tmp_path, kafka_sasl_username="u"))


def test_the_local_admin_client_file_is_used_for_loopback_only(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    sec = BrokerSecurity(local_admin_client_file(settings).parent).ensure()
    kw = client_kwargs(settings)
    assert kw["sasl_plain_username"] == "gateway-admin" and kw["ssl_cafile"] == str(sec.ca_cert)
    with pytest.raises(ConfigError, match=r"no Kafka credentials for kafka\.example\.org:9093"):
        client_kwargs(_settings(tmp_path, bootstrap_servers="kafka.example.org:9093"))  # never sent away


def test_a_client_file_is_read_and_a_bad_one_named(tmp_path: Path) -> None:
    good = tmp_path / "kit.json"
    write_private(
        good, json.dumps({"sasl_username": "a", "sasl_password": "p", "sasl_mechanism": "SCRAM-SHA-512"})
    )
    assert client_kwargs(_settings(tmp_path, kafka_client_file=good))["sasl_plain_username"] == "a"
    bad = tmp_path / "bad.json"
    write_private(bad, json.dumps({"sasl_username": "a", "sasl_password": "p", "colour": "blue"}))
    with pytest.raises(ConfigError, match=r"GATEWAY_KAFKA_CLIENT_FILE.*colour"):
        client_kwargs(_settings(tmp_path, kafka_client_file=bad))
    with pytest.raises(ConfigError, match="GATEWAY_KAFKA_CLIENT_FILE: cannot read"):
        client_kwargs(_settings(tmp_path, kafka_client_file=tmp_path / "missing.json"))


def test_aiokafka_and_faust_get_a_verifying_ssl_context(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    BrokerSecurity(local_admin_client_file(settings).parent).ensure()
    kw = aiokafka_kwargs(settings)
    assert kw["ssl_context"].check_hostname and kw["sasl_mechanism"] == "SCRAM-SHA-512"
    from gateway.kafka_config import faust_broker_credentials  # noqa: PLC0415

    creds = faust_broker_credentials(settings)
    assert creds.protocol.value == "SASL_SSL" and creds.mechanism.value == "SCRAM-SHA-512"
    assert "p" not in repr(creds).split("username=")[0]


def test_security_material_is_created_owner_only(tmp_path: Path) -> None:
    sec = BrokerSecurity(tmp_path / "sec").ensure()
    for path in (sec.ca_key, sec.server_pem, sec.broker_secret_file, sec.admin_client_file):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert (tmp_path / "sec").stat().st_mode & 0o777 == 0o700
    from cryptography import x509  # noqa: PLC0415

    cert = x509.load_pem_x509_certificates(sec.server_pem.read_bytes())[0]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    again = sec.admin_secret()
    BrokerSecurity(tmp_path / "sec").ensure()
    assert sec.admin_secret() == again  # created once
