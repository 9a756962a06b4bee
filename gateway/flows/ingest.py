"""Ingest flow: raw topic per format -> normalise -> canonical Avro records or dead letters.

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

import asyncio
import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import faust
import mode

from gateway.codec.avro import SchemaSet
from gateway.codec.framing import framer_for
from gateway.errors import GatewayError, Problem
from gateway.flows.admin import ingest_topics
from gateway.flows.app import FlowContext
from gateway.flows.dlq import DeadLetter, DeadLetters
from gateway.model.canonical import DECISION, DEMANDE
from gateway.model.envelope import cloudevent_headers
from gateway.topics import FORMATS, canonical_topic, ingest_group, raw_topic

__all__ = [
    "CE_NAMESPACE",
    "IngestResult",
    "Output",
    "ingest_record",
    "register",
]

_log = logging.getLogger(__name__)
STOP_WAIT_S = 8.0  # within the 10 s a container runtime gives between SIGTERM and SIGKILL
FLOW = "ingest"
STAGE = "normalise"
# namespace of the deterministic ce_id (uuid5 of the input coordinates and part index)
CE_NAMESPACE = uuid.UUID("7d0b1a6e-3f0c-5d8e-9a57-6f7c2b1e4a10")
_KIND = {DEMANDE: "demande", DECISION: "decision"}


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
) -> IngestResult:
    """Pure core of the flow: one raw record in, canonical records and dead letters out."""
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
        result.records.append(
            Output(canonical_topic(kind, prefix), outcome.key.encode(), value, tuple(headers))
        )
    return result


def register(app: faust.App, ctx: FlowContext) -> None:
    """Declare the ingest topics and run the ingest runner (gateway.flows.ingest_runner) in a thread
    of the worker, started and stopped with the faust app."""
    settings = ctx.settings
    from gateway.flows.ingest_runner import IngestRunner  # noqa: PLC0415 - avoids an import cycle

    prefix = settings.topic_prefix
    # with a registry: the canonical schemas registered (or looked up) before anything is written
    framer = framer_for(settings.schema_registry_url)
    framer.prepare((canonical_topic(kind, prefix), ctx.schemas.codec(s)) for s, kind in _KIND.items())
    ctx.topics.extend(ingest_topics(settings))
    group = ingest_group(settings.app_id)
    runner = IngestRunner(
        bootstrap=settings.bootstrap_servers,
        formats={raw_topic(fmt, prefix): fmt for fmt in FORMATS},
        group_id=group,
        prefix=prefix,
        metrics=ctx.metrics,
        exactly_once=settings.processing_guarantee == "exactly_once",
        transactional_id=f"{settings.app_id}.ingest.{settings.instance_id}",
        processes=settings.ingest_processes,
        framer=framer,
    )
    ctx.metrics.add_lag_source(runner.lag, group)
    app.gp_ingest_runner = runner  # type: ignore[attr-defined]  # for /status and tests

    @app.service
    class IngestService(mode.Service):
        """Runs the ingest loop in a thread; a fatal error of the loop stops the worker."""

        def __post_init__(self) -> None:
            self._stop = threading.Event()
            self._thread: threading.Thread | None = None

        async def on_start(self) -> None:
            loop = asyncio.get_running_loop()

            def main() -> None:
                try:
                    runner.run(self._stop)
                except BaseException as exc:  # noqa: BLE001 - reported to the worker, which stops
                    # our own errors' messages are safe to log; another exception's may quote data
                    _log.error(
                        "ingest runner stopped: %s",
                        exc if isinstance(exc, GatewayError) else type(exc).__name__,
                    )
                    asyncio.run_coroutine_threadsafe(self.crash(exc), loop)

            self._thread = threading.Thread(target=main, name="gp-ingest", daemon=True)
            self._thread.start()

        async def on_stop(self) -> None:
            self._stop.set()
            if self._thread is not None:
                # a batch waiting for an unreachable broker cannot be interrupted: it is not committed,
                # so it is re-read by the next owner of its partitions
                await asyncio.to_thread(self._thread.join, STOP_WAIT_S)
                if self._thread.is_alive():
                    _log.warning("ingest: the loop is still waiting for Kafka; its batch is not committed")

    _ = IngestService
