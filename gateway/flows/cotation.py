"""Cotation flow: canonical demande and decision -> fr.gp.Cotation on `<prefix>.canonical.cotation`
(keyed by numéro unique) and fr.gp.Adequation at each designation on `<prefix>.canonical.adequation`.

The position among similar applications needs every application of the grid's territory, so the
flow is one loop per app (run `--flows cotation` on one worker): a kafka-python consumer assigned
every partition of the two canonical topics (no group), read from the beginning at start (the
compacted demande topic holds the latest of each application). While it catches up it only builds
its state (gateway.cotation.state); then it publishes every cotation once (and again each day:
seniority grows, labels expire), and the cotation of each application that changes. Records are
encoded with the checked Avro writer and framed like the ingest flow's, with CloudEvents headers.

With GATEWAY_REPORT_TERRITORIES and GATEWAY_REPORT_QPV it also keeps the 25 % report up to date:
`fr.gp.LigneAttributions` on `<prefix>.report.attributions` (compacted, key
`annee;territoire;acteur;role;obligation`), the lines of the years whose attributions changed,
at most every REPORT_INTERVAL_S.

Delivery: at-least-once. A restart recomputes and republishes; a consumer keeps the latest per key.

Erasure (docs/retention.md): the erasure tombstone of an application on `canonical.demande` makes
the loop forget it (state and report: the report keeps its attributions as anonymous facts), write
a tombstone of its cotation (one published before the erasure reached the loop goes too) and the
receipt `cotation` (again after a restart that reads the tombstone again: receipts are idempotent).
Other tombstones are skipped.
Settings: GATEWAY_COTATION_GRID (required by this flow), GATEWAY_ADEQUACY_RULES (optional: no
adequacy records without it), GATEWAY_REPORT_TERRITORIES + GATEWAY_REPORT_QPV (optional report).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import faust

from gateway.codec.avro import SchemaSet
from gateway.codec.framing import FrameDecoder, decoder_for, framer_for
from gateway.cotation.state import ADEQUATION, COTATION, CotationState
from gateway.errors import ConfigError, GatewayError
from gateway.flows.admin import DAY_MS, TopicSpec, keyed_configs, receipts_topic
from gateway.flows.app import FlowContext, thread_service
from gateway.model.canonical import DECISION, DEMANDE
from gateway.model.envelope import cloudevent_headers
from gateway.reporting.live import ReportState, line_key, line_record
from gateway.retention import protocol
from gateway.settings import GatewaySettings
from gateway.topics import canonical_topic, report_topic, retention_topic

__all__ = ["CotationRunner", "cotation_topics", "encode_output", "register"]

_log = logging.getLogger(__name__)
FLOW = "cotation"
CE_NAMESPACE = uuid.UUID("0b7a53c4-6a2e-5f0e-8f0d-3c1a9e2b7d41")
_KIND = {COTATION: "cotation", ADEQUATION: "adequation"}
LINE = "fr.gp.LigneAttributions"
REPORT_INTERVAL_S = 60.0


def cotation_topics(settings: GatewaySettings) -> list[TopicSpec]:
    """`<prefix>.canonical.cotation` (compacted: the latest cotation per application) and
    `<prefix>.canonical.adequation` (every assessment, whole for 7 days, then the latest per
    application: compacted like every topic keyed by numéro unique, docs/retention.md)."""
    p, r, prefix = settings.partitions, settings.replication_factor, settings.topic_prefix
    specs = [
        TopicSpec(canonical_topic("cotation", prefix), p, r, "compact", keyed_configs()),
        TopicSpec(canonical_topic("adequation", prefix), p, r, "compact", keyed_configs()),
        receipts_topic(settings),
    ]
    if settings.report_territories is not None:
        specs.append(
            TopicSpec(report_topic("attributions", prefix), 1, r, "compact", {"segment.ms": str(DAY_MS)})
        )
    return specs


def encode_output(
    schemas: SchemaSet, schema: str, record: dict[str, Any], prefix: str
) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    """(topic, key, framed value, headers) of a cotation or adequacy record."""
    codec = schemas.codec(schema)
    value = codec.encode_framed_checked(record)
    key = record["numUnique"]
    ce_id = uuid.uuid5(CE_NAMESPACE, f"{schema}/{key}/{record['dateCalcul']}/{value.hex()}")
    headers = cloudevent_headers(
        source=f"urn:gp-gateway:{FLOW}",
        type_=f"{schema}.v1",
        subject=key,
        id_=str(ce_id),
        dataschema=f"urn:avro:{schema}",
    )
    headers += [
        ("gp.schema.name", schema.encode()),
        ("gp.schema.fingerprint", codec.fingerprint_hex.encode()),
    ]
    return canonical_topic(_KIND[schema], prefix), key.encode(), value, headers


class CotationRunner:
    """The loop: consume, update the state, publish what it says."""

    def __init__(
        self,
        settings: GatewaySettings,
        state: CotationState,
        schemas: SchemaSet,
        report: ReportState | None = None,
    ) -> None:
        self.settings = settings
        self.state = state
        self.report = report
        self._reported = 0.0
        self.schemas = schemas
        self.prefix = settings.topic_prefix
        # with a schema registry: Confluent frames in (canonical topics) and out
        self.framer = framer_for(settings.schema_registry_url)
        self.published = 0
        self.caught_up = False

    def _today(self) -> date:
        return datetime.now(UTC).date()

    def _publish(self, producer: Any, outputs: Sequence[tuple[str, dict[str, Any]]]) -> None:
        for schema, record in outputs:
            try:
                topic, key, value, headers = encode_output(self.schemas, schema, record, self.prefix)
            except GatewayError as exc:  # a record the schema refuses: a defect of ours, named
                _log.error("cotation: %s record of an application not published: %s", schema, exc)
                continue
            if self.framer.confluent:
                value = self.framer.reframe(topic, value)
            producer.send(topic, key=key, value=value, headers=headers)
            self.published += 1

    def run(self, stop: threading.Event) -> None:
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: PLC0415

        from gateway.kafka_config import client_kwargs  # noqa: PLC0415

        kwargs = client_kwargs(self.settings)
        consumer = KafkaConsumer(
            **kwargs, group_id=None, enable_auto_commit=False, isolation_level="read_committed"
        )
        producer = KafkaProducer(**kwargs, acks="all", linger_ms=20)
        codecs = {fp: c for fp, c in self.schemas.by_fingerprint().items() if c.name in (DEMANDE, DECISION)}
        decoder = decoder_for(self.settings.schema_registry_url, codecs)
        try:
            topics = [canonical_topic("demande", self.prefix), canonical_topic("decision", self.prefix)]
            while not stop.is_set() and not all(consumer.partitions_for_topic(t) for t in topics):
                _log.warning("cotation: waiting for the canonical topics (run the ingest flow once)")
                stop.wait(5.0)
            parts = [
                TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())
            ]
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
            ends = consumer.end_offsets(parts)
            while not stop.is_set():
                batch = consumer.poll(timeout_ms=500, max_records=500)
                now = self._today()
                for records in batch.values():
                    for msg in records:
                        if not msg.value:  # a tombstone: an erasure, or compaction only
                            for topic, key, value, headers in self.erasure(msg.topic, msg.key, msg.headers):
                                producer.send(topic, key=key, value=value, headers=list(headers))
                            continue
                        self._publish(producer, self._handle(decoder, msg.value, now))
                if not self.caught_up:
                    self.caught_up = all(consumer.position(tp) >= ends[tp] for tp in parts)
                    self.state.live = self.caught_up
                if self.caught_up:
                    self._publish(producer, self.state.daily(now))
                    self._publish_report(producer)
                producer.flush()
        finally:
            consumer.close()
            producer.close()

    def erasure(
        self, topic: str, key: bytes | None, headers: Sequence[tuple[str, bytes]] | None
    ) -> list[tuple[str, bytes, bytes | None, tuple[tuple[str, bytes], ...]]]:
        """What a tombstone on `topic` writes: on the demand topic with the erasure header, the
        application forgotten, its cotation tombstoned and the receipt `cotation`; else nothing."""
        request = protocol.erasure_of(headers)
        if request is None or not key or topic != canonical_topic("demande", self.prefix):
            return []
        num = key.decode("utf-8", "replace")
        self.state.erase(num)
        if self.report is not None:
            self.report.erase(num)
        erasure = ((protocol.ERASURE_HEADER, request.encode()),)
        r_key, r_value, r_headers = protocol.receipt(num, "cotation", request)
        return [
            (canonical_topic("cotation", self.prefix), key, None, erasure),
            (retention_topic("receipts", self.prefix), r_key, r_value, r_headers),
        ]

    def _publish_report(self, producer: Any) -> None:
        if self.report is None or (self._reported and time.monotonic() - self._reported < REPORT_INTERVAL_S):
            return
        self._reported = time.monotonic()
        codec = self.schemas.codec(LINE)
        topic = report_topic("attributions", self.prefix)
        for year_rows in self.report.changed().values():
            for row in year_rows:
                key = line_key(row)
                value = codec.encode_framed_checked(line_record(row))
                headers = cloudevent_headers(
                    source=f"urn:gp-gateway:{FLOW}",
                    type_=f"{LINE}.v1",
                    subject=key,
                    id_=str(uuid.uuid5(CE_NAMESPACE, f"{LINE}/{key}/{value.hex()}")),
                    dataschema=f"urn:avro:{LINE}",
                )
                headers += [
                    ("gp.schema.name", LINE.encode()),
                    ("gp.schema.fingerprint", codec.fingerprint_hex.encode()),
                ]
                if self.framer.confluent:
                    value = self.framer.reframe(topic, value)
                producer.send(topic, key=key.encode(), value=value, headers=headers)
                self.published += 1

    def _handle(
        self, decoder: FrameDecoder, value: bytes | None, now: date
    ) -> list[tuple[str, dict[str, Any]]]:
        try:
            codec, record = decoder.decode(value or b"")
        except GatewayError:
            return []  # not a canonical record of ours: the route flow dead-letters it
        if self.report is not None:
            (self.report.on_demande if codec.name == DEMANDE else self.report.on_decision)(record)
        if codec.name == DEMANDE:
            return self.state.on_demande(record, now)
        return self.state.on_decision(record, now)


def register(app: faust.App, ctx: FlowContext) -> None:
    """Declare the cotation topics and run the cotation loop in a thread of the worker."""
    from gateway.cotation.adequacy import load_rules  # noqa: PLC0415
    from gateway.cotation.grid import load_grid  # noqa: PLC0415
    from gateway.policy.model import load_policy  # noqa: PLC0415

    settings = ctx.settings
    if settings.cotation_grid is None:
        raise ConfigError("the cotation flow needs its grid: set GATEWAY_COTATION_GRID to a grid file")
    policy = load_policy(settings.policy_file, secret=settings.pseudonymisation_secret)
    grid = load_grid(settings.cotation_grid, policy)
    rules = load_rules(settings.adequacy_rules) if settings.adequacy_rules is not None else None
    report = None
    if settings.report_territories is not None:
        from gateway.reporting.config import ReportingConfig, load_qpv, load_territories  # noqa: PLC0415

        if settings.report_qpv is None:
            raise ConfigError("GATEWAY_REPORT_TERRITORIES needs GATEWAY_REPORT_QPV (the dwellings in QPV)")
        territories = load_territories(settings.report_territories)
        report = ReportState(ReportingConfig(territories, load_qpv(settings.report_qpv)))
    ctx.topics.extend(cotation_topics(settings))
    runner = CotationRunner(settings, CotationState(grid, rules, live=False), ctx.schemas, report)
    app.gp_cotation_runner = runner  # type: ignore[attr-defined]  # for tests

    thread_service(app, "cotation", runner.run)
