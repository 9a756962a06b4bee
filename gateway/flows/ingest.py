"""Ingest flow: raw topic per source and format -> normalise -> canonical Avro records or dead letters.

Raw topics are `<prefix>.raw.<format>.<source>`, one per (source, format) pair the actors file
declares; only that source's principal may write to one, so the topic says who sent each input. A
canonical record whose `provenance.saisie` is neither that source nor an organisation it speaks for
(nor one of their guichets) is dead-lettered with the reason; the others carry the source's id in
the header `gp.source`, which the route flow reads to apply the named-party rule (docs/policy.md).

Each raw record is normalised with `gateway.normalise.normalise(fmt, bytes)`. Every canonical record
is published Avro single-object framed to `{prefix}.canonical.demande|decision`, keyed by numéro
unique, with CloudEvents binary headers and the schema fingerprint. Every rejected part goes to
`<raw topic>.dlq` with its original bytes. The ce_id of an output is derived from the input's
coordinates (topic, partition, offset, part index) and ce_time from the input's timestamp, so a
record re-processed after a crash is an exact duplicate that consumers can drop by ce_id.

`ingest_record` is the pure core; the loop that feeds it (consumer group `<app_id>.ingest`, one Kafka
transaction per polled batch with exactly-once) is `gateway.flows.ingest_runner`, run in a thread of
the worker by `register`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import faust

from gateway.codec.avro import SchemaSet
from gateway.codec.framing import framer_for
from gateway.errors import ConfigError, GatewayError, Problem
from gateway.flows.admin import ensure_topics, ingest_topics
from gateway.flows.app import FlowContext, thread_service
from gateway.flows.dlq import DeadLetter, DeadLetters
from gateway.kafka_config import client_kwargs
from gateway.model.canonical import DECISION, DEMANDE
from gateway.model.envelope import cloudevent_headers
from gateway.policy.model import Policy, PolicyStore
from gateway.policy.router import H_SOURCE  # the authenticated source of a canonical record
from gateway.settings import GatewaySettings
from gateway.topics import canonical_topic, ingest_group, source_raw_topic

__all__ = [
    "CE_NAMESPACE",
    "H_SOURCE",
    "IngestResult",
    "Output",
    "RawTopic",
    "ingest_record",
    "raw_topics",
    "register",
]

_log = logging.getLogger(__name__)
FLOW = "ingest"
STAGE = "normalise"
# namespace of the deterministic ce_id (uuid5 of the input coordinates and part index)
CE_NAMESPACE = uuid.UUID("7d0b1a6e-3f0c-5d8e-9a57-6f7c2b1e4a10")
_KIND = {DEMANDE: "demande", DECISION: "decision"}
NOT_SPOKEN_FOR = "entered (saisie) for an organisation the source does not speak for"


@dataclass(frozen=True, slots=True)
class RawTopic:
    """A raw topic the ingest reads: its format, the source that alone writes it, and the
    `provenance.saisie` codes that source may enter."""

    topic: str
    fmt: str
    source: str
    may_enter: frozenset[str]


def raw_topics(policy: Policy, prefix: str) -> dict[str, RawTopic]:
    """The raw topics of the (source, format) pairs the actors file declares, by name."""
    out = {}
    for src in policy.sources.values():
        for fmt in src.formats:
            topic = source_raw_topic(fmt, src.id, prefix)
            out[topic] = RawTopic(topic, fmt, src.id, policy.may_enter(src.id))
    return out


@dataclass(frozen=True, slots=True)
class Output:
    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


@dataclass
class IngestResult:
    records: list[Output] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    unknown_codes: list[str] = field(default_factory=list)  # code lists of carried unknown codes


def ingest_record(
    fmt: str,
    payload: bytes | None,
    *,
    source_topic: str,
    partition: int | None,
    offset: int | None,
    key: bytes | None,
    timestamp_ms: int | None,
    schemas: SchemaSet,
    dead_letters: DeadLetters,
    prefix: str = "gp",
    source: str | None = None,
    may_enter: Collection[str] | None = None,
) -> IngestResult:
    """Pure core of the flow: one raw record in, canonical records and dead letters out.

    `source`: the source that wrote the raw topic (header `gp.source` of the outputs); `may_enter`:
    the `provenance.saisie` codes it may enter, a record claiming another being dead-lettered (None:
    not checked, for tools that normalise without a source)."""
    from gateway.normalise import CanonicalRecord, normalise  # noqa: PLC0415 - heavy, loaded on use

    result = IngestResult()
    original = payload or b""
    received = datetime.fromtimestamp(timestamp_ms / 1000, UTC) if timestamp_ms is not None else None

    def reject(problems: Sequence[Problem], locator: str, fragment: bytes | None) -> None:
        result.dead.append(
            dead_letters.build(
                source_topic=source_topic,
                partition=partition,
                offset=offset,
                key=key,
                original=original if fragment is None else fragment,
                problems=problems,
                message=f"{fmt} input rejected at {locator}: {len(problems)} problem(s)",
                stage=STAGE,
                locator=locator,
            )
        )

    if not payload:
        reject([Problem("$", "empty input")], "$", None)
        return result
    for index, outcome in enumerate(normalise(fmt, payload, received_at=received, check=False)):
        if not isinstance(outcome, CanonicalRecord):
            reject(outcome.problems, outcome.locator, outcome.fragment)
            continue
        kind = _KIND.get(outcome.schema)
        if may_enter is not None and (outcome.record.get("provenance") or {}).get("saisie") not in may_enter:
            # the reason only: the code it claimed may name an organisation, the record holds data
            reject([Problem("provenance.saisie", NOT_SPOKEN_FOR)], f"$[{index}]", None)
            continue
        if kind is None:
            reject([Problem("$", "no canonical topic for schema", outcome.schema)], f"$[{index}]", None)
            continue
        codec = schemas.codec(outcome.schema)
        try:  # the checked encoder refuses what does not fit the schema, naming the field paths
            value = codec.encode_framed_checked(outcome.record)
        except Exception as exc:  # noqa: BLE001 - RejectedMessage or codec failure: dead-letter it
            problems = getattr(exc, "problems", ()) or (
                Problem("$", f"cannot encode ({type(exc).__name__})"),
            )
            reject(problems, f"$[{index}]", None)
            continue
        result.unknown_codes.extend(outcome.unknown_codes)
        ce_id = uuid.uuid5(CE_NAMESPACE, f"{source_topic}/{partition}/{offset}/{index}")
        headers = cloudevent_headers(
            source=f"urn:gp-gateway:ingest:{fmt}",
            type_=f"{outcome.schema}.v1",
            subject=outcome.key,
            time=received,
            id_=str(ce_id),
            content_type="application/avro",
            dataschema=f"urn:avro:{outcome.schema}",
        )
        headers += [
            ("gp.schema.name", outcome.schema.encode()),
            ("gp.schema.fingerprint", codec.fingerprint_hex.encode()),
            ("gp.source.format", fmt.encode()),
            ("gp.source.coordinates", f"{source_topic}/{partition}/{offset}".encode()),
        ]
        if source is not None:
            headers.append((H_SOURCE, source.encode()))
        result.records.append(
            Output(canonical_topic(kind, prefix), outcome.key.encode(), value, tuple(headers))
        )
    return result


def _declared_sources(
    store: PolicyStore, settings: GatewaySettings, current: Mapping[str, RawTopic]
) -> dict[str, RawTopic] | None:
    """The raw topics the actors file declares now, their topics created (None: refused or unreachable,
    the running ones are kept)."""
    try:
        topics = raw_topics(store.reload(), settings.topic_prefix)
        if set(topics) - set(current):
            ensure_topics(settings.bootstrap_servers, ingest_topics(settings, topics))
    except GatewayError as exc:  # ConfigError (refused policy) or RetriableError (broker)
        _log.error("ingest: sources not reloaded, the running ones are kept: %s", exc)
        return None
    return topics


def register(app: faust.App, ctx: FlowContext) -> None:
    """Declare the ingest topics and run the ingest runner (gateway.flows.ingest_runner) in a thread
    of the worker, started and stopped with the faust app."""
    settings = ctx.settings
    from gateway.flows.ingest_runner import IngestRunner  # noqa: PLC0415 - avoids an import cycle

    prefix = settings.topic_prefix
    store = PolicyStore(settings.policy_file, secret=settings.pseudonymisation_secret)
    sources = raw_topics(store.policy, prefix)
    if not sources:
        raise ConfigError("the actors file declares no source (`sources:`): the ingest would read nothing")
    ctx.topics.extend(ingest_topics(settings, sources))
    # with a registry: the canonical schemas registered (or looked up) before anything is written
    framer = framer_for(settings.schema_registry_url)
    framer.prepare((canonical_topic(kind, prefix), ctx.schemas.codec(s)) for s, kind in _KIND.items())
    group = ingest_group(settings.app_id)
    runner = IngestRunner(
        bootstrap=client_kwargs(settings),
        formats={t.topic: t.fmt for t in sources.values()},
        sources=sources,
        refresh=lambda: _declared_sources(store, settings, runner.sources),
        group_id=group,
        prefix=prefix,
        metrics=ctx.metrics,
        exactly_once=settings.processing_guarantee == "exactly_once",
        transactional_id=f"{settings.app_id}.ingest.{settings.instance_id}",
        processes=settings.ingest_processes,
        framer=framer,
        session_timeout_ms=int(settings.session_timeout_s * 1000),
    )
    ctx.metrics.add_lag_source(runner.lag, group)
    app.gp_ingest_runner = runner  # type: ignore[attr-defined]  # for /status and tests

    # a batch waiting for an unreachable broker cannot be interrupted: it is not committed, so it is
    # re-read by the next owner of its partitions
    thread_service(
        app,
        "ingest",
        runner.run,
        late="ingest: the loop is still waiting for Kafka; its batch is not committed",
    )
