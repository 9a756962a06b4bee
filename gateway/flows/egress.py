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
Sinks may offer two optional hooks: `outputs_for_rejection(record, error, attempts)` (e.g. feedback
for a dead-lettered record) and `tick()` (outputs produced on their own, e.g. a daily batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.codec.avro import SINGLE_OBJECT_MAGIC, SchemaSet, load_schemas
from gateway.codec.framing import FrameDecoder, decoder_for, framer_for
from gateway.connectors import Sink, SinkOutput, SinkRecord
from gateway.errors import GatewayError, RejectedMessage, RetriableError, SkipMessage
from gateway.model.deadletter import dead_letter_headers
from gateway.model.envelope import Envelope
from gateway.topics import dlq_topic

__all__ = [
    "BROKER_BACKOFF",
    "EgressResult",
    "EgressRunner",
    "RetryPolicy",
    "broker_lost",
    "process_envelopes",
]

log = logging.getLogger(__name__)
Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(self.max_delay, max(0.0, retry_after))
        return float(min(self.max_delay, self.base_delay * (2 ** max(0, attempt - 1))))


BROKER_BACKOFF = RetryPolicy(attempts=0, base_delay=1.0, max_delay=30.0)  # 1 s, 2 s ... 30 s, no limit


def broker_lost(exc: BaseException) -> bool:
    """True for the errors of a broker that is away (worth retrying), not of a record or a bug."""
    from kafka.errors import BrokerNotAvailableError, CommitFailedError, KafkaError  # noqa: PLC0415

    if isinstance(exc, (RetriableError, BrokerNotAvailableError, CommitFailedError)):
        return True
    return isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))


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


async def _write_one(
    sink: Sink, env: Envelope, rec: SinkRecord, *, retry: RetryPolicy, result: EgressResult, connector: str
) -> None:
    attempt = 0
    while True:
        attempt += 1
        try:
            outputs = await sink.write([rec])
        except SkipMessage:
            return
        except RetriableError as exc:
            if attempt >= retry.attempts:
                log.warning("%s: %s after %d attempts, dead-lettered", connector, type(exc).__name__, attempt)
                _reject(sink, env, rec, exc, attempt, result=result, connector=connector)
                return
            await asyncio.sleep(retry.delay(attempt, exc.retry_after))
        except RejectedMessage as exc:
            log.info("%s: record %s/%s rejected: %s", connector, env.topic, env.offset, type(exc).__name__)
            _reject(sink, env, rec, exc, attempt, result=result, connector=connector)
            return
        else:
            result.outputs.extend(outputs)
            result.written += 1
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
    hook = getattr(sink, "outputs_for_rejection", None)
    if hook is not None:
        result.outputs.extend(hook(rec, exc, attempts))


async def process_envelopes(
    sink: Sink,
    envelopes: Sequence[Envelope],
    *,
    retry: RetryPolicy | None = None,
    schemas: SchemaSet | None = None,
    connector: str | None = None,
    decoder: FrameDecoder | None = None,
) -> EgressResult:
    """Decode, write, and sort out outputs and dead letters (no Kafka here). `decoder` reads the
    Confluent wire format too (a registry is configured); without it, single-object frames only."""
    retry = retry or RetryPolicy()
    name = str(connector or getattr(sink, "name", "sink"))
    decode = (decoder or FrameDecoder((schemas or load_schemas()).by_fingerprint())).decode
    result = EgressResult()
    pairs: list[tuple[Envelope, SinkRecord]] = []
    for env in envelopes:
        if env.payload is None or not env.payload:
            continue  # tombstone
        try:
            codec, record = decode(env.payload)
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
        )
        pairs.append((env, rec))
    if not pairs:
        return result
    try:
        outputs = await sink.write([r for _, r in pairs])
    except (RetriableError, RejectedMessage, SkipMessage):
        for env, rec in pairs:  # record by record: the sink is idempotent
            await _write_one(sink, env, rec, retry=retry, result=result, connector=name)
    else:
        result.outputs.extend(outputs)
        result.written += len(pairs)
    return result


class EgressRunner:
    """kafka-python consumer group on canonical topics feeding one sink (ack after write)."""

    def __init__(
        self,
        sink: Sink,
        *,
        bootstrap: str,
        topics: Sequence[str],
        group_id: str,
        retry: RetryPolicy | None = None,
        max_records: int = 50,
        poll_timeout_ms: int = 500,
        partitions: int = 1,
        replication: int = 1,
        producer_options: dict[str, Any] | None = None,
        commit_timeout_ms: int = 60_000,
        registry_url: str | None = None,
    ) -> None:
        from kafka import KafkaConsumer, KafkaProducer  # noqa: PLC0415 - only the runner needs a broker

        self.sink = sink
        self.retry = retry or RetryPolicy()
        # with a schema registry: inputs of both framings, Avro outputs in the Confluent wire format
        self.decoder = decoder_for(registry_url, load_schemas().by_fingerprint())
        self.framer = framer_for(registry_url)
        self.max_records = max_records
        self.poll_timeout_ms = poll_timeout_ms
        self.consumer: Any = KafkaConsumer(
            *topics,
            bootstrap_servers=bootstrap,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        self.producer: Any = KafkaProducer(
            bootstrap_servers=bootstrap, **{"acks": "all", "linger_ms": 5, **(producer_options or {})}
        )
        self.commit_timeout_ms = commit_timeout_ms
        self.processed = 0
        self.broker_failures = 0  # tries that failed because the broker was away (monitoring, tests)
        self._ticked: list[SinkOutput] = []  # outputs of tick() not yet acknowledged by the broker
        self._uncommitted: dict[Any, int] = {}  # TopicPartition -> first offset of the current batch
        self._bootstrap = bootstrap
        self._layout = (partitions, replication)
        self._known: set[str] = set()

    def _ensure(self, topics: set[str]) -> None:
        """Outputs may name topics that do not exist yet (feedback per organisation): create them."""
        from gateway.flows.admin import TopicSpec, ensure_topics  # noqa: PLC0415

        new = topics - self._known
        if new:
            p, r = self._layout
            ensure_topics(self._bootstrap, [TopicSpec(t, p, r) for t in sorted(new)])
            self._known |= new

    def _value(self, topic: str, value: bytes | None) -> bytes | None:
        if self.framer.confluent and value is not None and value[:2] == SINGLE_OBJECT_MAGIC:
            return self.framer.reframe(topic, value)
        return value

    def _publish(self, records: Sequence[SinkOutput]) -> None:
        self._ensure({r.topic for r in records})
        futures = [
            self.producer.send(
                r.topic, key=r.key, value=self._value(r.topic, r.value), headers=list(r.headers)
            )
            for r in records
        ]
        self.producer.flush(timeout=self.commit_timeout_ms / 1000)
        for f in futures:
            f.get(timeout=self.commit_timeout_ms / 1000)

    async def run_once(self) -> int:
        """Poll one batch, write it, publish, commit. Returns the number of records polled."""
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

        for env in envelopes:
            tp = TopicPartition(env.topic, env.partition)
            first = self._uncommitted.get(tp)
            if first is None or (env.offset is not None and env.offset < first):
                self._uncommitted[tp] = int(env.offset or 0)
        tick = getattr(self.sink, "tick", None)
        ticked: Sequence[SinkOutput] = await tick() if tick is not None else []
        self._ticked.extend(ticked)  # kept until published: a tick does not return them twice
        if self._ticked:
            await asyncio.to_thread(self._publish, self._ticked)
            self._ticked = []
        if not envelopes:
            return 0
        result = await process_envelopes(self.sink, envelopes, retry=self.retry, decoder=self.decoder)
        await asyncio.to_thread(self._publish, [*result.outputs, *result.dead])
        await asyncio.to_thread(self.consumer.commit, timeout_ms=self.commit_timeout_ms)
        self._uncommitted.clear()
        self.processed += len(envelopes)
        return len(envelopes)

    def _rewind(self) -> None:
        """Back to the first offset of the batch that was not committed: it is polled again."""
        for tp, offset in self._uncommitted.items():
            with contextlib.suppress(Exception):  # partition no longer assigned: its new owner resumes
                self.consumer.seek(tp, offset)
        self._uncommitted.clear()

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`; a broker away is waited for with backoff (one log line per try), never fatal."""
        failures = 0
        try:
            while not stop.is_set():
                try:
                    await self.run_once()
                except Exception as exc:
                    if not broker_lost(exc):
                        raise
                    failures += 1
                    self.broker_failures += 1
                    delay = BROKER_BACKOFF.delay(failures)
                    log.warning(
                        "Kafka is not reachable at %s (%s); retrying in %.0fs",
                        self._bootstrap,
                        type(exc).__name__,
                        delay,
                    )
                    self._rewind()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                else:
                    failures = 0
        finally:
            await self.sink.flush()
            self.close()

    def close(self) -> None:
        self.consumer.close()
        self.producer.close()
