"""What the console reads: the Prometheus text of the gateway's processes (the same numbers as
`/metrics`), consumer-group offsets and dead-letter headers from Kafka. Edges only: each function
returns plain data for the pure parts (history, groups, pages)."""

from __future__ import annotations

import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from gateway.errors import RetriableError
from gateway.flows.dlq import original_topic, replay_headers
from gateway.kafka_config import client_kwargs
from gateway.model.deadletter import ERR, problems_from_headers
from gateway.monitoring.lag import committed_lag
from gateway.settings import GatewaySettings
from gateway.topics import DLQ_SUFFIX

__all__ = [
    "DeadLetterSummary",
    "group_offsets",
    "read_dead_letters",
    "replay_topic",
    "scrape",
    "series_from_metrics",
]

# Families the console charts, by Prometheus family name (counters lose their _total suffix).
_CHARTED = ("gp_records_in", "gp_records_out", "gp_records_dead_lettered")


def scrape(urls: Iterable[str], timeout_s: float = 5.0) -> tuple[str, list[str]]:
    """The concatenated Prometheus text of every URL, and the URLs that did not answer."""
    texts, failed = [], []
    for url in urls:
        if not url.startswith(("http://", "https://")):
            failed.append(url)
            continue
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - http(s) only, checked above
                texts.append(resp.read().decode("utf-8", errors="replace"))
        except OSError:
            failed.append(url)
    return "\n".join(texts), failed


def series_from_metrics(text: str) -> dict[str, float]:
    """Series the console keeps, summed over processes: `in|out|dlq/<flow>/<source or topic>` and
    every `gp_sne_*` sample (`sne/<name>/<labels>`). Label values are the gateway's own and hold
    nothing personal (actor topics are labelled by role)."""
    out: dict[str, float] = {}

    def add(key: str, value: float) -> None:
        out[key] = out.get(key, 0.0) + value

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = s.labels
            if s.name == "gp_records_in_total":
                add(f"in/{labels.get('flow', '')}/{labels.get('source', '')}", s.value)
            elif s.name == "gp_records_out_total":
                add(f"out/{labels.get('flow', '')}/{labels.get('topic', '')}", s.value)
            elif s.name == "gp_records_dead_lettered_total":
                add(f"dlq/{labels.get('flow', '')}/{labels.get('source', '')}", s.value)
            elif s.name.startswith("gp_sne_") and not s.name.endswith("_created"):
                tail = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
                add(f"sne/{s.name}/{tail}", s.value)
    return out


def _admin(settings: GatewaySettings) -> Any:
    from kafka import KafkaAdminClient  # noqa: PLC0415 - heavy import, only at the edge

    return KafkaAdminClient(client_id="gp-console", **client_kwargs(settings))


def _reader(settings: GatewaySettings) -> Any:
    from kafka import KafkaConsumer  # noqa: PLC0415

    return KafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        client_id="gp-console",
        **client_kwargs(settings),
    )


def _ours(group: str, settings: GatewaySettings) -> bool:
    return group.startswith((settings.app_id, settings.topic_prefix + "."))


def group_offsets(settings: GatewaySettings) -> dict[str, tuple[int, int]]:
    """group -> (sum of committed offsets, lag in deliverable records), for the gateway's groups and
    its recipients' groups (names starting with the app id or the topic prefix)."""
    from kafka.errors import KafkaError  # noqa: PLC0415

    try:
        admin = _admin(settings)
    except KafkaError as exc:
        raise RetriableError(f"Kafka unreachable: {type(exc).__name__}") from exc
    reader = _reader(settings)
    out: dict[str, tuple[int, int]] = {}
    try:
        groups = sorted({str(g["group_id"]) for g in admin.list_groups()})
        ours = [g for g in groups if _ours(g, settings)]
        fetched = admin.list_group_offsets(dict.fromkeys(ours)) if ours else {}
        for group in ours:
            offsets = fetched.get(group) or {}
            committed = {
                (tp.topic, tp.partition): int(meta.offset)
                for tp, meta in offsets.items()
                if meta is not None and meta.offset is not None and meta.offset >= 0
            }
            if not committed:
                continue  # a group that does not commit has no lag to speak of
            lags = committed_lag(reader, committed)
            out[group] = (sum(committed.values()), sum(lags.values()))
    finally:
        reader.close()
        admin.close()
    return out


@dataclass
class DeadLetterSummary:
    topic: str
    count: int = 0
    classes: Counter[str] = field(default_factory=Counter)
    problems: Counter[tuple[str, str]] = field(default_factory=Counter)
    first: str | None = None
    last: str | None = None
    truncated: bool = False


def read_dead_letters(settings: GatewaySettings, *, per_topic_limit: int = 50_000) -> list[DeadLetterSummary]:
    """Every dead-letter topic of the prefix: counts, error classes, problems (path and reason, as the
    gateway writes them: never a value) and first / last time. Payloads are never read into the
    summary."""
    from kafka import TopicPartition  # noqa: PLC0415

    reader = _reader(settings)
    out: list[DeadLetterSummary] = []
    try:
        topics = sorted(
            t for t in reader.topics() if t.endswith(DLQ_SUFFIX) and t.startswith(settings.topic_prefix + ".")
        )
        for topic in topics:
            summary = DeadLetterSummary(topic)
            tps = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())]
            reader.assign(tps)
            ends = reader.end_offsets(tps)
            begins = reader.beginning_offsets(tps)
            for tp in tps:
                reader.seek(tp, max(int(begins[tp]), int(ends[tp]) - per_topic_limit))
                summary.truncated |= int(ends[tp]) - int(begins[tp]) > per_topic_limit
            for record in _until_end(reader, tps, ends):
                _add(summary, list(record.headers or []))
            out.append(summary)
    finally:
        reader.close()
    return out


def _until_end(reader: Any, tps: list[Any], ends: dict[Any, int]) -> Iterator[Any]:
    idle = 0
    while idle < 3 and any(reader.position(tp) < ends[tp] for tp in tps):
        batch = reader.poll(timeout_ms=500, max_records=2000)
        idle = 0 if batch else idle + 1
        for tp, records in batch.items():
            yield from (r for r in records if r.offset < ends[tp])


def _add(summary: DeadLetterSummary, headers: list[tuple[str, bytes | None]]) -> None:
    clean = [(k, v or b"") for k, v in headers]
    summary.count += 1
    values = dict(clean)
    cls = values.get(ERR + "exception.class.name", b"").decode(errors="replace").rsplit(".", 1)[-1]
    summary.classes[cls or "unknown"] += 1
    for p in problems_from_headers(clean):
        summary.problems[(p.path, p.reason)] += 1  # never p.value
    when = values.get("gp.errors.time", b"").decode(errors="replace")[:32] or None
    if when:
        summary.first = min(summary.first or when, when)
        summary.last = max(summary.last or when, when)


def replay_topic(settings: GatewaySettings, topic: str) -> int:
    """Re-inject every dead letter of `topic` into its original topic; the number replayed."""
    from kafka import KafkaProducer, TopicPartition  # noqa: PLC0415

    reader = _reader(settings)
    producer = KafkaProducer(acks="all", client_id="gp-console", **client_kwargs(settings))
    count = 0
    try:
        tps = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())]
        reader.assign(tps)
        reader.seek_to_beginning(*tps)
        ends = reader.end_offsets(tps)
        for r in _until_end(reader, tps, ends):
            headers = [(k, v or b"") for k, v in (r.headers or [])]
            producer.send(
                original_topic(topic, headers),
                key=r.key,
                value=r.value,
                headers=list(replay_headers(headers, topic, r.offset)),
            )
            count += 1
        producer.flush(timeout=30)
    finally:
        producer.close()
        reader.close()
    return count
