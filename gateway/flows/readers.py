"""Reading processes: a sink's records fetched, decoded and rendered outside the sink's process.

With GATEWAY_SINK_PROCESSES = N > 0, a sink that declares a `renderer()` has N spawned processes
read its partitions: each one is given a share of the partitions the sink's consumer group assigned
(`assign`, with the offset to start from), fetches them with its own consumer (no group: the
sink's process keeps the membership, the commits and the rebalances, its own fetching paused),
decodes and renders each record (gateway.flows.render) and sends the batch back: per record its
coordinates, key, headers, original bytes (for a dead letter) and what the renderer made of it, and
per partition where its reading stands and the partition's high watermark. The sink's process only
writes, publishes and commits (gateway.flows.egress); Kafka's parsing, the decoding and the
rendering, which are most of a record's cost, run beside it.

Flow control: a process sends at most `window` batches ahead of the ones the sink's process took.
Each `assign` starts a new epoch: a batch of an older one (read before a rebalance, or before a
rewind) is dropped when it arrives, unwritten and uncommitted (`dropped`); its records are read
again from where the new epoch starts. A reading process that dies (OOM killer...) loses nothing:
`take` raises ReaderDied, and the runtime starts new ones from what it wrote last.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import ForkingPickler
from typing import Any

from gateway.codec.avro import AvroCodec
from gateway.flows.deliver import Decoded, no_collection
from gateway.flows.pool import exit_with_parent
from gateway.flows.render import Item, Renderer, Unpacker, check_renderer, collect, render_items, setup
from gateway.model.envelope import Envelope
from gateway.monitoring import redact

__all__ = ["MAX_DEATHS", "ReaderDied", "Readers", "Taken"]

log = logging.getLogger("gateway.flows.egress")

MAX_DEATHS = 5  # reading processes found dead within DEATH_WINDOW_S: then the sink's process reads
DEATH_WINDOW_S = 3600.0  # a death older than this no longer counts (a long-running sink's rare OOM kills)
Part = tuple[str, int]  # (topic, partition)
_IDLE_S = 1.0  # a process's wait for orders when it may not read
# polls between two collections of the cyclic garbage batches leave (rare: most is freed at once);
# one a poll cost ~2 % of a reading process's time
_COLLECT_EVERY = 32


class ReaderDied(Exception):
    """A reading process is gone: the batches it had not sent are read again."""


@dataclass
class Taken:
    """A batch from a reading process: its records (decoded and rendered), where the reading of each
    of its partitions stands after it, their high watermarks (for the lag), and its epoch."""

    envelopes: list[Envelope]
    decoded: Decoded
    positions: dict[Part, int] = field(default_factory=dict)
    highwater: dict[Part, int] = field(default_factory=dict)
    epoch: int = 0  # the assignment it was read under (`Readers.assign`)


@dataclass(frozen=True)
class _Job:
    """What a reading process is given: the principal's connection settings, the sink's schemas
    (name, parsed, fingerprint), the registry, the renderer, a batch's size, how far ahead to read."""

    client: Mapping[str, Any]
    schemas: Sequence[tuple[str, Any, bytes]]
    registry_url: str | None
    renderer: Renderer
    max_records: int
    window: int
    lean: bool = False  # a rendered record's headers and bytes stay here (Sink.headers_in_write)


def _main(conn: Connection, parent: int, job: _Job) -> None:
    """A reading process: orders from `conn` ("assign", epoch, [(topic, partition, offset)]),
    ("more",) for each batch taken, ("stop",); batches sent back on it (see `Readers.take`)."""
    exit_with_parent(parent)
    # stopped by its sink's process ("stop", or that process gone), not by the terminal's Ctrl-C or a
    # service manager's SIGTERM to the whole group: an orderly stop is not a death
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    redact.install()  # what this process logs is cleaned as the sink's process's is
    from kafka import KafkaConsumer  # noqa: PLC0415 - heavy, only in the process

    setup(job.schemas, job.registry_url, job.renderer)
    consumer = KafkaConsumer(
        **job.client,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        # a start offset no longer in the log (retention passed it): from the log's start, as the
        # sink's own consumer would, never from its end (kafka-python's default), which skips records
        auto_offset_reset="earliest",
    )
    gc.freeze()  # the consumer's objects too: a batch's collection scans only what batches left
    try:
        _serve(conn, consumer, job.max_records, job.window, job.lean)
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass  # the sink's process is gone or stopping
    except Exception:  # a defect: told (cleaned, never a value), then the sink's process starts another
        log.exception("a reading process stopped")
        os._exit(70)
    finally:
        consumer.close()


def _serve(conn: Connection, consumer: Any, max_records: int, window: int, lean: bool = False) -> None:
    from kafka import TopicPartition  # noqa: PLC0415

    epoch, ahead, polls = -1, 0, 0
    parts: list[Any] = []
    seen: dict[Part, int] = {}
    told: set[Part] = set()  # partitions whose high watermark was sent under this epoch
    while True:
        wait_s = 0.0 if parts and ahead < window else _IDLE_S
        while conn.poll(wait_s):
            order = conn.recv()
            if order[0] == "stop":
                return
            if order[0] == "more":
                ahead = max(0, ahead - 1)
            else:  # ("assign", epoch, starts): what was read before it is dropped by the sink's process
                epoch, starts = order[1], order[2]
                parts = [TopicPartition(t, p) for t, p, _ in starts]
                consumer.assign(parts)
                for (_, _, offset), tp in zip(starts, parts, strict=True):
                    consumer.seek(tp, offset)
                ahead, seen, told = 0, {(t, p): o for t, p, o in starts}, set()
            wait_s = 0.0 if parts and ahead < window else _IDLE_S
        if not parts or ahead >= window:
            continue
        polls += 1
        if polls % _COLLECT_EVERY == 0:
            collect()
        polled = consumer.poll(timeout_ms=100, max_records=max_records)
        consumed = consumer._subscription.all_consumed_offsets()  # no public equivalent
        positions = {(tp.topic, tp.partition): int(om.offset) for tp, om in consumed.items()}
        if polled:
            # the next fetch leaves now, while this batch is rendered (as the sink's own loop does)
            consumer._fetcher.send_fetches()
        high = _highwater(consumer, parts)
        if not polled and high.keys() <= told and all(seen.get(k) == v for k, v in positions.items()):
            continue  # nothing new (a position moves without records past a transaction's marker)
        seen.update(positions)
        told |= high.keys()  # a partition's first high watermark: it was fetched (`Readers.settled`)
        conn.send(("batch", epoch, _pack(polled, lean), positions, high))
        ahead += 1


def _highwater(consumer: Any, parts: Sequence[Any]) -> dict[Part, int]:
    out = {}
    for tp in parts:
        high = consumer.highwater(tp)
        if high is not None:
            out[(tp.topic, tp.partition)] = int(high)
    return out


def _pack(polled: Mapping[Any, Sequence[Any]], lean: bool = False) -> list[tuple[Any, ...]]:
    """Per partition: topic, partition, then the records' offsets, timestamps, keys, values, headers
    and rendering results (columns: they cross the pipe cheaper than one tuple a record). `lean`:
    a rendered record's value (None) and headers (()) are not sent: the sink does not read them
    (Sink.headers_in_write), and a dead letter of it reads them again from the topic (`_unpack`)."""
    out = []
    # each (name, value) pair once a batch: most headers are the same for every record of a view
    # (its schema, the policy's version, the CloudEvents type and source), and a pair sent once a
    # batch is one object to pickle, unpickle, collect and free instead of one a record
    same: dict[tuple[str, bytes], tuple[str, bytes]] = {}
    once = same.setdefault
    for tp, records in polled.items():
        if lean:
            items: list[Item] = [
                (
                    m.value or b"",
                    m.key,
                    tuple(m.headers) if m.headers else (),
                    tp.topic,
                    tp.partition,
                    m.offset,
                )
                for m in records
            ]
            results = render_items(items)
            # sent whole: a tombstone (None), a frame not decoded (two items), a record not rendered
            whole = [r is None or len(r) != 4 or r[2] is None for r in results]
            headers = [
                tuple([once(h, h) for h in m.headers]) if w and m.headers else ()
                for m, w in zip(records, whole, strict=True)
            ]
            values = [(m.value or b"") if w else None for m, w in zip(records, whole, strict=True)]
        else:
            headers = [tuple([once(h, h) for h in m.headers]) if m.headers else () for m in records]
            items = [
                (m.value or b"", m.key, h, tp.topic, tp.partition, m.offset)
                for m, h in zip(records, headers, strict=True)
            ]
            results = render_items(items)
            values = [m.value or b"" for m in records]
        out.append(
            (
                tp.topic,
                tp.partition,
                [m.offset for m in records],
                [m.timestamp for m in records],
                [m.key for m in records],
                values,
                headers,
                results,
            )
        )
    return out


class _Reader:
    def __init__(self, process: Any, conn: Connection) -> None:
        self.process = process
        self.conn = conn


class Readers:
    """`processes` reading processes of one sink (see the module's docstring)."""

    def __init__(
        self,
        processes: int,
        client: Mapping[str, Any],
        codecs: Mapping[bytes, AvroCodec],
        registry_url: str | None,
        renderer: Renderer,
        *,
        max_records: int,
        erasure_tombstones: bool = False,
        window: int = 2,
        lean: bool = False,
    ) -> None:
        check_renderer(renderer)
        self.processes = processes
        self.unpacker = Unpacker(codecs, erasure_tombstones=erasure_tombstones)
        self._job = _Job(
            dict(client), self.unpacker.schemas, registry_url, renderer, max_records, window, lean
        )
        self._readers: list[_Reader] = []
        self._next = 0  # the reader whose batch is taken first next time (each one in turn)
        self.epoch = 0
        self._unfetched: set[Part] = set()  # partitions not fetched yet under the current epoch
        self.dropped = 0  # batches of an older epoch dropped on arrival (read again)
        self.deaths = 0  # reading processes found dead, in all (monitoring, tests)
        self.max_deaths = MAX_DEATHS  # within death_window_s: then the sink's own process reads
        self.death_window_s = DEATH_WINDOW_S
        self._died_at: list[float] = []  # monotonic times of the deaths still counted
        self.clock = time.monotonic

    def start(self) -> None:
        """Spawn the processes now (they take about a second to start): before the first assignment."""
        if self._readers:
            return
        context = multiprocessing.get_context("spawn")
        for i in range(self.processes):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_main, args=(theirs, os.getpid(), self._job), name=f"gp-sink-reader-{i}", daemon=True
            )
            process.start()
            theirs.close()
            self._readers.append(_Reader(process, ours))
        log.info("reading, decoding and rendering in %d process(es)", self.processes)

    def pids(self) -> list[int]:
        return [r.process.pid for r in self._readers]

    def assign(self, starts: Mapping[Part, int]) -> None:
        """A new epoch: the partitions shared out (each reader in turn, in order), each read from its
        offset; what was read before is dropped when it arrives."""
        self.start()
        self.epoch += 1
        self._unfetched = set(starts)
        shares: list[list[tuple[str, int, int]]] = [[] for _ in self._readers]
        for i, (topic, partition) in enumerate(sorted(starts)):
            shares[i % len(shares)].append((topic, partition, int(starts[(topic, partition)])))
        try:
            for reader, share in zip(self._readers, shares, strict=True):
                reader.conn.send(("assign", self.epoch, share))
        except (BrokenPipeError, EOFError, OSError) as exc:
            raise ReaderDied from exc

    def take(self, timeout_s: float) -> Taken | None:
        """The next batch of the current epoch (from each reader in turn), None after `timeout_s`
        without one; ReaderDied when a process is gone."""
        readers = self._readers[self._next :] + self._readers[: self._next]
        by_conn = {r.conn: r for r in readers}
        sentinels = {r.process.sentinel: r for r in readers}
        deadline = time.monotonic() + timeout_s
        while True:
            ready = wait([*by_conn, *sentinels], max(0.0, deadline - time.monotonic()))
            if not ready:
                return None
            for ready_one in ready:
                if ready_one in sentinels and not sentinels[ready_one].conn.poll():
                    raise ReaderDied
            conns = [c for c in ready if c in by_conn]
            if not conns:
                continue
            reader = by_conn[conns[0]]
            try:
                data = reader.conn.recv_bytes()
            except (EOFError, OSError) as exc:
                raise ReaderDied from exc
            with no_collection():  # the batch's many new containers: freed with it, no cycles
                message = ForkingPickler.loads(data)
            del data
            _, epoch, packed, positions, highwater = message
            if epoch != self.epoch:
                self.dropped += 1
                continue
            self._next = (self._readers.index(reader) + 1) % len(self._readers)
            self._unfetched -= highwater.keys()
            try:
                reader.conn.send(("more",))
            except (BrokenPipeError, OSError) as exc:
                raise ReaderDied from exc
            with no_collection():
                envelopes, results = _unpack(packed, self._job.lean)
                decoded = self.unpacker.decoded(envelopes, results)
            return Taken(envelopes, decoded, positions, highwater, epoch)

    def settled(self) -> bool:
        """Every partition of the current assignment was fetched at least once (its high watermark
        came back): until then, a wait without a batch does not mean there is nothing to read (the
        processes start, connect, fetch)."""
        return bool(self._readers) and not self._unfetched

    def died(self) -> None:
        """A process is gone: every process is stopped (the next `assign` starts new ones)."""
        self.deaths += 1
        self._died_at.append(self.clock())
        log.warning("a reading process died; its records are read again")
        self.close()

    def recent_deaths(self) -> int:
        """The deaths of the last `death_window_s` (a death exactly that old no longer counts)."""
        since = self.clock() - self.death_window_s
        self._died_at = [t for t in self._died_at if t > since]
        return len(self._died_at)

    def exhausted(self) -> bool:
        """`max_deaths` deaths within `death_window_s`: the sink's process should read itself. A few
        OOM kills over weeks do not end a long-running sink's reading processes for good."""
        return self.recent_deaths() >= self.max_deaths

    def close(self) -> None:
        readers, self._readers = self._readers, []
        for r in readers:
            with contextlib.suppress(BrokenPipeError, OSError):
                r.conn.send(("stop",))
            # closed: a process blocked sending a batch nobody takes gets BrokenPipeError and ends
            r.conn.close()
        for r in readers:
            r.process.join(5)
            if r.process.is_alive():
                r.process.kill()
                r.process.join(5)
            with contextlib.suppress(ValueError):  # still running after a kill: left to the OS
                r.process.close()


def _unpack(packed: Sequence[tuple[Any, ...]], lean: bool = False) -> tuple[list[Envelope], list[Any]]:
    """The envelopes and rendering results of a batch (`_pack`); `lean`: those whose value was not
    sent are partial (their value and headers stayed in the reading process)."""
    envelopes: list[Envelope] = []
    results: list[Any] = []
    for topic, partition, offsets, stamps, keys, values, headers, rendered in packed:
        if lean:  # a value not sent (None): a partial envelope
            envelopes += [
                Envelope(b"" if v is None else v, k, h, topic, partition, o, t, None, v is None)
                for o, t, k, v, h in zip(offsets, stamps, keys, values, headers, strict=True)
            ]
        else:
            envelopes += [  # positional: a fifth cheaper than by keyword, thousands a batch
                Envelope(v, k, h, topic, partition, o, t)
                for o, t, k, v, h in zip(offsets, stamps, keys, values, headers, strict=True)
            ]
        results += rendered
    return envelopes, results
