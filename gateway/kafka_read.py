"""Reading a topic from its beginning to its end, once: the one loop behind `gateway audit`,
`gateway policy test --from-topic`, `gateway retention plan` and the test kit's erasure scans.

`read_to_end(kwargs, topic)` yields every record (kafka-python ConsumerRecord) of `topic`, partition
by partition in offset order, up to the end offsets the partitions had when it started. It needs no
consumer group (assign, not subscribe). A compacted partition may end in a gap (its last offsets
removed, or transaction markers): a partition counts as read as soon as the consumer's position
reaches its end offset, not only when a record at the end is seen. No progress for `timeout_s`:
RetriableError naming the topic and the partitions left (never a record's content).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from gateway.errors import RetriableError

__all__ = ["read_to_end"]

Isolation = Literal["read_committed", "read_uncommitted"]


def read_to_end(
    kwargs: Mapping[str, Any],
    topic: str | Sequence[str],
    *,
    isolation: Isolation = "read_committed",
    timeout_s: float = 30.0,
    what: str = "topic",
    consumer_options: Mapping[str, Any] | None = None,
) -> Iterator[Any]:
    """Every record of `topic` (or of each topic of a sequence, in turn, through one consumer) from
    its beginning to its end offsets (see the module's doc). `kwargs`: the client's connection
    settings (gateway.kafka_config); `what` names the topic in errors ("audit topic", "clock
    changelog"); `consumer_options`: e.g. larger fetch sizes."""
    from kafka import KafkaConsumer  # noqa: PLC0415 - heavy, only at the edge
    from kafka.errors import KafkaError  # noqa: PLC0415

    where = kwargs.get("bootstrap_servers", "")
    try:
        consumer = KafkaConsumer(
            **kwargs,
            group_id=None,
            enable_auto_commit=False,
            isolation_level=isolation,
            **{"request_timeout_ms": int(timeout_s * 1000) + 5000, **(consumer_options or {})},
        )
    except KafkaError as exc:
        raise RetriableError(f"Kafka unreachable at {where}: {type(exc).__name__}") from exc
    try:
        for name in [topic] if isinstance(topic, str) else topic:
            yield from _one(consumer, name, timeout_s, what)
    finally:
        consumer.close()


def _one(consumer: Any, topic: str, timeout_s: float, what: str) -> Iterator[Any]:
    from kafka import TopicPartition  # noqa: PLC0415

    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    if not parts:
        return
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    end = consumer.end_offsets(parts)
    pending = {tp for tp in parts if consumer.position(tp) < end[tp]}
    while pending:
        batch = consumer.poll(timeout_ms=int(timeout_s * 1000))
        for tp, records in batch.items():
            for r in records:
                if r.offset < end[tp]:
                    yield r
        # a partition is read once its position reaches the end (a compacted tail is a gap)
        pending = {tp for tp in pending if consumer.position(tp) < end[tp]}
        if pending and not batch:
            left = ", ".join(str(tp.partition) for tp in sorted(pending))
            raise RetriableError(
                f"{what} {topic}: no progress within {timeout_s:.0f}s (partitions {left} not read to the end)"
            )
