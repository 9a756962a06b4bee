"""Connection kits: everything an actor or a source needs to connect with a standard client.

A principal's credential (a SCRAM-SHA-512 password) is created on first use through the admin
principal and stored in `<state_dir>/credentials/<principal>.json` (0600): a client file that
`GATEWAY_KAFKA_CLIENT_FILE` can name. `rotate` replaces it on the broker in one step, so the old
password stops working at once (rotation revokes); `revoke` deletes it. Credentials never change
ACLs (`gateway acl apply` does).

Renderings (`render`): `librdkafka` (one valid librdkafka / confluent-kafka property per line),
`properties` (the Java client's keys), `json` (the librdkafka content as an object).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from gateway.broker.tls import new_secret, write_private
from gateway.errors import ConfigError
from gateway.kafka_config import client_kwargs, client_security
from gateway.security.acl import Principal, actor_group_prefix, principal, source_raw_topics
from gateway.security.client import ClientSecurity, read_client_file
from gateway.settings import GatewaySettings

__all__ = [
    "Kit",
    "KitFormat",
    "actor_aiokafka_kwargs",
    "actor_client_kwargs",
    "credential_file",
    "ensure_credential",
    "kit",
    "render",
    "revoke",
]

KitFormat = Literal["librdkafka", "properties", "json"]
DEFAULT_GROUP_NAME = "main"


@dataclass(frozen=True)
class Kit:
    principal: Principal
    bootstrap: str
    security: ClientSecurity
    group_id: str | None  # actors: their group prefix + a name
    topics: tuple[str, ...]  # what it reads (actor) or writes (source)
    schema_registry_url: str | None = None


def credential_file(settings: GatewaySettings, principal_id: str) -> Path:
    return Path(settings.state_dir).expanduser() / "credentials" / f"{principal_id}.json"


def _policy_parties(settings: GatewaySettings) -> tuple[Any, Any]:
    from gateway.policy.model import load_policy  # noqa: PLC0415 - policy is loaded only here

    pol = load_policy(settings.policy_file, secret=settings.pseudonymisation_secret)
    return pol.actors, pol.sources


def _lookup(settings: GatewaySettings, principal_id: str) -> Principal:
    actors, sources = _policy_parties(settings)
    return principal(principal_id, actors, sources, settings.app_id)


def ensure_credential(
    settings: GatewaySettings, principal_id: str, *, rotate: bool = False
) -> ClientSecurity:
    """The principal's client security, its SCRAM credential created on the broker when it has none
    (or replaced, `rotate`). Unknown principal: ConfigError naming it."""
    p = _lookup(settings, principal_id)
    admin = client_security(settings)
    if not admin.uses_sasl:
        raise ConfigError(
            f"cannot issue a credential for principal {p.name!r}: the gateway's own Kafka connection is"
            f" {admin.security_protocol}; kits are SASL/SCRAM credentials of a secured broker"
        )
    path = credential_file(settings, p.name)
    from gateway.security.admin import AdminSession  # noqa: PLC0415 - the broker edge

    with AdminSession(client_kwargs(settings)) as session:
        if path.is_file() and not rotate:
            stored = read_client_file(path, f"the credential file of principal {p.name!r}")
            if p.name in session.scram_users([p.name]):
                return stored
        password = new_secret()
        session.set_password(p.name, password)
    sec = ClientSecurity(
        security_protocol="SASL_SSL" if admin.uses_tls else "SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=p.name,
        sasl_password=SecretStr(password),
        ssl_cafile=admin.ssl_cafile,
    )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(path, json.dumps(sec.to_file_dict(), indent=1))
    return sec


def revoke(settings: GatewaySettings, principal_id: str) -> None:
    """Delete the principal's credential on the broker and its stored kit: it can no longer connect."""
    p = _lookup(settings, principal_id)
    from gateway.security.admin import AdminSession  # noqa: PLC0415

    with AdminSession(client_kwargs(settings)) as session:
        session.revoke(p.name)
    credential_file(settings, p.name).unlink(missing_ok=True)


def kit(settings: GatewaySettings, principal_id: str, *, group_name: str = DEFAULT_GROUP_NAME) -> Kit:
    """The connection kit of an actor or a source (credential created if absent)."""
    sec = ensure_credential(settings, principal_id)
    actors, sources = _policy_parties(settings)
    p = principal(principal_id, actors, sources, settings.app_id)
    from gateway.topics import actor_topic, audit_topic, feedback_topic  # noqa: PLC0415

    group_id: str | None = None
    topics: tuple[str, ...] = ()
    prefix = settings.topic_prefix
    if p.kind == "actor":
        group_id = actor_group_prefix(p.name, settings.app_id) + group_name
        topics = (actor_topic(p.name, prefix), feedback_topic(p.name, prefix))
        if getattr(actors[p.name], "role", None) in ("etat", "gestionnaire"):
            topics += (audit_topic(prefix),)
    elif p.kind == "source":
        topics = tuple(source_raw_topics({p.name: sources[p.name]}, prefix))
    return Kit(p, settings.bootstrap_servers, sec, group_id, topics, settings.schema_registry_url)


def actor_client_kwargs(settings: GatewaySettings, principal_id: str) -> dict[str, Any]:
    """kafka-python kwargs for an actor or a source principal (its credential created if absent):
    for tests and tools acting as that organisation."""
    return {
        "bootstrap_servers": settings.bootstrap_servers,
        **ensure_credential(settings, principal_id).kafka_python(),
    }


def actor_aiokafka_kwargs(settings: GatewaySettings, principal_id: str) -> dict[str, Any]:
    """aiokafka kwargs for an actor or a source principal (e.g. a source connector's emitter)."""
    return {
        "bootstrap_servers": settings.bootstrap_servers,
        **ensure_credential(settings, principal_id).aiokafka(),
    }


def _librdkafka(k: Kit) -> dict[str, str]:
    sec = k.security
    out = {
        "bootstrap.servers": k.bootstrap,
        "security.protocol": sec.security_protocol.lower(),
        "client.id": k.principal.name,
    }
    if sec.uses_sasl:
        out["sasl.mechanism"] = sec.sasl_mechanism or "SCRAM-SHA-512"
        out["sasl.username"] = sec.sasl_username or ""
        out["sasl.password"] = sec.sasl_password.get_secret_value() if sec.sasl_password else ""
    if sec.uses_tls:
        if sec.ssl_cafile is not None:
            out["ssl.ca.location"] = str(sec.ssl_cafile)
        if sec.ssl_certfile is not None:
            out["ssl.certificate.location"] = str(sec.ssl_certfile)
            out["ssl.key.location"] = str(sec.ssl_keyfile)
        out["ssl.endpoint.identification.algorithm"] = "https"
    if k.group_id is not None:
        out["group.id"] = k.group_id
    if k.schema_registry_url:
        out["schema.registry.url"] = k.schema_registry_url
    return out


def _java(k: Kit) -> dict[str, str]:
    sec = k.security
    out = {
        "bootstrap.servers": k.bootstrap,
        "security.protocol": sec.security_protocol,
        "client.id": k.principal.name,
    }
    if sec.uses_sasl:
        secret = sec.sasl_password.get_secret_value() if sec.sasl_password else ""
        out["sasl.mechanism"] = sec.sasl_mechanism or "SCRAM-SHA-512"
        login = "plain.PlainLoginModule" if sec.sasl_mechanism == "PLAIN" else "scram.ScramLoginModule"
        out["sasl.jaas.config"] = (
            f"org.apache.kafka.common.security.{login} required"
            f' username="{sec.sasl_username}" password="{secret}";'
        )
    if sec.uses_tls:
        if sec.ssl_cafile is not None:
            out["ssl.truststore.type"] = "PEM"
            out["ssl.truststore.location"] = str(sec.ssl_cafile)
        out["ssl.endpoint.identification.algorithm"] = "https"
    if k.group_id is not None:
        out["group.id"] = k.group_id
    if k.schema_registry_url:
        out["schema.registry.url"] = k.schema_registry_url
    return out


def render(k: Kit, fmt: KitFormat) -> str:
    """The kit as text: librdkafka / properties `key=value` lines, or a JSON object."""
    if fmt == "json":
        return json.dumps(_librdkafka(k), indent=2) + "\n"
    props = _librdkafka(k) if fmt == "librdkafka" else _java(k)
    return "".join(f"{key}={value}\n" for key, value in props.items())
