"""The ingest runner: raw topics -> `ingest_record` -> canonical topics and dead letters.

A plain consume-transform-produce loop on kafka-python (the stack's plain client), run in a thread
of the gateway worker, instead of a faust agent: measured in bench/bench_ingest.py, faust's agent
machinery alone (an agent that only copies records) reached about half of the raw client's rate,
which left no room for the normaliser; this loop costs about what the raw client costs.

Delivery guarantee:
- exactly_once: one transactional producer per worker (transactional.id
  `<app_id>.ingest.<instance_id>`, stable across restarts so a restarted worker aborts its
  predecessor's open transaction at once); each polled batch's outputs, dead letters and input
  offsets are committed in one Kafka transaction, with the consumer's group metadata (KIP-447: the
  broker refuses the offsets of a worker that lost its partitions in a rebalance). Downstream
  consumers read with isolation_level=read_committed.
- at_least_once: idempotent producer; a batch's offsets are committed once every output of it was
  acknowledged. A crash may re-deliver a batch; outputs carry a deterministic `ce_id`.
Either way, a failed batch (broker lost, rebalance during the batch) is aborted and re-read from its
first offset after a backoff (1 s, 2 s ... 30 s, one log line per try); the loop never exits for a
broker outage. Another worker with the same transactional.id (fenced) stops the runner with a
message naming GATEWAY_INSTANCE_ID.

CPU: normalising is pure Python and holds the GIL. With `processes` = N > 0 (GATEWAY_INGEST_PROCESSES)
each polled batch is cut into contiguous chunks: N spawned processes normalise all but the first,
which the loop's thread normalises meanwhile, and each chunk's outputs are sent as soon as it is
done, in input order (so N = 1 already uses two cores). 0 normalises in the loop's thread only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import Any

from gateway.codec.avro import load_schemas
from gateway.codec.framing import Framer
from gateway.errors import FatalError, Problem
from gateway.flows.dlq import DeadLetter, DeadLetters
from gateway.flows.ingest import FLOW, STAGE, IngestResult, Output, RawTopic, ingest_record
from gateway.flows.kafka_group import rejoin_left_unfinished
from gateway.flows.kafka_txn import describe, fenced, retriable, same_membership
from gateway.flows.pool import exit_with_parent, spawn_pool
from gateway.kafka_config import as_client_kwargs
from gateway.monitoring.metrics import Metrics
from gateway.retry import BROKER_BACKOFF

__all__ = ["IngestRunner", "RawRecord", "normalise_chunk"]

log = logging.getLogger(__name__)

SESSION_TIMEOUT_MS = 15_000
TRANSACTION_TIMEOUT_MS = 15_000
MIN_CHUNK = 16  # records per task at least (amortises the inter-process round trip)


@dataclass(frozen=True, slots=True)
class RawRecord:
    """What the pure core needs of a consumed record (picklable, for worker processes)."""

    fmt: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None
    source: str | None = None  # the source whose raw topic it was read from
    may_enter: frozenset[str] | None = None  # the provenance.saisie codes that source may enter


_DEAD_LETTERS = DeadLetters()  # build() only: pure, no producer


def normalise_chunk(records: Sequence[RawRecord], prefix: str) -> list[IngestResult]:
    """The pure core over a chunk (runs in the loop's thread or in a worker process)."""
    schemas = load_schemas()
    return [
        ingest_record(
            r.fmt,
            r.value,
            source_topic=r.topic,
            partition=r.partition,
            offset=r.offset,
            key=r.key,
            timestamp_ms=r.timestamp_ms,
            schemas=schemas,
            dead_letters=_DEAD_LETTERS,
            prefix=prefix,
            source=r.source,
            may_enter=r.may_enter,
        )
        for r in records
    ]


def _warm_up(parent: int) -> None:
    """Initializer of a normalising process: load once, and exit when the worker is gone."""
    load_schemas()
    from gateway.normalise import normalise  # noqa: F401, PLC0415 - import the normalisers once

    exit_with_parent(parent)


class IngestRunner:
    """Consumer group `group_id` on the raw topics (`formats`: topic -> format name; `sources`: topic
    -> its source, whose records' `saisie` is checked; a topic without one is read unchecked, for
    benchmarks and tools only: the worker reads the declared sources' topics)."""

    def __init__(
        self,
        *,
        bootstrap: str | Mapping[str, Any],
        formats: Mapping[str, str],
        group_id: str,
        prefix: str,
        metrics: Metrics,
        exactly_once: bool = True,
        transactional_id: str | None = None,
        processes: int = 0,
        max_records: int = 500,
        client_options: Mapping[str, Any] | None = None,
        sources: Mapping[str, RawTopic] | None = None,
        refresh: Callable[[], Mapping[str, RawTopic] | None] | None = None,
        refresh_interval_s: float = 30.0,
        framer: Framer | None = None,
        session_timeout_ms: int = SESSION_TIMEOUT_MS,
    ) -> None:
        self.bootstrap = bootstrap
        self.session_timeout_ms = session_timeout_ms
        self.framer = framer if framer is not None and framer.confluent else None
        self.formats = dict(formats)
        self.sources = dict(sources or {})
        self.refresh = refresh  # the declared sources again (None: keep them), called between batches
        self.refresh_interval_s = refresh_interval_s
        self._next_refresh = time.monotonic() + refresh_interval_s
        self.last_success = time.monotonic()  # the last batch committed (or the start): /health
        self.group_id = group_id
        self.prefix = prefix
        self.metrics = metrics
        self.exactly_once = exactly_once
        self.transactional_id = transactional_id or f"{group_id}.tx"
        self.processes = processes
        self.max_records = max_records
        self.client_options = dict(client_options or {})
        self.processed = 0
        self._consumer: Any = None
        self._producer: Any = None
        self._pool: Executor | None = None
        self._committed: dict[tuple[str, int], int] = {}
        self._counters: dict[tuple[int, str, str], Any] = {}
        self._in_txn = False
        self._txn_started = 0.0
        self._pool_deaths: tuple[Any, int] = (None, 0)  # (first offsets of the batch, deaths on it)
        self._inline_once = False  # normalise the next batch in this thread (pool died on it twice)
        self._processing = metrics.processing.labels(flow=FLOW)

    # -- clients -------------------------------------------------------------------------------
    def _open_consumer(self) -> None:
        from kafka import KafkaConsumer  # noqa: PLC0415 - only the running worker needs a client

        self._consumer = KafkaConsumer(
            *self.formats,
            **as_client_kwargs(self.bootstrap),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=self.max_records,
            # a worker that died gives its partitions up after GATEWAY_SESSION_TIMEOUT_S (as the faust flows)
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=min(3000, self.session_timeout_ms // 3),
            **self.client_options,
        )

    def _open_producer(self) -> None:
        from kafka import KafkaProducer  # noqa: PLC0415

        options: dict[str, Any] = {
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 5,
            "batch_size": 256 * 1024,
            "max_block_ms": 10_000,  # metadata / init waits: a stop request is seen within ~10 s
            **self.client_options,
        }
        if self.exactly_once:
            options["transactional_id"] = self.transactional_id
            # the open transaction of a worker that died (and is not restarted with its instance id)
            # is aborted by the broker after this; a batch takes well under a second
            options["transaction_timeout_ms"] = TRANSACTION_TIMEOUT_MS
        self._producer = KafkaProducer(**as_client_kwargs(self.bootstrap), **options)
        if self.exactly_once:
            self._producer.init_transactions()

    def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=5)
            except Exception:
                log.debug("ingest: producer close failed", exc_info=True)

    def lag(self) -> dict[tuple[str, int], int]:
        """Records not yet committed per assigned partition (for kafka_consumergroup_lag). Called from
        the web server's thread: reads the consumer's cached state only (no request to the broker)."""
        consumer = self._consumer
        if consumer is None:
            return {}
        out: dict[tuple[str, int], int] = {}
        for tp in list(consumer.assignment()):
            high = consumer.highwater(tp)
            done = self._committed.get((tp.topic, tp.partition))
            if high is not None and done is not None:
                out[(tp.topic, tp.partition)] = int(high) - int(done)
        return out

    # -- one batch ----------------------------------------------------------------------------
    def _raw(self, polled: Mapping[Any, Sequence[Any]]) -> list[RawRecord]:
        out = []
        for tp, records in polled.items():
            fmt, src = self.formats.get(tp.topic, "unknown"), self.sources.get(tp.topic)
            who = (src.source, src.may_enter) if src is not None else (None, None)
            ts = [m.timestamp if m.timestamp is not None and m.timestamp >= 0 else None for m in records]
            out += [
                RawRecord(fmt, m.topic, m.partition, m.offset, m.key, m.value, t, *who)
                for m, t in zip(records, ts, strict=True)
            ]
        return out

    def _normalise(self, records: list[RawRecord]) -> Iterator[tuple[list[RawRecord], list[IngestResult]]]:
        """(records, results) chunk by chunk, in input order. With a pool, the batch is cut into
        contiguous chunks: the pool's processes take all but the first, which this thread normalises
        meanwhile (so `processes` = 1 already normalises on two cores)."""
        pool = None if self._inline_once else self._pool
        self._inline_once = False
        if pool is None or len(records) < 2 * MIN_CHUNK:
            yield records, normalise_chunk(records, self.prefix)
            return
        # the thread's share first (it also sends the outputs), then two chunks per process (balance)
        own = max(MIN_CHUNK, len(records) // (self.processes + 1))
        rest = records[own:]
        size = max(MIN_CHUNK, -(-len(rest) // (2 * self.processes)))
        chunks = [records[:own], *(rest[i : i + size] for i in range(0, len(rest), size))]
        futures = [pool.submit(normalise_chunk, chunk, self.prefix) for chunk in chunks[1:]]
        try:
            yield chunks[0], normalise_chunk(chunks[0], self.prefix)
            for chunk, future in zip(chunks[1:], futures, strict=True):
                yield chunk, future.result()
        finally:
            for future in futures:
                future.cancel()

    def _count(self, records: list[RawRecord], sent: list[tuple[str, str, bool]], elapsed: float) -> None:
        """Metrics of a committed batch: records in, and what was sent (fmt, topic, dead letter?)."""
        m = self.metrics
        per_record = elapsed / max(1, len(records))
        for record in records:
            self._counter(m.records_in, record.fmt, "").inc()
            self._processing.observe(per_record)
        for fmt, topic, dead in sent:
            if dead:
                self._counter(m.dead_lettered, fmt, "").inc()
            else:
                self._counter(m.records_out, fmt, topic).inc()

    def _counter(self, family: Any, fmt: str, topic: str) -> Any:
        key = (id(family), fmt, topic)
        child = self._counters.get(key)
        if child is None:
            labels = {"flow": FLOW, "source": fmt}
            if topic:
                labels["topic"] = topic
            child = self._counters[key] = family.labels(**labels)
        return child

    def process_batch(self, polled: Mapping[Any, Sequence[Any]]) -> int:
        """Normalise a polled batch, publish its outputs and commit its offsets (one transaction
        with exactly-once). Raises on any Kafka error, the batch then being neither committed nor
        half-visible to read_committed consumers. Call it right after the poll that returned it."""
        from kafka.structs import OffsetAndMetadata  # noqa: PLC0415

        records = self._raw(polled)
        if not records:
            return 0
        membership = self._consumer.group_metadata()  # the generation that polled this batch
        for tp, batch in polled.items():  # lag is known from the first record read of a partition
            if batch:
                self._committed.setdefault((tp.topic, tp.partition), batch[0].offset)
        started = time.perf_counter()
        producer = self._producer
        if self.exactly_once:
            producer.begin_transaction()
            self._in_txn, self._txn_started = True, time.monotonic()
        futures: list[Any] = []
        sent: list[tuple[str, str, bool]] = []
        unknown: list[str] = []  # code lists of the unknown codes carried (metric label)
        dead_logged = 0
        for chunk, results in self._normalise(records):  # sends overlap the next chunks' normalising
            for record, result in zip(chunk, results, strict=True):
                canonical = result.records
                if self.framer is not None:  # Confluent wire format: cached ids, never unframed
                    reframe = self.framer.reframe
                    canonical = [replace(o, value=reframe(o.topic, o.value)) for o in canonical]
                outputs: list[Output | DeadLetter] = [*canonical, *result.dead]
                unknown.extend(result.unknown_codes)
                for out in outputs:
                    future, topic, dead = _send(producer, out, record)
                    futures.append(future)
                    sent.append((record.fmt, topic, dead))
                if result.dead and dead_logged < 20:  # coordinates only, never the payload
                    dead_logged += 1
                    log.info(
                        "ingest: %d part(s) of %s@%s/%s dead-lettered",
                        len(result.dead),
                        record.topic,
                        record.partition,
                        record.offset,
                    )
        offsets = {
            tp: OffsetAndMetadata(batch[-1].offset + 1, "", -1) for tp, batch in polled.items() if batch
        }
        producer.flush()  # every send is final: a failed one raises here, before any commit
        for future in futures:
            future.get(timeout=0)
        if self.exactly_once:
            same_membership(membership, self._consumer.group_metadata())
            producer.send_offsets_to_transaction(offsets, membership)
            producer.commit_transaction()
            self._in_txn = False
        else:
            self._consumer.commit(offsets)
        for tp, offset in offsets.items():
            self._committed[(tp.topic, tp.partition)] = offset.offset
        self._count(records, sent, time.perf_counter() - started)
        for liste in unknown:
            self.metrics.unknown_codes.labels(liste=liste).inc()
        self.processed += len(records)
        return len(records)

    def _rewind(self, polled: Mapping[Any, Sequence[Any]]) -> None:
        """Back to the first offset of a batch that was not committed: it is polled again."""
        assigned = set(self._consumer.assignment()) if self._consumer is not None else set()
        for tp, batch in polled.items():
            if batch and tp in assigned:
                try:
                    self._consumer.seek(tp, batch[0].offset)
                except Exception:
                    log.debug("ingest: cannot rewind %s", tp, exc_info=True)

    def _abort(self) -> None:
        in_txn, self._in_txn = self._in_txn, False
        if not self.exactly_once or self._producer is None or not in_txn:
            return
        try:
            self._producer.abort_transaction()
        except Exception:
            log.debug("ingest: abort failed, producer replaced", exc_info=True)
            self._close_producer()

    # -- the loop -----------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set. Broker outages are waited for; a fenced producer (another worker with
        this transactional id) and errors that a retry cannot cure (authorisation...) are fatal."""
        failures = 0
        try:
            while not stop.is_set():
                polled: Mapping[Any, Sequence[Any]] = {}
                try:
                    if self.processes > 0 and self._pool is None:
                        self._pool = _new_pool(self.processes)
                    if self._consumer is None:
                        self._open_consumer()
                    if self._producer is None:
                        self._open_producer()
                    self._maybe_refresh()
                    rejoin_left_unfinished(self._consumer, "ingest")
                    polled = self._consumer.poll(timeout_ms=200, max_records=self.max_records)
                    self._forget_revoked()
                    self.process_batch(polled)
                    failures, self.last_success = 0, time.monotonic()
                except BrokenProcessPool:  # a normalising process died (OOM killer...): new pool
                    failures += 1
                    self._pool_died(polled)
                    self._abort()
                    self._rewind(polled)
                    self._shutdown_pool()
                    stop.wait(BROKER_BACKOFF.delay(failures))
                except Exception as exc:  # noqa: BLE001 - classified by _recover (raises when fatal)
                    failures += 1
                    self._recover(exc, polled, failures)
                    stop.wait(BROKER_BACKOFF.delay(failures))
        finally:
            self.close()

    def _recover(self, exc: Exception, polled: Mapping[Any, Sequence[Any]], failures: int) -> None:
        """After a failed batch: abort, rewind, and say why; raise FatalError when retrying is futile."""
        from kafka.errors import KafkaError  # noqa: PLC0415

        open_for = time.monotonic() - self._txn_started if self._in_txn else 0.0
        is_fenced = fenced(exc, self._producer)
        if is_fenced and open_for < 0.8 * TRANSACTION_TIMEOUT_MS / 1000:
            raise FatalError(
                f"ingest: transactional id {self.transactional_id!r} is used by another worker;"
                " give each worker of one app its own GATEWAY_INSTANCE_ID"
            ) from exc
        if not is_fenced and not retriable(exc, self._producer):
            if not isinstance(exc, KafkaError):
                raise exc  # a bug, not a Kafka error: its message may quote data, never wrap it
            raise FatalError(
                f"ingest: Kafka refused the batch, retrying cannot help: {describe(exc)}"
            ) from exc
        if is_fenced:  # the broker aborted a transaction that outlived its timeout (an outage): new epoch
            self._in_txn = False
            self._close_producer()
        self._abort()
        self._rewind(polled)
        log.warning(
            "ingest: batch not committed (%s); retrying in %.0fs",
            describe(exc),
            BROKER_BACKOFF.delay(failures),
        )

    def _maybe_refresh(self) -> None:
        """Between batches: take the sources the actors file declares now (a source added, removed, or
        speaking for other organisations), re-subscribing when the set of raw topics changed."""
        if self.refresh is None or time.monotonic() < self._next_refresh:
            return
        self._next_refresh = time.monotonic() + self.refresh_interval_s
        new = self.refresh()
        if new is None or dict(new) == self.sources:
            return
        formats = {t: src.fmt for t, src in new.items()}
        resubscribe = set(formats) != set(self.formats)
        self.sources, self.formats = dict(new), formats
        if resubscribe and self._consumer is not None:
            self._consumer.subscribe(list(formats))  # a rebalance; records left stay in their topics
        log.info("ingest: sources reloaded, %d raw topics read", len(formats))

    def _pool_died(self, polled: Mapping[Any, Sequence[Any]]) -> None:
        """A batch that killed the pool twice is normalised in this thread once (no endless respawn)."""
        first = tuple(sorted((tp.topic, tp.partition, b[0].offset) for tp, b in polled.items() if b))
        same, deaths = self._pool_deaths
        deaths = deaths + 1 if same == first else 1
        self._pool_deaths = (first, deaths)
        self._inline_once = deaths >= 2
        log.warning("ingest: a normalising process died (%d time(s) on this batch); batch re-read", deaths)

    def _forget_revoked(self) -> None:
        """Lag bookkeeping only for the partitions held (a partition back later starts afresh)."""
        assigned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        for key in [k for k in self._committed if k not in assigned]:
            self._committed.pop(key, None)

    def close(self) -> None:
        self._close_producer()
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                consumer.close()
            except Exception:
                log.debug("ingest: consumer close failed", exc_info=True)
        self._shutdown_pool()

    def _shutdown_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _new_pool(processes: int) -> ProcessPoolExecutor:
    return spawn_pool(processes, _warm_up)


def _send(producer: Any, out: Output | DeadLetter, source: RawRecord) -> tuple[Any, str, bool]:
    """producer.send; a record over the producer's size limit becomes a dead letter instead (the
    canonical record of an input, or the original bytes of a dead letter, can exceed max.request.size):
    the dead letter then names the input's coordinates and omits the value, which stays in the raw topic."""
    from kafka.errors import MessageSizeTooLargeError  # noqa: PLC0415

    try:
        future = producer.send(out.topic, out.value, key=out.key, headers=list(out.headers))
        return future, out.topic, isinstance(out, DeadLetter)
    except MessageSizeTooLargeError:
        where = f"{source.topic}@{source.partition}/{source.offset}"
        log.warning("ingest: an output of %s is too large for the producer", where)
        letter = _DEAD_LETTERS.build(
            source_topic=source.topic,
            partition=source.partition,
            offset=source.offset,
            key=source.key,
            original=b"",
            problems=[Problem("$", f"output for {out.topic} too large; the input stays at {where}")],
            message="output too large",
            stage=STAGE,
        )
        future = producer.send(letter.topic, letter.value, key=letter.key, headers=list(letter.headers))
        return future, letter.topic, True
