"""`gateway audit who-received NUMERO`: who received what about an application, from the audit topic.

The audit topic ({prefix}.audit.disclosures) is nominative: only gestionnaire and etat read it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import click

from gateway.codec.avro import load_schemas
from gateway.codec.framing import decoder_for
from gateway.errors import RejectedMessage
from gateway.kafka_config import as_client_kwargs
from gateway.kafka_read import read_to_end

__all__ = ["audit", "disclosures_of", "read_audit", "read_topic"]


def read_audit(
    bootstrap: str, topic: str, *, timeout_s: float = 30.0, registry_url: str | None = None
) -> Iterator[dict[str, Any]]:
    """Every decodable fr.gp.AuditEntry of `topic`, from the beginning to the current end (either
    framing: the Confluent wire format needs `registry_url`)."""
    codec = load_schemas().codec("fr.gp.AuditEntry")
    decoder = decoder_for(registry_url, {codec.fingerprint: codec})
    for r in read_topic(bootstrap, topic, timeout_s=timeout_s):
        try:
            yield decoder.decode(r.value or b"")[1]
        except RejectedMessage:
            continue  # not an audit entry: skipped, never printed


def read_topic(bootstrap: str, topic: str, *, timeout_s: float = 30.0) -> Iterator[Any]:
    """Every committed record (kafka-python ConsumerRecord) of `topic`, from its beginning to its end."""
    return read_to_end(as_client_kwargs(bootstrap), topic, timeout_s=timeout_s, what="audit topic")


def disclosures_of(entries: Iterable[dict[str, Any]], numero: str) -> list[dict[str, Any]]:
    """The audit entries of an application: by numéro unique, or by the reference of an application
    not numbered yet (`<numGuichet>/<referenceSource>`, the key of its canonical records)."""
    return [e for e in entries if numero in (e.get("numUnique"), e.get("reference"))]


@click.group("audit")
def audit() -> None:
    """Disclosure audit (who received which classes of data about an application)."""


@audit.command("who-received")
@click.argument("numero")
@click.option("--bootstrap", default=None, help="Kafka bootstrap servers (default: settings).")
@click.option("--prefix", default=None, help="Topic prefix (default: settings).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per disclosure.")
def who_received(numero: str, bootstrap: str | None, prefix: str | None, as_json: bool) -> None:
    """Every disclosure of application NUMERO (a numéro unique, or NUMGUICHET/REFERENCE for an
    application not numbered yet): actor, classes, rule, policy version, time."""
    from gateway.settings import GatewaySettings  # noqa: PLC0415
    from gateway.topics import audit_topic  # noqa: PLC0415

    settings = GatewaySettings()
    topic = audit_topic(prefix or settings.topic_prefix)
    entries = read_audit(
        bootstrap or settings.bootstrap_servers, topic, registry_url=settings.schema_registry_url
    )
    rows = disclosures_of(entries, numero)
    if as_json:
        for e in rows:
            click.echo(json.dumps({k: v.isoformat() if isinstance(v, datetime) else v for k, v in e.items()}))
        return
    click.echo(f"{numero}: {len(rows)} disclosure(s) in {topic}")
    for e in rows:
        when = e["time"].isoformat() if isinstance(e["time"], datetime) else str(e["time"])
        click.echo(
            f"{when}  {e['actor']:24} {e['schema'].rsplit('.', 1)[-1]:9} {e['rule']:22} "
            f"policy {e['policyVersion']}  classes: {', '.join(e['classes'])}"
        )
