"""Topic declarations: names, partitions, replication and cleanup policy, created idempotently.

| topic                         | cleanup | why                                                   |
|-------------------------------|---------|-------------------------------------------------------|
| {prefix}.raw.{format}.{source}     | delete | raw inputs of one source, kept for replay (7 days) |
| {prefix}.raw.{format}.{source}.dlq | delete | dead letters, kept longer (30 days) for operators  |
| {prefix}.canonical.demande    | compact | the latest fr.gp.Demande per numéro unique            |
| {prefix}.canonical.decision   | delete  | fr.gp.Decision events (every event matters)           |

Other flows (route, egress) declare their own topics with `TopicSpec` and `ensure_topics`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import RetriableError
from gateway.kafka_config import as_client_kwargs, bootstrap_of
from gateway.settings import GatewaySettings
from gateway.topics import canonical_topic, dlq_topic, retention_topic

__all__ = ["TopicSpec", "ensure_topics", "ingest_topics", "receipts_topic"]

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int
    cleanup_policy: str = "delete"  # "delete" | "compact" | "compact,delete"
    configs: dict[str, str] = field(default_factory=dict)

    def all_configs(self) -> dict[str, str]:
        return {"cleanup.policy": self.cleanup_policy, **self.configs}


def ingest_topics(settings: GatewaySettings, raw_topics: Iterable[str] | None = None) -> list[TopicSpec]:
    """The topics the ingest flow reads and writes: the raw topics (by default those of the sources
    the actors file of `settings.policy_file` declares), their dead-letter topics, the canonical ones."""
    p, r, prefix = settings.partitions, settings.replication_factor, settings.topic_prefix
    if raw_topics is None:
        from gateway.flows.ingest import raw_topics as declared  # noqa: PLC0415 - ingest imports admin
        from gateway.policy.model import load_policy  # noqa: PLC0415

        raw_topics = declared(load_policy(settings.policy_file), prefix)
    specs: list[TopicSpec] = []
    for raw in raw_topics:
        specs.append(TopicSpec(raw, p, r, "delete", {"retention.ms": str(7 * DAY_MS)}))
        specs.append(TopicSpec(dlq_topic(raw), p, r, "delete", {"retention.ms": str(30 * DAY_MS)}))
    specs.append(
        TopicSpec(
            canonical_topic("demande", prefix),
            p,
            r,
            "compact",
            {"min.compaction.lag.ms": str(3600 * 1000), "segment.ms": str(DAY_MS)},
        )
    )
    specs.append(TopicSpec(canonical_topic("decision", prefix), p, r, "delete", {"retention.ms": "-1"}))
    return specs


def receipts_topic(settings: GatewaySettings) -> TopicSpec:
    """The erasure receipts topic (gateway.retention.protocol), keyed by numéro unique: declared by
    every flow that writes a receipt, so that it exists whichever flow starts first; bounded
    retention (a receipt names an erased application)."""
    p, r, prefix = settings.partitions, settings.replication_factor, settings.topic_prefix
    return TopicSpec(retention_topic("receipts", prefix), p, r, "delete", {"retention.ms": str(30 * DAY_MS)})


def ensure_topics(
    bootstrap: str | Mapping[str, Any], specs: Iterable[TopicSpec], *, timeout_s: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet (existing ones are left as they are).
    `bootstrap`: kafka-python kwargs (`gateway.kafka_config.client_kwargs`), or a bootstrap string
    reached with this process's security settings.

    Returns the names created. Raises RetriableError when the broker does not answer."""
    from kafka import KafkaAdminClient  # noqa: PLC0415 - heavy import, only at the edge
    from kafka.admin import NewTopic  # noqa: PLC0415
    from kafka.errors import KafkaError, TopicAlreadyExistsError  # noqa: PLC0415

    wanted = list(specs)
    try:
        client = KafkaAdminClient(**as_client_kwargs(bootstrap), client_id="gp-gateway-admin")
    except KafkaError as exc:
        where = bootstrap_of(bootstrap)
        raise RetriableError(f"Kafka admin unreachable at {where}: {type(exc).__name__}") from exc
    created: list[str] = []
    try:
        existing = set(client.list_topics())
        for spec in wanted:
            if spec.name in existing:
                continue
            with contextlib.suppress(TopicAlreadyExistsError):
                client.create_topics(
                    [NewTopic(spec.name, spec.partitions, spec.replication, topic_configs=spec.all_configs())]
                )
                created.append(spec.name)
        deadline = time.monotonic() + timeout_s
        names = {s.name for s in wanted}
        while time.monotonic() < deadline and not names <= set(client.list_topics()):
            time.sleep(0.2)
    except KafkaError as exc:
        where = bootstrap_of(bootstrap)
        raise RetriableError(f"cannot create topics on {where}: {type(exc).__name__}") from exc
    finally:
        client.close()
    return created
