"""`gateway schemas list|check`: the canonical schemas, their fingerprints, and the evolution check."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.inputs import path_option
from gateway.codec.avro import DEFAULT_SCHEMA_DIR, AvroCodec, load_schemas
from gateway.codec.compat import check_directories

__all__ = ["RELEASED_SCHEMA_DIR", "schema_rows", "schemas"]

RELEASED_SCHEMA_DIR = DEFAULT_SCHEMA_DIR.parent / "released"


def schema_rows() -> list[tuple[str, str]]:
    """(full name, CRC-64-AVRO fingerprint hex) of every canonical named type."""
    schemas = load_schemas()
    codecs = {c.name: c for c in schemas.codecs()}
    rows = []
    for name in schemas.names():
        codec = codecs.get(name) or AvroCodec.from_schema(schemas.raw(name), name)
        rows.append((name, codec.fingerprint_hex))
    return rows


@click.group("schemas")
def schemas() -> None:
    """The canonical Avro contract (schemas/avro)."""


@schemas.command("list")
def list_() -> None:
    """Each schema with its fingerprint (CRC-64-AVRO of the parsing canonical form, hex).

    The canonical types first, then the per-recipient view schemas the access policy derives.
    """
    from gateway.policy.demo import view_rows  # noqa: PLC0415 - loads the policy only for this command

    rows = schema_rows() + view_rows()
    width = max((len(name) for name, _ in rows), default=0)
    for name, fingerprint in rows:
        click.echo(f"{name:<{width}}  {fingerprint}")


@schemas.command("check")
@path_option(
    "--released", "released", "Schemas of the last release.", folder=True, default=RELEASED_SCHEMA_DIR
)
@path_option("--current", "current", "Schemas to check.", folder=True, default=DEFAULT_SCHEMA_DIR)
def check(released: Path, current: Path) -> None:
    """Fail (exit 1) on a change that breaks backward compatibility with the released schemas.

    Avro resolution rules: a reader with the current schema must read data written with the
    released one.
    """
    if not released.is_dir() or not current.is_dir():
        raise click.UsageError(f"no schema directory at {released if not released.is_dir() else current}")
    try:
        breaking = check_directories(released, current)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read the schemas: {exc}") from exc
    registry = _registry_verdict(current)
    if breaking or registry:
        for b in breaking:
            click.echo(f"BREAKING {b}", err=True)
        for refusal in registry:
            click.echo(f"BREAKING (schema registry) {refusal}", err=True)
        click.echo(f"{len(breaking) + len(registry)} breaking change(s) against {released}", err=True)
        raise SystemExit(1)
    click.echo(f"compatible: {current} can read data written with {released}")


def _registry_verdict(current: Path) -> list[str]:
    """With GATEWAY_SCHEMA_REGISTRY_URL set: the registry's verdict on the canonical schemas of
    `current` against what its subjects hold (the subjects the gateway writes them under)."""
    from gateway.codec.avro import SchemaSet  # noqa: PLC0415
    from gateway.codec.framing import schema_text, subject_name  # noqa: PLC0415
    from gateway.codec.registry_client import NO_DETAIL, RegistryClient  # noqa: PLC0415
    from gateway.settings import GatewaySettings  # noqa: PLC0415
    from gateway.topics import audit_topic, canonical_topic  # noqa: PLC0415

    settings = GatewaySettings()
    if not settings.schema_registry_url:
        return []
    client = RegistryClient(settings.schema_registry_url)
    schemas = SchemaSet(current)
    prefix = settings.topic_prefix
    pairs = [
        (canonical_topic("demande", prefix), "fr.gp.Demande"),
        (canonical_topic("decision", prefix), "fr.gp.Decision"),
        (audit_topic(prefix), "fr.gp.AuditEntry"),
    ]
    out = []
    for topic, name in pairs:
        subject = subject_name(topic, name)
        why = client.incompatibilities(subject, schema_text(schemas.codec(name)))
        if why:
            out.append(f"{subject}: {'; '.join(w for w in why if w != NO_DETAIL) or NO_DETAIL}")
    click.echo(f"schema registry {settings.schema_registry_url}: {len(out)} subject(s) refuse the change")
    return out
