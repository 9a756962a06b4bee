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
Offsets are committed asynchronously after each batch, as Kafka Connect's sink tasks do
(gateway.flows.kafka_group.Commits: a crash loses at most the commits in flight, whose batches are
delivered again); the next fetch is sent as soon as a partition's buffered records are taken: the
broker's round trips overlap the sink's work.
Reading processes (render_processes > 0, GATEWAY_SINK_PROCESSES; a sink with a `renderer()`): they
read, decode and render the partitions (gateway.flows.readers) while this process keeps the group
(its partitions paused), writes and commits; given the partitions again from what was written after
each rebalance, rewind or death (what they read before is dropped: `dropped`); after 5 deaths within
the hour (Readers.exhausted), this process reads itself. A sink with `headers_in_write = False` gets
a rendered record without its headers and bytes: its dead letter reads them again
(gateway.flows.originals). Backoff: gateway.retry. `run(stop, until_idle=True)` drains the topics
and returns once every assigned partition is read to its end (a nightly job). The per-batch work
(decode, write, retries, dead letters) is gateway.flows.deliver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.codec.avro import AvroCodec, load_schemas
from gateway.codec.framing import decoder_for, framer_for
from gateway.connectors import Sink, SinkContext, SinkOutput
from gateway.flows.deliver import (
    Decoded,
    EgressResult,
    SinkHealth,
    SinkUnavailable,
    count_batch,
    no_collection,
    process_envelopes,
)
from gateway.flows.kafka_group import (
    Commits,
    envelopes_of,
    first_offsets,
    lag_of,
    read_to_end,
    rebalancing,
    rejoin_left_unfinished,
    resume_listener,
    stored_offsets,
)
from gateway.flows.originals import restore_dead_letters
from gateway.flows.outputs import OutputPublisher
from gateway.flows.readers import ReaderDied, Readers, Taken
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


@dataclass
class _Batch:
    """A polled batch on its way: its records, where the consumer stood after it, the first offset of
    each partition in it, and its records decoded already (by reading processes; None: decoded when
    written)."""

    envelopes: list[Envelope]
    positions: dict[Any, Any]
    firsts: dict[Any, int] = field(default_factory=dict)
    decoded: Decoded | None = None


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
        self.outputs = OutputPublisher(
            KafkaProducer(**kwargs, **{"acks": "all", "linger_ms": 5, **(producer_options or {})}),
            framer_for(registry_url),
            bootstrap=str(kwargs.get("bootstrap_servers", "")),
            timeout_s=commit_timeout_ms / 1000,
            layout=(partitions, replication),
            create_topics=create_topics,
        )
        self.commit_timeout_ms = commit_timeout_ms
        self.processed = 0
        self.broker_failures = 0  # tries that failed because the broker was away (monitoring, tests)
        self._ticked: list[SinkOutput] = []  # outputs of tick() not yet acknowledged by the broker
        self._uncommitted: dict[Any, int] = {}  # TopicPartition -> first offset of the current batch
        self._positions: dict[Any, Any] = {}  # TopicPartition -> OffsetAndMetadata, as of the last poll
        self.commits = Commits(self.consumer, commit_timeout_ms)
        self._bootstrap = str(kwargs.get("bootstrap_servers", ""))
        self._opened = False
        self._lag: dict[tuple[str, int], int] = {}
        self._lag_at = 0  # self.rebalances when the lag was last measured
        self.resume_pending = False  # resume_offsets failed when partitions were assigned
        self.rebalances = 0  # counted by the rebalance listener: the readers are given partitions again
        renderer = sink.renderer() if render_processes > 0 else None
        self.readers: Readers | None = None  # None: this process reads (inline, or after MAX_DEATHS)
        self._readers: Readers | None = None
        if renderer is not None:
            self.readers = self._readers = Readers(
                render_processes,
                kwargs,
                known,
                registry_url,
                renderer,
                max_records=max_records,
                erasure_tombstones=bool(getattr(sink, "erasure_tombstones", False)),
                lean=not sink.headers_in_write,
            )
        self._client = kwargs  # the principal's settings: dead letters' originals read again
        self._synced = 0  # self.rebalances when the readers were last given the assignment
        self._resync = False  # the readers must be given the partitions again (a rewind, a reader died)
        self._next: dict[Any, int] = {}  # with readers: TopicPartition -> the offset after what was written
        self._high: dict[Any, int] = {}  # ... -> its high watermark, as the readers last saw it
        self._taking: asyncio.Future[Taken | None] | None = None  # the next batch, taken during a write

    @property
    def dropped(self) -> int:
        """Batches read ahead by the reading processes and dropped by a rebalance or a rewind."""
        return self._readers.dropped if self._readers is not None else 0

    @property
    def producer(self) -> Any:
        return self.outputs.producer

    def _publish(self, records: Sequence[SinkOutput]) -> None:
        self.outputs.publish(records)

    def lag(self) -> dict[tuple[str, int], int]:
        """Records not yet committed per assigned partition (kafka_consumergroup_lag), as of the last
        commit (a snapshot: the consumer is not thread-safe, a scrape never touches it)."""
        return dict(self._lag)

    def _measure_lag(self) -> None:
        written = self._next if self.readers is not None else None
        self._lag, self._lag_at = lag_of(self.consumer, written, self._high), self.rebalances

    def caught_up(self) -> bool:
        """True when partitions are assigned and each one is read to its end (for --until-idle)."""
        if self.readers is not None and self._resync:
            return False
        return read_to_end(self.consumer, self._next if self.readers is not None else None)

    async def _open(self) -> None:
        if not self._opened:
            if self.readers is not None:
                self.readers.start()  # while the consumer joins its group
            if self.context is not None:
                await self.sink.open(self.context)
        self._opened = True

    async def _tick(self) -> None:
        self._ticked.extend(await self.sink.tick())  # kept until published: not returned twice
        if self._ticked:
            await asyncio.to_thread(self._publish, self._ticked)
            self._ticked = []

    async def run_once(self) -> int:
        """Poll one batch (with reading processes: take the next one they read), write it, publish,
        commit. Returns the number of records polled."""
        await self._open()
        if self.readers is not None:
            return await self._take_once(self.readers)
        polled = await asyncio.to_thread(self._poll, self.poll_timeout_ms)
        # no cyclic collection while the batch is alive (its many containers would be scanned again
        # and again); it resumes once the polled records, envelopes and decoded records are gone
        with no_collection():
            envelopes = await self._resume_if_pending(envelopes_of(polled))
            del polled
            batch = _Batch(envelopes, dict(self._positions), first_offsets(envelopes))
            for tp, offset in batch.firsts.items():
                first = self._uncommitted.get(tp)
                if first is None or offset < first:
                    self._uncommitted[tp] = offset
            await self._tick()
        count = len(envelopes)
        del envelopes
        if batch.envelopes:
            await self._deliver(batch)
        elif self._lag_at != self.rebalances:  # a rebalance and nothing read since: measured now
            self._measure_lag()
        return count

    async def _take_once(self, readers: Readers) -> int:
        """With reading processes: the group's membership kept (its partitions paused), the readers
        given the assignment when it changed, then their next batch written (not while the group
        rebalances: it is read again once the partitions are given again). The batch after it is
        taken (received, unpacked) while it is written: the write's waits (a database, a receiver)
        overlap that work; taken before a rebalance or a rewind, it is dropped."""
        try:
            waited = self._taking is not None  # for as long as a take waits: no second wait now
            ahead = await self._taking if self._taking is not None else None
            self._taking = None
            if not await asyncio.to_thread(self._poll_group):
                if ahead is not None:  # read again once the partitions are given again
                    readers.dropped += 1
                    self._resync = True
                return 0
            if self.resume_pending:
                await self._resume_if_pending([])
            if self._resync and not self.resume_pending:
                readers.assign(self._next)
                self._resync, waited = False, False
            taken: Taken | None = ahead
            if ahead is not None and ahead.epoch != readers.epoch:
                readers.dropped += 1
                taken, waited = None, False
            if taken is None and not waited:
                taken = await asyncio.to_thread(readers.take, self.poll_timeout_ms / 1000)
        except ReaderDied:
            self._taking = None
            await asyncio.to_thread(self._reader_died, readers)
            return 0
        await self._tick()
        if taken is None:
            return 0
        if rebalancing(self.consumer):  # its partitions may be someone else's now: read again after
            readers.dropped += 1
            self._resync = True
            return 0
        self._taking = asyncio.ensure_future(asyncio.to_thread(readers.take, self.poll_timeout_ms / 1000))
        return await self._deliver_taken(taken)

    def _poll_group(self) -> bool:
        """With reading processes: rebalances, the answers to commits, and, when the assignment
        changed, where each partition's reading starts (the sink's stored offset, else the group's).
        False while the group rebalances or nothing is assigned."""
        rejoin_left_unfinished(self.consumer, self.name)
        joined = bool(self.consumer.assignment()) and not rebalancing(self.consumer)
        polled = self.consumer.poll(timeout_ms=0 if joined else self.poll_timeout_ms, max_records=1)
        for tp, records in (polled or {}).items():  # none: its partitions are paused (resume_listener)
            self.consumer.seek(tp, records[0].offset)
        assigned = self.consumer.assignment()
        if not assigned or rebalancing(self.consumer):
            return False
        if self.rebalances != self._synced:
            self._synced = self.rebalances
            self.consumer.pause(*assigned)
            self._next = {tp: int(self.consumer.position(tp)) for tp in assigned}
            self._high = {tp: h for tp, h in self._high.items() if tp in assigned}
            self._measure_lag()  # now, not at the next batch: revoked partitions are not this group's lag
            self.commits.keep(assigned)
            self._resync = True
        return True

    def _reader_died(self, readers: Readers) -> None:
        readers.died()
        self._resync = True
        if not readers.exhausted():
            return
        told = "reading processes died %d times in %.0f s (%d in all): this process reads"
        log.warning(told, readers.recent_deaths(), readers.death_window_s, readers.deaths)
        self.readers = None
        assigned = self.consumer.assignment()
        for tp in assigned:
            if tp in self._next:
                self.consumer.seek(tp, self._next[tp])
        self.consumer.resume(*assigned)

    def _settled(self) -> bool:
        """Reading in this process, or every reading process reads under the current assignment."""
        return self.readers is None or (self.readers.settled() and not self._resync)

    async def _deliver_taken(self, taken: Taken) -> int:
        from kafka import TopicPartition  # noqa: PLC0415
        from kafka.structs import OffsetAndMetadata  # noqa: PLC0415

        moved = {TopicPartition(*k): v for k, v in taken.positions.items()}
        self._high.update({TopicPartition(*k): v for k, v in taken.highwater.items()})
        positions = {**self.commits.done, **{tp: OffsetAndMetadata(at, "", -1) for tp, at in moved.items()}}
        count = len(taken.envelopes)
        if count:
            batch = _Batch(taken.envelopes, positions, decoded=taken.decoded)
            del taken
            await self._deliver(batch)
        elif any(self._next.get(tp) != at for tp, at in moved.items()):  # past a transaction's marker
            await asyncio.to_thread(self._commit, positions)
        self._next.update(moved)
        for tp, at in moved.items():  # this consumer's own position: where a rebalance starts it again
            with contextlib.suppress(Exception):  # not assigned any more: its new owner resumes
                self.consumer.seek(tp, at)
        self._measure_lag()
        return count

    async def _deliver(self, batch: _Batch) -> None:
        """Write one batch (decoded here, or by the reading processes), publish what it gave,
        commit where the consumer stood after it."""
        started = time.perf_counter()
        decoded, batch.decoded = batch.decoded, None
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
        await restore_dead_letters(self._client, result, self.commit_timeout_ms / 1000)
        await asyncio.to_thread(self._publish, [*result.outputs, *result.dead])
        await asyncio.to_thread(self._commit, batch.positions)
        self._uncommitted = {}
        if self.readers is None:
            self._measure_lag()
        self.processed += count
        if self.metrics is not None:
            count_batch(self.metrics, self.name, count, result, time.perf_counter() - started)

    async def _resume_if_pending(self, envelopes: list[Envelope]) -> list[Envelope]:
        """The sink could not say where to resume when partitions were assigned: ask again (raises
        SinkUnavailable: retried with backoff); records of partitions it names are polled again."""
        if not self.resume_pending:
            return envelopes
        stored = await stored_offsets(self.sink, self.consumer, self.name)
        self.resume_pending = False
        for tp, offset in stored.items():
            self.consumer.seek(tp, offset)
            self._positions.pop(tp, None)  # read again: not committed
            if self.readers is not None:  # they are given it (_take_once)
                self._next[tp] = offset
                self._resync = True
        return [e for e in envelopes if (e.topic, e.partition) not in stored]

    def _poll(self, timeout_ms: int) -> Any:
        """Records, waiting up to `timeout_ms` for them."""
        rejoin_left_unfinished(self.consumer, self.name)
        polled = self.consumer.poll(timeout_ms=timeout_ms, max_records=self.max_records)
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
        if offsets:
            self.commits.commit(offsets)
        elif self.readers is None:  # the consumer's own position (with readers, not what was written)
            self.consumer.commit(timeout_ms=self.commit_timeout_ms)

    def unacknowledged(self, partitions: Any = None) -> dict[Any, Any]:
        return self.commits.unacknowledged(partitions)

    def commit_done(self, timeout_ms: int | None = None) -> None:
        self.commits.commit_done(timeout_ms)

    def _rewind(self) -> None:
        """Back to the first offset of the batch not committed: it is polled again (with readers:
        they read again from what was written)."""
        self._resync = True
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
                    idle = not polled and self.consumer.assignment() and self._settled()
                    quiet = quiet + 1 if idle else 0
                    # drained: every partition read to its end, or nothing more to read for 3 polls (a
                    # read_committed consumer cannot pass an open transaction: no need to wait for it)
                    if until_idle and quiet and (quiet >= 3 or await asyncio.to_thread(self.caught_up)):
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
            if self._taking is not None:  # read again by the next run: never written
                with contextlib.suppress(Exception):
                    await self._taking
            with contextlib.suppress(Exception):  # the broker away: the batches are delivered again
                await asyncio.to_thread(self.commit_done, 10_000)
            await self.sink.flush()
            self.close()

    def close(self) -> None:
        if self._readers is not None:
            self._readers.close()
        self.consumer.close()
        self.producer.close()
