"""Consumer lag as an operator means it: the records a `read_committed` consumer of the group would
still receive. Transaction markers and aborted records occupy offsets but are never delivered, so
`end offset - committed offset` over-counts on every transactional topic (one marker per committed
transaction). Where that difference is small, the records are counted by reading them; above
`count_limit` the difference is reported as it is (markers are then a negligible share).

Only groups that commit offsets have a lag: a partition with no committed offset is not reported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = [
    "COUNT_LIMIT",
    "DeliverableLag",
    "committed_lag",
    "count_committed_records",
    "deliverable",
    "deliverable_between",
]

COUNT_LIMIT = 5000


def deliverable_between(
    consumer: Any, topic: str, partition: int, start: int, end: int, *, timeout_ms: int = 3000
) -> int:
    """Records a read_committed consumer receives from offset `start` (included) to `end` (excluded).

    `consumer` is a kafka-python KafkaConsumer built with isolation_level="read_committed" and no
    group; it is re-assigned to the one partition."""
    return deliverable({(topic, partition): (start, end)}, consumer, timeout_ms=timeout_ms)[
        (topic, partition)
    ]


def deliverable(
    ranges: Mapping[tuple[str, int], tuple[int, int]], consumer: Any, *, timeout_ms: int = 3000
) -> dict[tuple[str, int], int]:
    """(topic, partition) -> records a read_committed consumer receives in [start, end) of it, every
    partition read at once (one poll loop for all, not one wait each). `consumer`: as for
    deliverable_between, re-assigned to the partitions with something to read."""
    from kafka import TopicPartition  # noqa: PLC0415 - heavy import, only at the edge

    out = dict.fromkeys(ranges, 0)
    todo = {TopicPartition(t, p): (start, end) for (t, p), (start, end) in ranges.items() if end > start}
    if not todo:
        return out
    consumer.assign(list(todo))
    for tp, (start, _) in todo.items():
        consumer.seek(tp, start)
    # short polls: a fetch of markers only moves the position to `end` without returning a record,
    # and a poll waits its whole timeout for records: one long poll would wait for nothing. Gives up
    # after `timeout_ms` without a record (the broker is slow or away).
    idle_until = time.monotonic() + timeout_ms / 1000
    pending = set(todo)
    while pending and time.monotonic() < idle_until:
        batch = consumer.poll(timeout_ms=min(50, timeout_ms), max_records=2000)
        if batch:
            idle_until = time.monotonic() + timeout_ms / 1000
        for tp, records in batch.items():
            end = todo[tp][1]
            out[(tp.topic, tp.partition)] += sum(1 for r in records if r.offset < end)
        pending = {tp for tp in pending if consumer.position(tp) < todo[tp][1]}
    return out


def committed_lag(
    consumer: Any,
    committed: Mapping[tuple[str, int], int],
    *,
    count_limit: int = COUNT_LIMIT,
) -> dict[tuple[str, int], int]:
    """(topic, partition) -> records still to deliver, for the partitions in `committed`.

    `consumer`: a read_committed kafka-python consumer without group (its end offsets are the last
    stable offsets)."""
    from kafka import TopicPartition  # noqa: PLC0415

    tps = [TopicPartition(t, p) for t, p in committed]
    if not tps:
        return {}
    ends = consumer.end_offsets(tps)
    out: dict[tuple[str, int], int] = {}
    counted: dict[tuple[str, int], tuple[int, int]] = {}
    for tp in tps:
        done = committed[(tp.topic, tp.partition)]
        end = int(ends.get(tp) or 0)
        gap = end - done
        if gap <= 0:
            out[(tp.topic, tp.partition)] = 0
        elif gap <= count_limit:
            counted[(tp.topic, tp.partition)] = (done, end)
        else:
            out[(tp.topic, tp.partition)] = gap
    return {**out, **deliverable(counted, consumer)}


def count_committed_records(consumer: Any, topics: Iterable[str]) -> dict[str, int]:
    """topic -> committed records it holds (markers and aborted records excluded)."""
    from kafka import TopicPartition  # noqa: PLC0415

    out: dict[str, int] = {}
    for topic in topics:
        parts = sorted(consumer.partitions_for_topic(topic) or ())
        tps = [TopicPartition(topic, p) for p in parts]
        if not tps:
            out[topic] = 0
            continue
        begins, ends = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
        ranges = {(topic, tp.partition): (int(begins[tp]), int(ends[tp])) for tp in tps}
        out[topic] = sum(deliverable(ranges, consumer).values())
    return out


class DeliverableLag:
    """A lag source for `Metrics`: `offsets()` gives (committed, end) per partition of a group that
    commits; small gaps are counted by reading them with a read_committed consumer of its own (made
    on first use, reused, results cached until the offsets move), so an idle transactional group
    shows 0, not one per partition. Call it from a thread: it may talk to the broker."""

    def __init__(
        self,
        offsets: Callable[[], Mapping[tuple[str, int], tuple[int, int]]],
        make_consumer: Callable[[], Any],
        *,
        count_limit: int = COUNT_LIMIT,
    ) -> None:
        self._offsets = offsets
        self._make_consumer = make_consumer
        self._consumer: Any = None
        self._limit = count_limit
        self._cache: dict[tuple[str, int], tuple[int, int, int]] = {}
        self._lock = threading.Lock()

    def __call__(self) -> dict[tuple[str, int], int]:
        out: dict[tuple[str, int], int] = {}
        with self._lock:
            for key, (done, end) in self._offsets().items():
                gap = end - done
                if gap <= 0 or gap > self._limit:
                    out[key] = max(gap, 0)
                    continue
                cached = self._cache.get(key)
                if cached is not None and cached[:2] == (done, end):
                    out[key] = cached[2]
                    continue
                if self._consumer is None:
                    self._consumer = self._make_consumer()
                count = deliverable_between(self._consumer, key[0], key[1], done, end)
                self._cache[key] = (done, end, count)
                out[key] = count
        return out

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
