"""Topic names. One function per family so every module names topics the same way.

| topic                                  | key          | cleanup        | content                         |
|----------------------------------------|--------------|----------------|---------------------------------|
| {prefix}.raw.{format}.{source}         | source key   | delete         | raw bytes from one source       |
| {prefix}.raw.{format}.{source}.dlq     | source key   | delete         | rejected raw inputs + headers   |
| {prefix}.canonical.demande             | numéro unique| compact        | latest fr.gp.Demande            |
| {prefix}.canonical.decision            | numéro unique| compact        | fr.gp.Decision events           |
| {prefix}.canonical.cotation            | numéro unique| compact        | latest fr.gp.Cotation           |
| {prefix}.canonical.adequation          | numéro unique| compact        | fr.gp.Adequation at designation |
| {prefix}.report.attributions           | line key     | compact        | fr.gp.LigneAttributions (25 %)  |
| {prefix}.canonical.signal              | numéro unique| compact        | fr.gp.Signal follow-up signals  |
| {prefix}.signals.logement              | dwelling key | delete         | signals flow: dwelling facts    |
| {prefix}.signals.tick                  | partition    | delete         | signals flow: daily ticks       |
| {prefix}.actor.{actor_id}              | numéro unique| compact,delete | per-actor filtered views        |
| {prefix}.audit.disclosures             | numéro unique| delete         | disclosure audit entries        |
| {prefix}.feedback.{organisation}       | source ref   | delete         | SNE answers for an organisation |
| {prefix}.retention.control             | partition    | delete         | retention run/plan requests     |
| {prefix}.retention.status              | request id   | delete         | retention answers per partition |
| {prefix}.retention.receipts            | numéro unique| delete         | erasure receipts per store      |

Retention settings of each topic and their reasons: docs/retention.md.
"""

from __future__ import annotations

import re

from gateway.formats import FORMATS  # a leaf module too: the one registry of input formats

__all__ = [
    "DLQ_SUFFIX",
    "FORMATS",
    "actor_group_prefix",
    "actor_topic",
    "audit_topic",
    "canonical_topic",
    "dlq_topic",
    "feedback_topic",
    "ingest_group",
    "raw_prefix",
    "raw_topic",
    "report_topic",
    "retention_topic",
    "signals_topic",
    "sink_group",
    "source_raw_topic",
]

DLQ_SUFFIX = ".dlq"
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def _safe(part: str) -> str:
    return _SAFE.sub("_", part)


def raw_topic(fmt: str, prefix: str = "gp") -> str:
    """The raw topic of a format shared by every producer: no longer read by the ingest (it cannot
    tell who sent an input); raw topics are per source (`source_raw_topic`)."""
    return f"{prefix}.raw.{_safe(fmt)}"


def raw_prefix(prefix: str = "gp") -> str:
    """What every raw topic of the prefix starts with."""
    return f"{prefix}.raw."


def source_raw_topic(fmt: str, source: str, prefix: str = "gp") -> str:
    """The raw topic of one source for one format: only that source's principal may write to it, so
    the ingest knows who sent each input (`<prefix>.raw.<format>.<source id>`)."""
    return f"{prefix}.raw.{_safe(fmt)}.{_safe(source)}"


def dlq_topic(topic: str) -> str:
    return topic + DLQ_SUFFIX


def canonical_topic(kind: str, prefix: str = "gp") -> str:
    """kind: 'demande', 'decision', 'cotation', 'adequation' or 'signal'."""
    return f"{prefix}.canonical.{_safe(kind)}"


def report_topic(name: str, prefix: str = "gp") -> str:
    """Aggregated reports (no household named), e.g. 'attributions'."""
    return f"{prefix}.report.{_safe(name)}"


def actor_topic(actor_id: str, prefix: str = "gp") -> str:
    return f"{prefix}.actor.{_safe(actor_id)}"


def actor_group_prefix(actor_id: str, app_id: str = "gp-gateway") -> str:
    """Prefix of every consumer group an actor's principal may use (its ACLs grant this prefix):
    `<app id>.actor.<id>.`, so that the groups of one gateway are all under its app id."""
    return f"{app_id}.actor.{_safe(actor_id)}."


def sink_group(connector: str, actor_id: str, app_id: str = "gp-gateway") -> str:
    """Consumer group of sink `connector` delivering actor `actor_id`'s stream."""
    return f"{actor_group_prefix(actor_id, app_id)}sink.{_safe(connector)}"


def audit_topic(prefix: str = "gp") -> str:
    return f"{prefix}.audit.disclosures"


def feedback_topic(organisation: str, prefix: str = "gp") -> str:
    return f"{prefix}.feedback.{_safe(organisation)}"


def signals_topic(kind: str, prefix: str = "gp") -> str:
    """Internal topics of the signals flow: kind 'logement' (dwelling facts) or 'tick'."""
    return f"{prefix}.signals.{_safe(kind)}"


def ingest_group(app_id: str) -> str:
    """Consumer group of the ingest loop on the raw topics (the faust flows use `app_id` itself)."""
    return f"{app_id}.ingest"


def retention_topic(kind: str, prefix: str = "gp") -> str:
    """Topics of the retention flow (docs/retention.md): kind 'control' (requests of `gateway
    retention run|plan`, one record per partition), 'status' (the worker's answers) or 'receipts'
    (each store's receipt of an erasure, keyed by numéro unique, co-partitioned with the canonical
    topics)."""
    return f"{prefix}.retention.{_safe(kind)}"
