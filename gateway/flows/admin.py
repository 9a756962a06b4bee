"""Topic declarations: names, partitions, replication, cleanup policy and retention, created
idempotently and, with `reconcile=True` (`gateway run`), brought to the declared settings.

Every topic the gateway creates has explicit retention settings; docs/retention.md gives the table
and the reason of each. Topics keyed by numéro unique are compacted (`keyed_configs`): an erasure
is a tombstone per numéro unique (gateway/retention/protocol.py) and compaction drops every earlier
record of the key, `min.compaction.lag.ms` = 7 days keeps each event whole for a week (a reader
that reads weekly sees every event) and `delete.retention.ms` = 7 days keeps the tombstone itself
a week (that reader sees the erasure too). Other topics are deleted by time.

| topic                         | cleanup | why                                                   |
|-------------------------------|---------|-------------------------------------------------------|
| {prefix}.raw.{format}.{source}     | delete | raw inputs of one source, kept for replay (7 days) |
| {prefix}.raw.{format}.{source}.dlq | delete | dead letters, kept longer (30 days) for operators  |
| {prefix}.canonical.demande    | compact | the latest fr.gp.Demande per numéro unique            |
| {prefix}.canonical.decision   | compact | fr.gp.Decision events (whole for 7 days, then the latest) |

Other flows (route, signals, cotation, retention) declare their own topics with `TopicSpec`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import RetriableError
from gateway.kafka_config import as_client_kwargs, bootstrap_of
from gateway.settings import GatewaySettings
from gateway.topics import canonical_topic, dlq_topic, retention_topic

__all__ = [
    "DAY_MS",
    "TopicSpec",
    "ensure_topics",
    "ingest_topics",
    "keyed_configs",
    "receipts_topic",
    "reconcile_configs",
]

_log = logging.getLogger(__name__)
DAY_MS = 24 * 3600 * 1000


def keyed_configs(**more: str) -> dict[str, str]:
    """Settings of a compacted topic keyed by numéro unique (see the module docstring)."""
    return {
        "min.compaction.lag.ms": str(7 * DAY_MS),
        "delete.retention.ms": str(7 * DAY_MS),
        "segment.ms": str(DAY_MS),
        **more,
    }


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
    specs.append(TopicSpec(canonical_topic("demande", prefix), p, r, "compact", keyed_configs()))
    specs.append(TopicSpec(canonical_topic("decision", prefix), p, r, "compact", keyed_configs()))
    return specs


def receipts_topic(settings: GatewaySettings) -> TopicSpec:
    """The erasure receipts topic (gateway.retention.protocol), keyed by numéro unique: declared by
    every flow that writes a receipt, so that it exists whichever flow starts first; bounded
    retention (a receipt names an erased application)."""
    p, r, prefix = settings.partitions, settings.replication_factor, settings.topic_prefix
    return TopicSpec(retention_topic("receipts", prefix), p, r, "delete", {"retention.ms": str(30 * DAY_MS)})


def ensure_topics(
    bootstrap: str | Mapping[str, Any],
    specs: Iterable[TopicSpec],
    *,
    timeout_s: float = 30.0,
    reconcile: bool = False,
    request_timeout_s: float | None = None,
) -> list[str]:
    """Create the topics that do not exist yet; with `reconcile`, also bring the configs of the
    existing ones to the declared values (`reconcile_configs`: the declarations are authoritative,
    as those of `gateway run`); otherwise existing topics are left as they are.
    `bootstrap`: kafka-python kwargs (`gateway.kafka_config.client_kwargs`), or a bootstrap string
    reached with this process's security settings.

    Returns the names created. Raises RetriableError when the broker does not answer (within
    `request_timeout_s` per request, reaching the broker included; kafka-python's 30 s when None)."""
    from kafka import KafkaAdminClient  # noqa: PLC0415 - heavy import, only at the edge
    from kafka.admin import NewTopic  # noqa: PLC0415
    from kafka.errors import KafkaError, TopicAlreadyExistsError  # noqa: PLC0415

    wanted = list(specs)
    try:
        timeouts = {}
        if request_timeout_s is not None:
            ms = max(1, int(request_timeout_s * 1000))
            timeouts = {"bootstrap_timeout_ms": ms, "request_timeout_ms": ms}
        client = KafkaAdminClient(**as_client_kwargs(bootstrap), **timeouts, client_id="gp-gateway-admin")
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
        if reconcile:
            try:
                reconcile_configs(client, [s for s in wanted if s.name in existing])
            except KafkaError as exc:  # e.g. no DESCRIBE_CONFIGS: the topics work, with their old settings
                _log.warning("topic configs not reconciled: %s", type(exc).__name__)
    except KafkaError as exc:
        where = bootstrap_of(bootstrap)
        raise RetriableError(f"cannot create topics on {where}: {type(exc).__name__}") from exc
    finally:
        client.close()
    return created


def reconcile_configs(
    client: Any, specs: Iterable[TopicSpec]
) -> dict[str, dict[str, tuple[str | None, str]]]:
    """Set, with one IncrementalAlterConfigs (kafka-python `alter_configs(incremental=True)`, SET
    operations only: configs not declared are left as they are), every declared config of an
    existing topic whose value differs; log each change (topic, config, old -> new). `client`: a
    KafkaAdminClient. Returns {topic: {config: (old, new)}} of what was changed; a refused change
    (no ALTER_CONFIGS right, a value the broker refuses) is logged and left for the next start."""
    from kafka.admin import ConfigResource, ConfigResourceType  # noqa: PLC0415

    declared: dict[str, dict[str, str]] = {}
    for spec in specs:
        declared.setdefault(spec.name, {}).update(spec.all_configs())
    if not declared:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in sorted(declared)]
    described = client.describe_configs(resources, config_filter="all").get("topic", {})
    changes: dict[str, dict[str, tuple[str | None, str]]] = {}
    for name, wanted in declared.items():
        current = described.get(name, {})
        diff = {
            k: ((current.get(k) or {}).get("value"), v)
            for k, v in wanted.items()
            if (current.get(k) or {}).get("value") != v
        }
        if diff:
            changes[name] = diff
    if not changes:
        return {}
    alter = [
        ConfigResource(ConfigResourceType.TOPIC, name, {k: ("SET", new) for k, (_, new) in diff.items()})
        for name, diff in sorted(changes.items())
    ]
    results = client.alter_configs(alter, incremental=True).get("topic", {})
    done: dict[str, dict[str, tuple[str | None, str]]] = {}
    for name, diff in sorted(changes.items()):
        result = results.get(name, "OK")
        what = ", ".join(f"{k} {old} -> {new}" for k, (old, new) in sorted(diff.items()))
        if result == "OK":
            _log.info("topic %s reconciled: %s", name, what)
            done[name] = diff
        else:
            _log.warning("topic %s: configs not changed (%s): %s", name, str(result).split(":")[0], what)
    return done
