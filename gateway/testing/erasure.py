"""Test kit of the retention tests: make the broker compact now, and scan every readable byte.

The broker's clock does not move with the gateway's injected clock, so a test cannot wait a year
for time-based rules; it makes compaction happen now instead:
- `force_compaction` sets, on each compacted topic, the configs that make every closed segment
  cleanable at once (`min.compaction.lag.ms=0`, `max.compaction.lag.ms` small, a tiny dirty ratio,
  a short `segment.ms`), appends a roll record without nominative content so that the segment
  holding the application's records is closed, and waits for the cleaner (its back-off is 5 s on
  the test kit's broker), or, given the markers that must go, until none is readable any more;
- `scan_topics` reads every record of every given topic from its log start, **read_uncommitted**
  (aborted transactional records included: they are readable bytes too), and counts the records
  whose key, value or headers contain a marker.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from gateway.kafka_read import read_to_end
from gateway.testing.kafka import admin, client_kwargs

__all__ = ["ROLL_KEY", "compacted_topics", "force_compaction", "scan_files", "scan_topics", "topics_of"]

ROLL_KEY = b"__retention-test-roll__"
_FORCE = {
    "min.compaction.lag.ms": "0",
    "max.compaction.lag.ms": "1000",
    "min.cleanable.dirty.ratio": "0.0001",
    "segment.ms": "100",
    "delete.retention.ms": "100",
}


def topics_of(bootstrap: str, prefixes: Sequence[str]) -> list[str]:
    """Every topic whose name starts with one of `prefixes` (the gateway's prefix, its app id)."""
    client = admin(bootstrap)
    try:
        return sorted(t for t in client.list_topics() if t.startswith(tuple(prefixes)))
    finally:
        client.close()


def compacted_topics(bootstrap: str, topics: Sequence[str]) -> list[str]:
    """The topics of `topics` whose cleanup.policy includes compact."""
    client = admin(bootstrap)
    try:
        wanted = [
            ConfigResource(ConfigResourceType.TOPIC, t, configs={"cleanup.policy": None}) for t in topics
        ]
        described = client.describe_configs(wanted, config_filter="All")
        out: list[str] = []
        for by_name in described.values():
            for name, configs in by_name.items():
                entry = configs.get("cleanup.policy") or {}
                value = entry.get("value") if isinstance(entry, dict) else entry
                if "compact" in str(value or ""):
                    out.append(name)
        return sorted(out)
    finally:
        client.close()


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


def force_compaction(
    bootstrap: str, topics: Sequence[str], *, wait_s: float = 20.0, gone: Sequence[bytes] = ()
) -> None:
    """Make the broker compact `topics` now (see the module's doc); returns after `wait_s`, enough
    for two passes of the cleaner on the test kit's broker. With `gone` (markers of what compaction
    must remove): returns as soon as no record of `topics` holds one, or after 60 s at most (the
    caller's scan then fails)."""
    if not topics:
        return
    client = admin(bootstrap)
    try:
        client.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t, configs=dict(_FORCE)) for t in topics]
        )
    finally:
        client.close()
    time.sleep(0.5)  # older than segment.ms: the next append rolls the segment
    producer = KafkaProducer(**client_kwargs(bootstrap))
    consumer = KafkaConsumer(**client_kwargs(bootstrap), enable_auto_commit=False)
    try:
        for _round in range(2):  # the second roll closes the segment that got the first roll record
            for topic in topics:
                for tp in _partitions(consumer, topic):
                    producer.send(topic, key=ROLL_KEY, value=None, partition=tp.partition)
            producer.flush()
            time.sleep(0.5)
    finally:
        producer.close()
        consumer.close()
    if not gone:
        time.sleep(wait_s)
        return
    deadline = time.monotonic() + max(wait_s, 60.0)
    while scan_topics(bootstrap, topics, gone) and time.monotonic() < deadline:
        time.sleep(1.0)


def scan_topics(bootstrap: str, topics: Iterable[str], markers: Sequence[bytes]) -> dict[str, int]:
    """{topic: number of readable records (any isolation) holding one of `markers`} for the topics
    where there is at least one."""
    found: dict[str, int] = {}
    kwargs = client_kwargs(bootstrap)
    for r in read_to_end(
        kwargs, list(topics), isolation="read_uncommitted", timeout_s=60, what="scanned topic"
    ):
        blob = b"".join([r.key or b"", r.value or b"", *((v or b"") for _k, v in (r.headers or ()))])
        if any(m in blob for m in markers):
            found[r.topic] = found.get(r.topic, 0) + 1
    return found


def scan_files(roots: Iterable[Path], markers: Sequence[bytes]) -> dict[str, int]:
    """{path: occurrences} of `markers` in the bytes of every file under `roots` (databases, their
    write-ahead logs, sink folders)."""
    found: dict[str, int] = {}
    for root in roots:
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in paths:
            data = path.read_bytes()
            count = sum(data.count(m) for m in markers)
            if count:
                found[str(path)] = count
    return found


def counts(found: Mapping[str, int]) -> str:
    """A one-line summary of a scan, for assertion messages (names and counts, never a value)."""
    return ", ".join(f"{k}: {v}" for k, v in sorted(found.items())) or "none"
