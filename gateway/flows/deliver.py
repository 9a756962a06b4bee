"""Writing one polled batch into a sink (no Kafka here): decode, write, retries, dead letters.

`process_envelopes` decodes each record with the codec its fingerprint names, gives the batch to
`Sink.write`, and when the batch fails as a whole retries record by record (sinks are idempotent):
RetriableError -> backoff from the retry module, then dead letter once the policy is exhausted;
RejectedMessage -> dead letter at once (Connect-style headers, the original bytes), plus what
`Sink.outputs_for_rejection` returns; SkipMessage -> nothing. `SinkHealth` keeps the current problem
for /health. The Kafka loop around it is gateway.flows.egress.

Erasure: a batch holding `fr.gp.Effacement` records (an application erased, docs/retention.md) is
delivered in stream order, in runs: the records before an erasure are written, then the erasures
are given to `Sink.erase`, then the records after it are written (new data). An erasure is retried
until the sink takes it (RetriableError, whatever the retry policy's limit), dead-lettered only when
the sink rejects it (RejectedMessage), never dropped. A sink that cannot erase (`erases = False`,
allowed by the operator) gets the Effacement records in `write`, like other records.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.codec.avro import AvroCodec, SchemaSet, load_schemas
from gateway.codec.framing import FrameDecoder
from gateway.connectors import ERASURE_SCHEMA, Erasure, Sink, SinkOutput, SinkRecord
from gateway.errors import GatewayError, RejectedMessage, RetriableError, SkipMessage
from gateway.model.deadletter import dead_letter_headers
from gateway.model.envelope import Envelope
from gateway.retention import protocol
from gateway.retry import RetryPolicy
from gateway.topics import dlq_topic

__all__ = [
    "Decoded",
    "EgressResult",
    "SinkHealth",
    "SinkUnavailable",
    "collect_while_waiting",
    "count_batch",
    "erasure_record",
    "no_collection",
    "process_envelopes",
    "reason",
    "record_of",
]

log = logging.getLogger("gateway.flows.egress")
Headers = tuple[tuple[str, bytes], ...]


@dataclass
class SinkHealth:
    """What /health reports: the current problem (None when all is well), never a payload value."""

    problem: str | None = None
    since: float | None = None
    last_success: float | None = None

    def failing(self, problem: str) -> None:
        if self.problem is None:
            self.since = time.time()
        self.problem = problem

    def ok(self) -> None:
        self.problem = None
        self.since = None
        self.last_success = time.time()


class SinkUnavailable(RetriableError):
    """The sink cannot take records for now (e.g. its database is down): the runner waits as for Kafka."""


@dataclass
class EgressResult:
    outputs: list[SinkOutput] = field(default_factory=list)
    dead: list[SinkOutput] = field(default_factory=list)  # dead letters, as records to publish
    written: int = 0
    erased: int = 0  # fr.gp.Effacement records the sink erased (`Sink.erase` returned)
    erasures_refused: int = 0  # ... the sink rejected: dead-lettered
    not_erased: int = 0  # ... given to `write` as records: the sink cannot erase (operator's choice)
    # dead letters (their index in `dead`) of partial envelopes: the runner reads their original
    # bytes and headers again from the topic before publishing them (gateway.flows.originals)
    partial: list[tuple[int, Envelope]] = field(default_factory=list)


@dataclass
class Decoded:
    """A batch decoded before `process_envelopes` (gateway.flows.render): its records in order, and
    the envelopes no codec decoded, with why."""

    pairs: list[tuple[Envelope, SinkRecord]] = field(default_factory=list)
    rejected: list[tuple[Envelope, RejectedMessage]] = field(default_factory=list)


def count_batch(metrics: Any, name: str, polled: int, result: EgressResult, seconds: float) -> None:
    """A written batch in the sink's metrics (gateway.monitoring.metrics.Metrics)."""
    metrics.records_in.labels("sink", name).inc(polled)
    if result.written:
        metrics.records_out.labels("sink", name, "delivered").inc(result.written)
    if result.dead:
        metrics.dead_lettered.labels("sink", name).inc(len(result.dead))
    for outcome, n in (
        ("erased", result.erased),
        ("dead_lettered", result.erasures_refused),
        ("not_erased", result.not_erased),
    ):
        if n:
            metrics.sink_erasures.labels(name, outcome).inc(n)
    metrics.processing.labels("sink").observe(seconds / max(1, polled))


def _dead_letter(
    env: Envelope, error: BaseException, *, stage: str, attempts: int, connector: str
) -> SinkOutput:
    headers = dead_letter_headers(
        error,
        topic=env.topic,
        partition=env.partition,
        offset=env.offset,
        stage=stage,
        attempts=attempts,
        connector=connector,
    )
    extra: Headers = tuple(getattr(error, "extra_headers", ()) or ())
    return SinkOutput(
        dlq_topic(env.topic or "unknown"), env.key, env.payload, (*env.headers, *extra, *headers)
    )


def reason(exc: BaseException) -> str:
    """A one-line reason for logs and /health: the error's own message (sinks never put payload
    values in them), or its class name for errors that are not the gateway's."""
    text = str(exc) if isinstance(exc, GatewayError) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _write_one(
    sink: Sink,
    env: Envelope,
    rec: SinkRecord,
    *,
    retry: RetryPolicy,
    result: EgressResult,
    connector: str,
    health: SinkHealth,
    erasure: Erasure | None = None,
) -> None:
    attempt = 0
    while True:
        attempt += 1
        try:
            outputs = await (sink.write([rec]) if erasure is None else sink.erase([erasure]))
        except SkipMessage:
            return
        except RetriableError as exc:
            if retry.exhausted(attempt):
                log.warning("%s: %s after %d attempts, dead-lettered", connector, reason(exc), attempt)
                _reject(sink, env, rec, exc, attempt, result=result, connector=connector)
                return
            delay = retry.delay(attempt, exc.retry_after)
            health.failing(f"sink {connector}: {reason(exc)} (attempt {attempt}, retrying in {delay:.1f}s)")
            log.warning("%s: %s (attempt %d); retrying in %.1fs", connector, reason(exc), attempt, delay)
            collect_while_waiting()
            await asyncio.sleep(delay)
        except RejectedMessage as exc:
            log.info("%s: record %s/%s rejected: %s", connector, env.topic, env.offset, type(exc).__name__)
            _reject(sink, env, rec, exc, attempt, result=result, connector=connector)
            result.erasures_refused += erasure is not None
            return
        else:
            result.outputs.extend(outputs)
            if erasure is None:
                result.written += 1
            else:
                result.erased += 1
            health.ok()
            return


def _reject(
    sink: Sink,
    env: Envelope,
    rec: SinkRecord,
    exc: GatewayError,
    attempts: int,
    *,
    result: EgressResult,
    connector: str,
) -> None:
    letter = _dead_letter(env, exc, stage=f"sink:{connector}", attempts=attempts, connector=connector)
    if env.partial:
        result.partial.append((len(result.dead), env))
    result.dead.append(letter)
    result.outputs.extend(sink.outputs_for_rejection(rec, exc, attempts))


def erasure_record(env: Envelope) -> SinkRecord | None:
    """The SinkRecord of a demand topic's erasure tombstone (gateway.retention.protocol), for sinks
    that hold applications read from the canonical topics (`erasure_tombstones = True`); None for
    any other tombstone (compaction only)."""
    request = protocol.erasure_of(env.headers)
    if request is None or not env.key or not (env.topic or "").endswith(".canonical.demande"):
        return None
    num = env.key.decode("utf-8", "replace")
    return SinkRecord(
        schema=protocol.TOMBSTONE_SCHEMA,
        key=num,
        record={"numUnique": num, "request": request},
        headers=env.headers,
        topic=env.topic or "",
        partition=-1 if env.partition is None else env.partition,
        offset=-1 if env.offset is None else env.offset,
    )


def record_of(
    env: Envelope, schema: str, record: dict[str, object], writer_schema: Any, rendered: Any = None
) -> SinkRecord:
    """The SinkRecord of a decoded envelope: its key as text, headers and coordinates (-1: none)."""
    return SinkRecord(  # positional: a batch builds thousands (schema, key, record, headers, topic,
        # partition, offset, extra, writer_schema, rendered)
        schema,
        (env.key or b"").decode("utf-8", "replace"),
        record,
        env.headers,
        env.topic or "",
        -1 if env.partition is None else env.partition,
        -1 if env.offset is None else env.offset,
        {},
        writer_schema,
        rendered,
    )


class _Quiet:
    """How many no_collection regions are open, in every thread, and whether collection was on
    when the first one opened: the sink's process writes a batch while a thread takes the next."""

    lock = threading.Lock()
    count = 0
    resume = False


@contextlib.contextmanager
def no_collection() -> Iterator[None]:
    """No cyclic garbage collection while a batch is decoded (and, in the runner, written): decoded
    records hold no cycles, and the collections their many new containers set off (scanning the
    batch alive so far) cost up to a third of the decoding. Collection resumes when the last open
    region, in any thread, closes, if it was on when the first one opened (a region closing in one
    thread does not resume it under another that is building a batch). A wait within a region (a
    retry's backoff) collects first (`collect_while_waiting`)."""
    entered = False
    try:
        with _Quiet.lock:
            if _Quiet.count == 0:
                _Quiet.resume = gc.isenabled()
                gc.disable()
            _Quiet.count += 1
            entered = True
        yield
    finally:
        if entered:
            with _Quiet.lock:
                _Quiet.count -= 1
                if _Quiet.count == 0 and _Quiet.resume:
                    gc.enable()


def collect_while_waiting() -> None:
    """Collect now, before a wait within a no_collection region (a retry's backoff, up to 30 s,
    maybe for as long as a database is down): the cycles each failed attempt leaves (its exception,
    its traceback) are freed, not kept until the outage ends. Nothing where collection was off
    before any region opened (a reading process collects between its batches itself)."""
    if gc.isenabled() or (_Quiet.count and _Quiet.resume):
        gc.collect()


def _decode_batch(
    envelopes: Sequence[Envelope],
    decode: Callable[[bytes], tuple[AvroCodec, dict[str, object]]],
    result: EgressResult,
    name: str,
    *,
    erasures: bool = False,
) -> list[tuple[Envelope, SinkRecord]]:
    """(envelope, record) of each decodable envelope, in order; a record no codec decodes is a dead
    letter (stage decode); with `erasures`, a demand topic's erasure tombstones too (in order with
    the records around them). The seam where a branch on the decoded schema can sit."""
    pairs: list[tuple[Envelope, SinkRecord]] = []
    with no_collection():
        for env in envelopes:
            if env.payload is None or not env.payload:
                if erasures and (erasure := erasure_record(env)) is not None:
                    pairs.append((env, erasure))  # in order with the records around it
                continue  # tombstone
            try:
                codec, record = decode(env.payload)
            except RejectedMessage as exc:
                result.dead.append(_dead_letter(env, exc, stage="decode", attempts=1, connector=name))
                continue
            pairs.append((env, record_of(env, codec.name, record, codec.parsed)))
    return pairs


async def process_envelopes(
    sink: Sink,
    envelopes: Sequence[Envelope],
    *,
    retry: RetryPolicy | None = None,
    schemas: SchemaSet | None = None,
    connector: str | None = None,
    codecs: Mapping[bytes, AvroCodec] | None = None,
    decoder: FrameDecoder | None = None,
    health: SinkHealth | None = None,
    decoded: Decoded | None = None,
) -> EgressResult:
    """Decode, write, and sort out outputs and dead letters (no Kafka here).

    `codecs` (fingerprint -> codec) decode the records: the canonical schemas by default, the actor's
    view schemas for a delivery sink. `decoded`: the batch decoded already (reading processes)."""
    retry = retry or RetryPolicy()
    health = health or SinkHealth()
    name = str(connector or sink.name)
    result = EgressResult()
    if decoded is not None:
        pairs = decoded.pairs
        for env, exc in decoded.rejected:
            result.dead.append(_dead_letter(env, exc, stage="decode", attempts=1, connector=name))
    else:
        known = codecs if codecs is not None else (schemas or load_schemas()).by_fingerprint()
        # `decoder` also reads the Confluent wire format (a registry is configured)
        decode = (decoder or FrameDecoder(known)).decode
        pairs = _decode_batch(
            envelopes, decode, result, name, erasures=bool(getattr(sink, "erasure_tombstones", False))
        )
    if not pairs:
        return result
    if ERASURE_SCHEMA in {r.schema for _, r in pairs}:  # an application erased: in stream order
        await _in_order(sink, pairs, retry=retry, result=result, connector=name, health=health)
        return result
    await _write_run(sink, pairs, retry=retry, result=result, connector=name, health=health)
    return result


async def _write_run(
    sink: Sink,
    pairs: Sequence[tuple[Envelope, SinkRecord]],
    *,
    retry: RetryPolicy,
    result: EgressResult,
    connector: str,
    health: SinkHealth,
) -> None:
    try:
        outputs = await sink.write([r for _, r in pairs])
    except (RetriableError, RejectedMessage, SkipMessage):
        for env, rec in pairs:  # record by record: the sink is idempotent
            await _write_one(sink, env, rec, retry=retry, result=result, connector=connector, health=health)
    else:
        result.outputs.extend(outputs)
        result.written += len(pairs)
        health.ok()


async def _in_order(
    sink: Sink,
    pairs: Sequence[tuple[Envelope, SinkRecord]],
    *,
    retry: RetryPolicy,
    result: EgressResult,
    connector: str,
    health: SinkHealth,
) -> None:
    """A batch holding erasures: runs of records written and runs of erasures erased, in order."""
    if not sink.erases:  # the operator allowed it (docs/sinks.md): the sink delivers them as records
        result.not_erased += sum(r.schema == ERASURE_SCHEMA for _, r in pairs)
        await _write_run(sink, pairs, retry=retry, result=result, connector=connector, health=health)
        return
    for erasing, group in itertools.groupby(pairs, key=lambda pair: pair[1].schema == ERASURE_SCHEMA):
        run = list(group)
        if not erasing:
            await _write_run(sink, run, retry=retry, result=result, connector=connector, health=health)
            continue
        erasures = [Erasure.of(rec) for _, rec in run]
        try:
            outputs = await sink.erase(erasures)
        except (RetriableError, RejectedMessage, SkipMessage):
            forever = replace(retry, attempts=0)  # an erasure is never given up for being retried
            for (env, rec), erasure in zip(run, erasures, strict=True):
                await _write_one(
                    sink,
                    env,
                    rec,
                    retry=forever,
                    result=result,
                    connector=connector,
                    health=health,
                    erasure=erasure,
                )
        else:
            result.outputs.extend(outputs)
            result.erased += len(run)
            health.ok()
