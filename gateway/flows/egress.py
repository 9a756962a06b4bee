"""Egress flow: canonical topics -> a connector Sink -> its outputs (feedback) and dead letters.

Commit policy (ack-after-write): offsets of a polled batch are committed only after
`Sink.write` returned for every record of it AND the outputs and dead letters were acknowledged by
the broker. A crash in between re-delivers the batch: sinks must be idempotent (the SNE sink is,
through its ledger). Error dispositions:
- RetriableError: exponential backoff (base * 2^(n-1), bounded by max_delay, or the error's
  retry_after), up to `attempts` tries, then dead letter with `gp.errors.attempts`;
- RejectedMessage: dead letter at once (its `extra_headers`, e.g. the raw SNE answer, are attached);
- SkipMessage: nothing;
- any other GatewayError (FatalError, ConfigError): the runner stops without committing.
Broker lost mid-run (a retriable Kafka error, or RetriableError from topic creation, while polling,
publishing or committing): the runner does not exit; it logs one line per try, rewinds its consumer
to the first offset of the uncommitted batch and tries again after 1 s, 2 s, 4 s ... 30 s. The batch
is then written again (sinks are idempotent) and its outputs published at least once.
A batch that fails as a whole is retried record by record, so one bad record never holds up others.
The optional hooks of a sink are declared on `gateway.connectors.Sink` (with defaults) and called
directly: `open(context)` before the first batch, `resume_offsets(partitions)` when partitions are
assigned (exactly-once sinks resume from the offsets stored with their data),
`outputs_for_rejection(record, error, attempts)` for a dead-lettered record, and `tick()` after each
poll. Backoff comes from the one retry module (gateway.retry). `run(stop, until_idle=True)` drains
the topics and returns once every assigned partition is read to its end (a nightly job).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.codec.avro import AvroCodec, SchemaSet, decode_single_object, load_schemas
from gateway.connectors import Sink, SinkContext, SinkOutput, SinkRecord
from gateway.errors import GatewayError, RejectedMessage, RetriableError, SkipMessage
from gateway.model.deadletter import dead_letter_headers
from gateway.model.envelope import Envelope
from gateway.monitoring.metrics import Metrics
from gateway.retry import BROKER_BACKOFF, RetryPolicy, broker_lost
from gateway.topics import dlq_topic

__all__ = [
    "BROKER_BACKOFF",
    "EgressResult",
    "EgressRunner",
    "RetryPolicy",
    "SinkHealth",
    "SinkUnavailable",
    "broker_lost",
    "process_envelopes",
]

log = logging.getLogger(__name__)
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


def _reason(exc: BaseException) -> str:
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
) -> None:
    attempt = 0
    while True:
        attempt += 1
        try:
            outputs = await sink.write([rec])
        except SkipMessage:
            return
        except RetriableError as exc:
            if retry.exhausted(attempt):
                log.warning("%s: %s after %d attempts, dead-lettered", connector, _reason(exc), attempt)
                _reject(sink, env, rec, exc, attempt, result=result, connector=connector)
                return
            delay = retry.delay(attempt, exc.retry_after)
            health.failing(f"sink {connector}: {_reason(exc)} (attempt {attempt}, retrying in {delay:.1f}s)")
            log.warning("%s: %s (attempt %d); retrying in %.1fs", connector, _reason(exc), attempt, delay)
            await asyncio.sleep(delay)
        except RejectedMessage as exc:
            log.info("%s: record %s/%s rejected: %s", connector, env.topic, env.offset, type(exc).__name__)
            _reject(sink, env, rec, exc, attempt, result=result, connector=connector)
            return
        else:
            result.outputs.extend(outputs)
            result.written += 1
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
    result.dead.append(letter)
    result.outputs.extend(sink.outputs_for_rejection(rec, exc, attempts))


async def process_envelopes(
    sink: Sink,
    envelopes: Sequence[Envelope],
    *,
    retry: RetryPolicy | None = None,
    schemas: SchemaSet | None = None,
    connector: str | None = None,
    codecs: Mapping[bytes, AvroCodec] | None = None,
    health: SinkHealth | None = None,
) -> EgressResult:
    """Decode, write, and sort out outputs and dead letters (no Kafka here).

    `codecs` (fingerprint -> codec) decode the records: the canonical schemas by default, the actor's
    view schemas for a delivery sink."""
    retry = retry or RetryPolicy()
    health = health or SinkHealth()
    name = str(connector or sink.name)
    known = codecs if codecs is not None else (schemas or load_schemas()).by_fingerprint()
    result = EgressResult()
    pairs: list[tuple[Envelope, SinkRecord]] = []
    for env in envelopes:
        if env.payload is None or not env.payload:
            continue  # tombstone
        try:
            codec, record = decode_single_object(env.payload, known)
        except RejectedMessage as exc:
            result.dead.append(_dead_letter(env, exc, stage="decode", attempts=1, connector=name))
            continue
        rec = SinkRecord(
            schema=codec.name,
            key=(env.key or b"").decode("utf-8", "replace"),
            record=record,
            headers=env.headers,
            topic=env.topic or "",
            partition=-1 if env.partition is None else env.partition,
            offset=-1 if env.offset is None else env.offset,
            writer_schema=codec.parsed,
        )
        pairs.append((env, rec))
    if not pairs:
        return result
    try:
        outputs = await sink.write([r for _, r in pairs])
    except (RetriableError, RejectedMessage, SkipMessage):
        for env, rec in pairs:  # record by record: the sink is idempotent
            await _write_one(sink, env, rec, retry=retry, result=result, connector=name, health=health)
    else:
        result.outputs.extend(outputs)
        result.written += len(pairs)
        health.ok()
    return result


class EgressRunner:
    """kafka-python consumer group feeding one sink (ack after write).

    `client` holds the connection settings of the principal the sink runs as (kafka_config /
    the actor's kit); `bootstrap` alone is the older form, kept for the SNE connector's callers."""

    def __init__(
        self,
        sink: Sink,
        *,
        topics: Sequence[str],
        group_id: str,
        bootstrap: str | None = None,
        client: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        max_records: int = 50,
        poll_timeout_ms: int = 500,
        partitions: int = 1,
        replication: int = 1,
        producer_options: dict[str, Any] | None = None,
        commit_timeout_ms: int = 60_000,
        codecs: Mapping[bytes, AvroCodec] | None = None,
        context: SinkContext | None = None,
        metrics: Metrics | None = None,
        health: SinkHealth | None = None,
        create_topics: Callable[[set[str]], None] | None = None,
    ) -> None:
        from kafka import KafkaConsumer, KafkaProducer  # noqa: PLC0415 - only the runner needs a broker

        kwargs: dict[str, Any] = dict(client or {})
        if bootstrap is not None and "bootstrap_servers" not in kwargs:
            kwargs["bootstrap_servers"] = bootstrap
        self.sink = sink
        self.name = context.connector if context else sink.name
        self.context = context
        self.retry = retry or RetryPolicy()
        self.max_records = max_records
        self.poll_timeout_ms = poll_timeout_ms
        self.codecs = codecs
        self.metrics = metrics
        self.health = health or SinkHealth()
        self.group_id = group_id
        self.consumer: Any = KafkaConsumer(
            **kwargs,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        self.consumer.subscribe(list(topics), listener=_resume_listener(self))
        self.producer: Any = KafkaProducer(
            **kwargs, **{"acks": "all", "linger_ms": 5, **(producer_options or {})}
        )
        self.commit_timeout_ms = commit_timeout_ms
        self.processed = 0
        self.broker_failures = 0  # tries that failed because the broker was away (monitoring, tests)
        self._ticked: list[SinkOutput] = []  # outputs of tick() not yet acknowledged by the broker
        self._uncommitted: dict[Any, int] = {}  # TopicPartition -> first offset of the current batch
        self._bootstrap = str(kwargs.get("bootstrap_servers", ""))
        self._layout = (partitions, replication)
        self._known: set[str] = set()
        self._create_topics = create_topics
        self._opened = False
        self._lag: dict[tuple[str, int], int] = {}
        self.resume_pending = False  # resume_offsets failed when partitions were assigned

    def _ensure(self, topics: set[str]) -> None:
        """Outputs may name topics that do not exist yet (feedback per organisation): create them."""
        new = topics - self._known
        if not new:
            return
        if self._create_topics is not None:
            self._create_topics(new)
        else:
            from gateway.flows.admin import TopicSpec, ensure_topics  # noqa: PLC0415

            p, r = self._layout
            ensure_topics(self._bootstrap, [TopicSpec(t, p, r) for t in sorted(new)])
        self._known |= new

    def _publish(self, records: Sequence[SinkOutput]) -> None:
        if not records:
            return
        self._ensure({r.topic for r in records})
        futures = [
            self.producer.send(r.topic, key=r.key, value=r.value, headers=list(r.headers)) for r in records
        ]
        self.producer.flush(timeout=self.commit_timeout_ms / 1000)
        for f in futures:
            f.get(timeout=self.commit_timeout_ms / 1000)

    def lag(self) -> dict[tuple[str, int], int]:
        """Records not yet committed per assigned partition (kafka_consumergroup_lag), as of the last
        commit (a snapshot: the consumer is not thread-safe, a scrape never touches it)."""
        return dict(self._lag)

    def _measure_lag(self) -> None:
        out: dict[tuple[str, int], int] = {}
        for tp in list(self.consumer.assignment()):
            high = self.consumer.highwater(tp)
            if high is not None:
                out[(tp.topic, tp.partition)] = max(0, int(high) - int(self.consumer.position(tp) or 0))
        self._lag = out

    def caught_up(self) -> bool:
        """True when partitions are assigned and each one is read to its end (for --until-idle)."""
        assigned = list(self.consumer.assignment())
        if not assigned:
            return False
        ends = self.consumer.end_offsets(assigned)
        return all(self.consumer.position(tp) >= ends.get(tp, 0) for tp in assigned)

    async def run_once(self) -> int:
        """Poll one batch, write it, publish, commit. Returns the number of records polled."""
        if not self._opened and self.context is not None:
            await self.sink.open(self.context)
        self._opened = True
        polled = await asyncio.to_thread(
            self.consumer.poll, timeout_ms=self.poll_timeout_ms, max_records=self.max_records
        )
        envelopes = [
            Envelope(
                payload=m.value or b"",
                key=m.key,
                headers=tuple(m.headers or ()),
                topic=m.topic,
                partition=m.partition,
                offset=m.offset,
                timestamp_ms=m.timestamp,
            )
            for records in polled.values()
            for m in records
        ]
        from kafka import TopicPartition  # noqa: PLC0415

        if self.resume_pending:  # the sink could not say where to resume: ask again (raises: retried)
            try:
                stored = await asyncio.to_thread(
                    self.sink.resume_offsets, [(tp.topic, tp.partition) for tp in self.consumer.assignment()]
                )
            except RetriableError as exc:
                raise SinkUnavailable(f"sink {self.name}: {_reason(exc)}") from exc
            self.resume_pending = False
            for (topic, partition), offset in stored.items():
                self.consumer.seek(TopicPartition(topic, partition), offset)
            # records of those partitions are polled again from there
            envelopes = [e for e in envelopes if (e.topic, e.partition) not in stored]
        for env in envelopes:
            tp = TopicPartition(env.topic, env.partition)
            first = self._uncommitted.get(tp)
            if first is None or (env.offset is not None and env.offset < first):
                self._uncommitted[tp] = int(env.offset or 0)
        self._ticked.extend(await self.sink.tick())  # kept until published: a tick does not return them twice
        if self._ticked:
            await asyncio.to_thread(self._publish, self._ticked)
            self._ticked = []
        if not envelopes:
            return 0
        started = time.perf_counter()
        result = await process_envelopes(
            self.sink,
            envelopes,
            retry=self.retry,
            connector=self.name,
            codecs=self.codecs,
            health=self.health,
        )
        await asyncio.to_thread(self._publish, [*result.outputs, *result.dead])
        await asyncio.to_thread(self.consumer.commit, timeout_ms=self.commit_timeout_ms)
        self._uncommitted.clear()
        self._measure_lag()
        self.processed += len(envelopes)
        self._count(len(envelopes), result, time.perf_counter() - started)
        return len(envelopes)

    def _count(self, polled: int, result: EgressResult, seconds: float) -> None:
        if self.metrics is None:
            return
        m = self.metrics
        m.records_in.labels("sink", self.name).inc(polled)
        if result.written:
            m.records_out.labels("sink", self.name, "delivered").inc(result.written)
        if result.dead:
            m.dead_lettered.labels("sink", self.name).inc(len(result.dead))
        m.processing.labels("sink").observe(seconds / max(1, polled))

    def _rewind(self) -> None:
        """Back to the first offset of the batch that was not committed: it is polled again."""
        for tp, offset in self._uncommitted.items():
            with contextlib.suppress(Exception):  # partition no longer assigned: its new owner resumes
                self.consumer.seek(tp, offset)
        self._uncommitted.clear()

    async def run(self, stop: asyncio.Event, *, until_idle: bool = False) -> None:
        """Until `stop` (or, with until_idle, until every assigned partition is read to its end);
        a broker away is waited for with backoff (one log line per try), never fatal."""
        failures = 0
        quiet = 0  # consecutive empty polls with partitions assigned
        try:
            while not stop.is_set():
                try:
                    polled = await self.run_once()
                    quiet = 0 if polled or not self.consumer.assignment() else quiet + 1
                    # drained: every partition read to its end, or nothing more to read for 3 polls (a
                    # read_committed consumer cannot pass an open transaction: no need to wait for it)
                    if until_idle and quiet and (quiet >= 3 or await asyncio.to_thread(self.caught_up)):
                        return
                except Exception as exc:
                    if not broker_lost(exc):
                        raise
                    failures += 1
                    self.broker_failures += 1
                    delay = BROKER_BACKOFF.delay(failures)
                    if isinstance(exc, SinkUnavailable):
                        why = str(exc)
                    else:
                        why = f"Kafka is not reachable at {self._bootstrap} ({type(exc).__name__})"
                    self.health.failing(f"{why}, retrying in {delay:.0f}s")
                    log.warning("%s; retrying in %.0fs", why, delay)
                    self._rewind()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                else:
                    if failures:
                        self.health.ok()
                    failures = 0
        finally:
            await self.sink.flush()
            self.close()

    def close(self) -> None:
        self.consumer.close()
        self.producer.close()


def _resume_listener(runner: EgressRunner) -> Any:
    """Rebalance listener: exactly-once sinks resume from the offsets stored with their data."""
    from kafka import ConsumerRebalanceListener, TopicPartition  # noqa: PLC0415

    class Resume(ConsumerRebalanceListener):  # type: ignore[misc]  # kafka-python has no type hints
        def on_partitions_revoked(self, revoked: Any) -> None:
            return None

        def on_partitions_assigned(self, assigned: Any) -> None:
            parts = [(tp.topic, tp.partition) for tp in assigned]
            try:
                stored = runner.sink.resume_offsets(parts) if parts else {}
            except Exception as exc:  # noqa: BLE001 - e.g. the database is down: retried by run_once
                log.warning("%s: cannot read the stored offsets (%s); retrying", runner.name, _reason(exc))
                runner.resume_pending = True
                return
            for (topic, partition), offset in stored.items():
                runner.consumer.seek(TopicPartition(topic, partition), offset)

    return Resume()
