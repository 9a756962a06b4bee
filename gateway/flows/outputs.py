"""A sink's outputs published to Kafka (feedback topics, dead letters): what the sink runtime
publishes before it commits the batch that gave them (gateway.flows.egress)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gateway.codec.avro import SINGLE_OBJECT_MAGIC
from gateway.codec.framing import Framer
from gateway.connectors import SinkOutput

__all__ = ["OutputPublisher"]


class OutputPublisher:
    """Sends outputs and waits until the broker acknowledged every one (`publish`). Outputs may name
    topics that do not exist yet (feedback per organisation): they are created first
    (`create_topics`, else 30-day topics of `layout` = (partitions, replication)). With a schema
    registry, Avro values go out in the Confluent wire format."""

    def __init__(
        self,
        producer: Any,
        framer: Framer,
        *,
        bootstrap: str,
        timeout_s: float,
        layout: tuple[int, int] = (1, 1),
        create_topics: Callable[[set[str]], None] | None = None,
    ) -> None:
        self.producer = producer
        self.framer = framer
        self._bootstrap = bootstrap
        self._timeout_s = timeout_s
        self._layout = layout
        self._create_topics = create_topics
        self._known: set[str] = set()

    def _ensure(self, topics: set[str]) -> None:
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

    def publish(self, records: Sequence[SinkOutput]) -> None:
        if not records:
            return
        self._ensure({r.topic for r in records})
        futures = [
            self.producer.send(
                r.topic, key=r.key, value=self._value(r.topic, r.value), headers=list(r.headers)
            )
            for r in records
        ]
        self.producer.flush(timeout=self._timeout_s)
        for f in futures:
            f.get(timeout=self._timeout_s)
