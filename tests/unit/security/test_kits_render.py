"""Connection kit renderings: librdkafka, Java properties, JSON."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.security.acl import Principal
from gateway.security.client import ClientSecurity
from gateway.security.kits import Kit, render
from pydantic import SecretStr

LIBRDKAFKA_KEYS = {
    "bootstrap.servers", "security.protocol", "client.id", "sasl.mechanism", "sasl.username",
    "sasl.password", "ssl.ca.location", "ssl.endpoint.identification.algorithm", "group.id",
    "schema.registry.url",
}  # fmt: skip


def _kit(registry: str | None = None) -> Kit:
    sec = ClientSecurity(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="200000001",
        sasl_password=SecretStr("pw-123"),
        ssl_cafile=Path("/state/ca.pem"),
    )
    return Kit(
        Principal("200000001", "actor", "bailleur"),
        "127.0.0.1:9092",
        sec,
        "app.actor.200000001.main",
        (),
        registry,
    )


def test_librdkafka_lines_are_key_value_properties_with_the_usable_secret() -> None:
    text = render(_kit(), "librdkafka")
    props = dict(line.split("=", 1) for line in text.splitlines())
    assert set(props) <= LIBRDKAFKA_KEYS
    assert props["sasl.password"] == "pw-123" and props["security.protocol"] == "sasl_ssl"
    assert props["group.id"] == "app.actor.200000001.main" and props["ssl.ca.location"] == "/state/ca.pem"
    assert "schema.registry.url" not in props
    assert (
        dict(line.split("=", 1) for line in render(_kit("http://r:8080"), "librdkafka").splitlines())[
            "schema.registry.url"
        ]
        == "http://r:8080"
    )


def test_java_properties_and_json() -> None:
    props = dict(line.split("=", 1) for line in render(_kit(), "properties").splitlines())
    assert props["security.protocol"] == "SASL_SSL" and props["ssl.truststore.type"] == "PEM"
    assert props["sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required"
        ' username="200000001" password="pw-123";'
    )
    assert json.loads(render(_kit(), "json")) == dict(
        line.split("=", 1) for line in render(_kit(), "librdkafka").splitlines()
    )
