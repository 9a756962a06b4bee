"""Connection settings of every Kafka client the gateway makes: the one seam between
`GatewaySettings` and kafka-python / aiokafka / faust. Build clients with `**client_kwargs(settings)`
(kafka-python), `**aiokafka_kwargs(settings)` or `faust_broker_credentials(settings)`, never from a
bare bootstrap string, so that security settings reach every client.

Where the security comes from, first match wins (docs/security.md):
1. the GATEWAY_KAFKA_* fields (protocol, SASL mechanism, user, password, CA, client certificate);
2. GATEWAY_KAFKA_CLIENT_FILE, a 0600 JSON client file (an admin client file, a connection kit);
3. when every bootstrap server is on loopback, the local broker's admin client file
   (`<state_dir>/broker/<version>/security/admin-client.json`, written by `gateway broker start`);
4. PLAINTEXT, only with GATEWAY_KAFKA_ALLOW_PLAINTEXT=true (development).
Otherwise, or when a given setting cannot be used, ConfigError naming the setting (never a value)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError
from gateway.security.client import ClientSecurity, read_client_file
from gateway.settings import GatewaySettings

__all__ = [
    "RECONNECT",
    "aiokafka_kwargs",
    "as_client_kwargs",
    "bootstrap_of",
    "client_kwargs",
    "client_security",
    "explicit_security",
    "faust_broker_credentials",
    "local_admin_client_file",
]

# kafka-python backs reconnects off up to 30 s by default (a worker resumed ~40 s after its broker
# came back): 2 s at most, so a flow resumes within seconds of the broker's return.
RECONNECT: dict[str, Any] = {"reconnect_backoff_ms": 100, "reconnect_backoff_max_ms": 2000}

_LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")
_SETTING_NAMES = {
    "security_protocol": "GATEWAY_KAFKA_SECURITY_PROTOCOL",
    "sasl_mechanism": "GATEWAY_KAFKA_SASL_MECHANISM",
    "sasl_username": "GATEWAY_KAFKA_SASL_USERNAME",
    "sasl_password": "GATEWAY_KAFKA_SASL_PASSWORD",
    "ssl_cafile": "GATEWAY_KAFKA_SSL_CAFILE",
    "ssl_certfile": "GATEWAY_KAFKA_SSL_CERTFILE",
    "ssl_keyfile": "GATEWAY_KAFKA_SSL_KEYFILE",
}


def local_admin_client_file(settings: GatewaySettings) -> Path:
    """The admin client file of the local broker of `settings.state_dir` (gateway broker start)."""
    return (
        Path(settings.state_dir).expanduser()
        / "broker"
        / settings.kafka_version
        / "security"
        / "admin-client.json"
    )


def _loopback_only(bootstrap: str) -> bool:
    hosts = [b.strip().rpartition(":")[0] for b in bootstrap.split(",") if b.strip()]
    return bool(hosts) and all(h in _LOOPBACK for h in hosts)


def explicit_security(settings: GatewaySettings) -> bool:
    """True when a GATEWAY_KAFKA_* security field (other than the client file) is set."""
    return any(getattr(settings, f"kafka_{name}") is not None for name in _SETTING_NAMES)


def client_security(settings: GatewaySettings) -> ClientSecurity:
    """The security of this process's Kafka clients (see the module docstring)."""
    if explicit_security(settings):
        protocol = settings.kafka_security_protocol or (
            "SASL_SSL" if settings.kafka_sasl_username or settings.kafka_sasl_password else "SSL"
        )
        sec = ClientSecurity(
            security_protocol=protocol,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_username=settings.kafka_sasl_username,
            sasl_password=settings.kafka_sasl_password,
            ssl_cafile=settings.kafka_ssl_cafile,
            ssl_certfile=settings.kafka_ssl_certfile,
            ssl_keyfile=settings.kafka_ssl_keyfile,
        )
        problems = sec.problems(_SETTING_NAMES)
        if protocol in ("PLAINTEXT", "SASL_PLAINTEXT") and not settings.kafka_allow_plaintext:
            problems.insert(
                0,
                f"GATEWAY_KAFKA_SECURITY_PROTOCOL={protocol} sends data and passwords unencrypted:"
                " it needs GATEWAY_KAFKA_ALLOW_PLAINTEXT=true (development only)",
            )
        if problems:
            raise ConfigError("Kafka security settings unusable: " + "; ".join(problems))
        return sec
    if settings.kafka_client_file is not None:
        return _checked(read_client_file(settings.kafka_client_file, "GATEWAY_KAFKA_CLIENT_FILE"), settings)
    local = local_admin_client_file(settings)
    if _loopback_only(settings.bootstrap_servers) and local.is_file():
        return _checked(read_client_file(local, "the local broker's admin client file"), settings)
    if settings.kafka_allow_plaintext:
        return ClientSecurity(security_protocol="PLAINTEXT")
    raise ConfigError(
        f"no Kafka credentials for {settings.bootstrap_servers}: set GATEWAY_KAFKA_SASL_USERNAME,"
        " GATEWAY_KAFKA_SASL_PASSWORD and GATEWAY_KAFKA_SSL_CAFILE (or GATEWAY_KAFKA_CLIENT_FILE),"
        " start the local broker (`gateway broker start`, it writes its admin client file), or, for"
        " development only, GATEWAY_KAFKA_ALLOW_PLAINTEXT=true"
    )


def _checked(sec: ClientSecurity, settings: GatewaySettings) -> ClientSecurity:
    if sec.security_protocol in ("PLAINTEXT", "SASL_PLAINTEXT") and not settings.kafka_allow_plaintext:
        raise ConfigError(
            f"the client file asks for {sec.security_protocol}: it needs GATEWAY_KAFKA_ALLOW_PLAINTEXT=true"
        )
    return sec


def client_kwargs(settings: GatewaySettings) -> dict[str, Any]:
    """kafka-python keyword arguments: bootstrap servers and security."""
    return {
        "bootstrap_servers": settings.bootstrap_servers,
        **RECONNECT,
        **client_security(settings).kafka_python(),
    }


def aiokafka_kwargs(settings: GatewaySettings) -> dict[str, Any]:
    """aiokafka keyword arguments: bootstrap servers and security (an ssl.SSLContext)."""
    return {"bootstrap_servers": settings.bootstrap_servers, **client_security(settings).aiokafka()}


def faust_broker_credentials(settings: GatewaySettings) -> Any:
    """faust's `broker_credentials` (SASLCredentials / SSLCredentials; None for PLAINTEXT)."""
    return client_security(settings).faust_credentials()


def as_client_kwargs(target: str | Mapping[str, Any]) -> dict[str, Any]:
    """kafka-python kwargs from what a helper was given: the kwargs themselves (`client_kwargs`), or,
    for callers that still pass a bootstrap string, that bootstrap with this process's security
    (GatewaySettings from the environment)."""
    if isinstance(target, Mapping):
        return dict(target)
    return client_kwargs(GatewaySettings(bootstrap_servers=target))


def bootstrap_of(target: str | Mapping[str, Any]) -> str:
    """The bootstrap servers of a target (for messages: never the security part)."""
    return str(target["bootstrap_servers"]) if isinstance(target, Mapping) else target
