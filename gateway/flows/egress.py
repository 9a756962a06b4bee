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
`outputs_for_rejection(record, error, attempts)` for a dead-lettered record, `tick()` after each
poll, and `erase(erasures)` for the `fr.gp.Effacement` records of a batch, in stream order
(gateway.flows.deliver; counted as gp_sink_erasures_total).
Offsets are committed asynchronously after each batch (the consumer's position when the batch was
polled: Kafka Connect's sink tasks commit the same way), synchronously when the run ends, when
partitions are revoked and after a failed asynchronous commit; the next fetch is sent as soon as a
partition's buffered records are taken (not when every partition's are): the broker's round trips
overlap the sink's work. A crash loses at most the commits in flight: those batches are delivered
again, as after any crash before a commit.
Pipelined rendering: a sink with a `renderer()`, run with render_processes > 0
(GATEWAY_SINK_PROCESSES), has each polled batch decoded and rendered in worker processes
(gateway.flows.render) while the batch before it is written: the loop polls batch N+1 (without
waiting when batch N is in flight), sends it to the workers, then writes, publishes and commits
batch N (its own positions). A rebalance while a batch is in flight (the listener counts them): that
batch and the one just polled are dropped, unwritten and uncommitted, and the partitions still held
are sought back to their first offsets (never forward of where the listener put them): they are read
again, as after any rewind.
Backoff comes from the one retry module (gateway.retry). `run(stop, until_idle=True)` drains
the topics and returns once every assigned partition is read to its end (a nightly job).
The per-batch work (decode, write, retries, dead letters) is gateway.flows.deliver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.codec.avro import SINGLE_OBJECT_MAGIC, AvroCodec, load_schemas
from gateway.codec.framing import decoder_for, framer_for
from gateway.connectors import Sink, SinkContext, SinkOutput
from gateway.errors import RetriableError
from gateway.flows.deliver import (
    Decoded,
    EgressResult,
    SinkHealth,
    SinkUnavailable,
    no_collection,
    process_envelopes,
)
from gateway.flows.deliver import reason as _reason
from gateway.flows.kafka_group import rejoin_left_unfinished, resume_listener
from gateway.flows.render import Rendering, RenderPool
from gateway.kafka_config import as_client_kwargs
from gateway.model.envelope import Envelope
from gateway.monitoring.metrics import Metrics
from gateway.retry import BROKER_BACKOFF, RetryPolicy, broker_lost

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


_SLICE_MS = 5  # a poll's wait while a batch is being rendered (checked between slices)


@dataclass
class _Batch:
    """A polled batch on its way: its records, where the consumer stood after it, the first offset of
    each partition in it, and its rendering (None: decoded when written)."""

    envelopes: list[Envelope]
    positions: dict[Any, Any]
    firsts: dict[Any, int] = field(default_factory=dict)
    rendering: Rendering | None = None


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
        session_timeout_ms: int = 15_000,
        codecs: Mapping[bytes, AvroCodec] | None = None,
        context: SinkContext | None = None,
        metrics: Metrics | None = None,
        health: SinkHealth | None = None,
        create_topics: Callable[[set[str]], None] | None = None,
        registry_url: str | None = None,
        render_processes: int = 0,
    ) -> None:
        from kafka import KafkaConsumer, KafkaProducer  # noqa: PLC0415 - only the runner needs a broker

        kwargs: dict[str, Any] = dict(client or {})
        if bootstrap is not None and "bootstrap_servers" not in kwargs:
            # a bare bootstrap: this process's own security settings (GATEWAY_KAFKA_*)
            kwargs = {**as_client_kwargs(bootstrap), **kwargs}
        self.sink = sink
        self.name = context.connector if context else sink.name
        self.context = context
        self.retry = retry or RetryPolicy()
        self.max_records = max_records
        self.poll_timeout_ms = poll_timeout_ms
        self.codecs = codecs
        # with a schema registry: inputs of both framings, Avro outputs in the Confluent wire format
        known = codecs if codecs is not None else load_schemas().by_fingerprint()
        self.decoder = decoder_for(registry_url, known)
        self.framer = framer_for(registry_url)
        self.metrics = metrics
        self.health = health or SinkHealth()
        self.group_id = group_id
        self.consumer: Any = KafkaConsumer(
            **kwargs,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            # a sink that died gives its partitions up after this (GATEWAY_SESSION_TIMEOUT_S)
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=min(3000, session_timeout_ms // 3),
        )
        self.consumer.subscribe(list(topics), listener=resume_listener(self))
        self.producer: Any = KafkaProducer(
            **kwargs, **{"acks": "all", "linger_ms": 5, **(producer_options or {})}
        )
        self.commit_timeout_ms = commit_timeout_ms
        self.processed = 0
        self.broker_failures = 0  # tries that failed because the broker was away (monitoring, tests)
        self._ticked: list[SinkOutput] = []  # outputs of tick() not yet acknowledged by the broker
        self._uncommitted: dict[Any, int] = {}  # TopicPartition -> first offset of the current batch
        self._positions: dict[Any, Any] = {}  # TopicPartition -> OffsetAndMetadata, as of the last poll
        self._done: dict[Any, Any] = {}  # ... of the last batch written: what a commit may say
        self._acked: dict[Any, Any] = {}  # ... the broker acknowledged
        self._commit_failed: BaseException | None = None  # the last asynchronous commit's error
        self._bootstrap = str(kwargs.get("bootstrap_servers", ""))
        self._layout = (partitions, replication)
        self._known: set[str] = set()
        self._create_topics = create_topics
        self._opened = False
        self._lag: dict[tuple[str, int], int] = {}
        self.resume_pending = False  # resume_offsets failed when partitions were assigned
        self.rebalances = 0  # counted by the rebalance listener: a batch in flight across one is dropped
        self._pending: _Batch | None = None  # polled, being rendered, not written yet
        self.dropped = 0  # batches in flight dropped by a rebalance (read again)
        renderer = sink.renderer() if render_processes > 0 else None
        self.render: RenderPool | None = None
        if renderer is not None:
            self.render = RenderPool(
                render_processes,
                known,
                registry_url,
                renderer,
                erasure_tombstones=bool(getattr(sink, "erasure_tombstones", False)),
            )

    def _ensure(self, topics: set[str]) -> None:
        """Outputs may name topics that do not exist yet (feedback per organisation): create them."""
        new = topics - self._known
        if not new:
            return
        if self._create_topics is not None:
            self._create_topics(new)
        else:
            from gateway.flows.admin import DAY_MS, TopicSpec, ensure_topics  # noqa: PLC0415

            p, r = self._layout
            # feedback topics: 30 days (docs/retention.md)
            specs = [TopicSpec(t, p, r, "delete", {"retention.ms": str(30 * DAY_MS)}) for t in sorted(new)]
            ensure_topics(self._bootstrap, specs)
        self._known |= new

    def _value(self, topic: str, value: bytes | None) -> bytes | None:
        if self.framer.confluent and value is not None and value[:2] == SINGLE_OBJECT_MAGIC:
            return self.framer.reframe(topic, value)
        return value

    def _publish(self, records: Sequence[SinkOutput]) -> None:
        if not records:
            return
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
        """Poll one batch, write it (with rendering processes: the batch polled before it), publish,
        commit. Returns the number of records polled."""
        if not self._opened:
            if self.render is not None:
                self.render.start()  # while the consumer joins its group
            if self.context is not None:
                await self.sink.open(self.context)
        self._opened = True
        rebalances = self.rebalances
        # a batch in flight: the poll waits for records only while it is being rendered
        rendering = self._pending.rendering if self._pending is not None else None
        polled = await asyncio.to_thread(self._poll, self.poll_timeout_ms, rendering)
        # no cyclic collection while the batch is alive (its many containers would be scanned again
        # and again); it resumes once the polled records, envelopes and decoded records are gone
        with no_collection():
            envelopes = await self._resume_if_pending(_envelopes(polled))
            del polled
            batch = _Batch(envelopes, dict(self._positions), _firsts(envelopes))
            for tp, offset in batch.firsts.items():
                first = self._uncommitted.get(tp)
                if first is None or offset < first:
                    self._uncommitted[tp] = offset
            self._ticked.extend(await self.sink.tick())  # kept until published: not returned twice
            if self._ticked:
                await asyncio.to_thread(self._publish, self._ticked)
                self._ticked = []
        count = len(envelopes)
        if self._pending is not None and self.rebalances != rebalances:
            # partitions were revoked while a batch was in flight: both are read again (_rewind)
            self.dropped += 1
            await asyncio.to_thread(self._rewind, True)
            return count
        if self.render is not None and envelopes:
            batch.rendering = self.render.submit(envelopes)
            ready, self._pending = self._pending, batch
        else:
            ready, self._pending = self._pending, None
        del envelopes
        for done in (ready, None if batch is self._pending else batch):
            if done is not None and done.envelopes:
                await self._deliver(done)
        return count

    async def _deliver(self, batch: _Batch) -> None:
        """Write one batch (decoded here, or by the rendering processes), publish what it gave,
        commit where the consumer stood after it."""
        started = time.perf_counter()
        decoded: Decoded | None = None
        if batch.rendering is not None and self.render is not None:
            decoded = await asyncio.to_thread(self.render.collect, batch.rendering, batch.envelopes)
        with no_collection():
            result = await process_envelopes(
                self.sink,
                batch.envelopes,
                retry=self.retry,
                connector=self.name,
                codecs=self.codecs,
                decoder=self.decoder,
                health=self.health,
                decoded=decoded,
            )
            del decoded
        count = len(batch.envelopes)
        batch.envelopes = []
        await asyncio.to_thread(self._publish, [*result.outputs, *result.dead])
        await asyncio.to_thread(self._commit, batch.positions)
        pending = self._pending
        self._uncommitted = dict(pending.firsts) if pending is not None else {}
        self._measure_lag()
        self.processed += count
        self._count(count, result, time.perf_counter() - started)

    def _count(self, polled: int, result: EgressResult, seconds: float) -> None:
        if self.metrics is None:
            return
        m = self.metrics
        m.records_in.labels("sink", self.name).inc(polled)
        if result.written:
            m.records_out.labels("sink", self.name, "delivered").inc(result.written)
        if result.dead:
            m.dead_lettered.labels("sink", self.name).inc(len(result.dead))
        for outcome, n in (
            ("erased", result.erased),
            ("dead_lettered", result.erasures_refused),
            ("not_erased", result.not_erased),
        ):
            if n:
                m.sink_erasures.labels(self.name, outcome).inc(n)
        m.processing.labels("sink").observe(seconds / max(1, polled))

    async def _resume_if_pending(self, envelopes: list[Envelope]) -> list[Envelope]:
        """The sink could not say where to resume when partitions were assigned: ask again (raises
        SinkUnavailable: retried with backoff); records of partitions it names are polled again."""
        if not self.resume_pending:
            return envelopes
        from kafka import TopicPartition  # noqa: PLC0415

        assigned = [(tp.topic, tp.partition) for tp in self.consumer.assignment()]
        try:
            stored = await asyncio.to_thread(self.sink.resume_offsets, assigned)
        except RetriableError as exc:
            raise SinkUnavailable(f"sink {self.name}: {_reason(exc)}") from exc
        self.resume_pending = False
        for (topic, partition), offset in stored.items():
            self.consumer.seek(TopicPartition(topic, partition), offset)
            self._positions.pop(TopicPartition(topic, partition), None)  # read again: not committed
        return [e for e in envelopes if (e.topic, e.partition) not in stored]

    def _poll(self, timeout_ms: int, rendering: Rendering | None = None) -> Any:
        """Records, waiting up to `timeout_ms` for them, or (a batch being rendered) until it is."""
        rejoin_left_unfinished(self.consumer, self.name)
        if rendering is None:
            polled = self.consumer.poll(timeout_ms=timeout_ms, max_records=self.max_records)
        else:
            deadline = time.monotonic() + timeout_ms / 1000
            while True:  # short polls: the batch in flight is written as soon as it is rendered
                polled = self.consumer.poll(timeout_ms=_SLICE_MS, max_records=self.max_records)
                if not polled:
                    rejoin_left_unfinished(self.consumer, self.name)
                if polled or rendering.done() or time.monotonic() >= deadline:
                    break
        if polled:
            # where a commit after this batch may say the group is (the consumer's position, taken
            # here: the consumer is only touched from one thread at a time)
            consumed = getattr(getattr(self.consumer, "_subscription", None), "all_consumed_offsets", None)
            self._positions = dict(consumed()) if consumed is not None else {}
            # the next fetch of the partitions whose records were all taken leaves now, not once every
            # partition's are (kafka-python's default): its round trip overlaps the sink's work
            fetcher = getattr(self.consumer, "_fetcher", None)
            if fetcher is not None:
                with contextlib.suppress(Exception):  # a fetch that cannot leave now leaves at the next poll
                    fetcher.send_fetches()
        return polled

    def _commit(self, offsets: dict[Any, Any]) -> None:
        """Commit what the batch just written moved past: asynchronously, unless the previous
        asynchronous commit failed (then synchronously: a lost broker raises here and is waited for)
        or the consumer cannot say its positions (then its position, synchronously)."""
        if not offsets:
            if self._pending is None:  # (with a batch in flight, the position is past what was written)
                self.consumer.commit(timeout_ms=self.commit_timeout_ms)
            return
        self._done = offsets
        failed, self._commit_failed = self._commit_failed, None
        if failed is not None:
            self.consumer.commit(offsets=offsets, timeout_ms=self.commit_timeout_ms)
            self._acked = offsets
            return

        def answered(committed: Any, response: Any) -> None:
            if isinstance(response, BaseException):
                self._commit_failed = response
            elif self._done is committed:
                self._acked = committed

        self.consumer.commit_async(offsets=offsets, callback=answered)

    def unacknowledged(self, partitions: Any = None) -> dict[Any, Any]:
        """The offsets written and not yet acknowledged by the broker (of `partitions` when given)."""
        done = self._done
        if not done or done is self._acked:
            return {}
        return {tp: o for tp, o in done.items() if partitions is None or tp in partitions}

    def commit_done(self, timeout_ms: int | None = None) -> None:
        """Commit synchronously what was written and not yet acknowledged: at the end of a run (the
        rebalance listener commits a revoked partition's)."""
        offsets = self.unacknowledged()
        if offsets:
            self.consumer.commit(offsets=offsets, timeout_ms=timeout_ms or self.commit_timeout_ms)
            self._acked = self._done

    def _rewind(self, only_back: bool = False) -> None:
        """Back to the first offset of the batches not committed: they are polled again (`only_back`:
        a partition the rebalance listener put further back stays there)."""
        self._pending = None
        for tp, offset in self._uncommitted.items():
            with contextlib.suppress(Exception):  # partition no longer assigned: its new owner resumes
                if not only_back or self.consumer.position(tp) > offset:
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
                    drained = quiet and self._pending is None
                    if until_idle and drained and (quiet >= 3 or await asyncio.to_thread(self.caught_up)):
                        await asyncio.to_thread(self.commit_done)
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
            with contextlib.suppress(Exception):  # the broker away: the batches are delivered again
                await asyncio.to_thread(self.commit_done, 10_000)
            await self.sink.flush()
            self.close()

    def close(self) -> None:
        if self.render is not None:
            self.render.close()
        self.consumer.close()
        self.producer.close()


def _firsts(envelopes: Sequence[Envelope]) -> dict[Any, int]:
    """The first offset of each partition in `envelopes` (a partition's records come in order)."""
    from kafka import TopicPartition  # noqa: PLC0415

    firsts: dict[tuple[str | None, int | None], int] = {}
    for env in envelopes:
        at = (env.topic, env.partition)
        if at not in firsts:
            firsts[at] = int(env.offset or 0)
    return {TopicPartition(topic, partition): offset for (topic, partition), offset in firsts.items()}


def _envelopes(polled: Mapping[Any, Sequence[Any]]) -> list[Envelope]:
    return [
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
