"""`gateway dlq list|show|replay`: inspect and re-inject dead letters.

`show` prints the error headers and the problem list of each dead letter, never its payload unless
`--payload` is given explicitly (it may hold personal data).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import click

from gateway.flows.dlq import original_topic, replay_headers
from gateway.model.deadletter import ERR, problems_from_headers
from gateway.settings import GatewaySettings
from gateway.topics import DLQ_SUFFIX

__all__ = ["dlq"]


def _consumer(bootstrap: str) -> Any:
    from kafka import KafkaConsumer  # noqa: PLC0415 - heavy import

    return KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        consumer_timeout_ms=1500,
    )


def _records(bootstrap: str, topic: str, partition: int | None, offset: int | None) -> Iterator[Any]:
    from kafka import TopicPartition  # noqa: PLC0415

    consumer = _consumer(bootstrap)
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            raise click.ClickException(f"no topic {topic}")
        tps = [TopicPartition(topic, p) for p in sorted(parts) if partition is None or p == partition]
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        for tp in tps:
            if offset is not None:
                consumer.seek(tp, offset)
            else:
                consumer.seek_to_beginning(tp)
        single = offset is not None and partition is not None
        idle = 0
        while idle < 3 and not all(consumer.position(tp) >= ends[tp] for tp in tps):
            batch = consumer.poll(timeout_ms=1000)
            idle = 0 if batch else idle + 1
            for records in batch.values():
                for r in records:
                    if not single or r.offset == offset:
                        yield r
            if single and batch:
                break
    finally:
        consumer.close()


@click.group("dlq")
def dlq() -> None:
    """Dead-letter topics (<raw topic>.dlq)."""


@dlq.command("list")
def list_() -> None:
    """Dead-letter topics of this gateway (topic prefix) and how many dead letters each holds
    (committed records: transaction markers and aborted records are not dead letters)."""
    from gateway.monitoring.lag import count_committed_records  # noqa: PLC0415

    settings = GatewaySettings()
    consumer = _consumer(settings.bootstrap_servers)
    try:
        names = sorted(
            t
            for t in consumer.topics()
            if t.endswith(DLQ_SUFFIX) and t.startswith(settings.topic_prefix + ".")
        )
        if not names:
            click.echo(f"no dead-letter topic with prefix {settings.topic_prefix!r}")
        for name, count in count_committed_records(consumer, names).items():
            click.echo(f"{name:40} {count:8d}")
    finally:
        consumer.close()


@dlq.command("show")
@click.argument("topic")
@click.option("--partition", type=int, help="Only this partition.")
@click.option("--offset", type=int, help="Start at this offset (with --partition: only this record).")
@click.option("--limit", default=20, show_default=True, help="At most this many records.")
@click.option("--payload", is_flag=True, help="Also print the payload (may hold personal data).")
def show(topic: str, partition: int | None, offset: int | None, limit: int, payload: bool) -> None:
    """Headers and problems of dead letters."""
    settings = GatewaySettings()
    for n, r in enumerate(_records(settings.bootstrap_servers, topic, partition, offset)):
        if n >= limit:
            click.echo(f"... (--limit {limit})")
            break
        headers = [(k, v or b"") for k, v in (r.headers or [])]  # Kafka header values may be null
        click.echo(f"{r.topic} partition {r.partition} offset {r.offset} ({len(r.value or b'')} bytes)")
        for k, v in headers:
            if k.startswith(ERR) or k in ("gp.errors.attempts", "gp.errors.time", "gp.errors.locator"):
                click.echo(f"  {k.removeprefix(ERR)}: {v.decode(errors='replace')}")
        for p in problems_from_headers(headers):
            click.echo(f"  problem {p.path}: {p.reason}" + (f" ({p.value})" if p.value else ""))
        if payload:
            click.echo(
                "  payload: " + json.dumps((r.value or b"").decode(errors="replace"), ensure_ascii=False)
            )


@dlq.command("replay")
@click.argument("topic")
@click.option("--partition", type=int, help="Only this partition.")
@click.option("--offset", type=int, help="Only this offset (needs --partition).")
@click.option("--all", "all_", is_flag=True, help="Replay every dead letter of the topic.")
def replay(topic: str, partition: int | None, offset: int | None, all_: bool) -> None:
    """Re-inject dead letters into their original topic (after fixing the source or the gateway)."""
    if not all_ and (partition is None or offset is None):
        raise click.UsageError("give --partition and --offset, or --all")
    from kafka import KafkaProducer  # noqa: PLC0415

    settings = GatewaySettings()
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    count = 0
    try:
        for r in _records(settings.bootstrap_servers, topic, partition, offset):
            headers = list(r.headers or [])
            target = original_topic(topic, headers)
            producer.send(
                target, key=r.key, value=r.value, headers=list(replay_headers(headers, topic, r.offset))
            )
            count += 1
        producer.flush()
    finally:
        producer.close()
    click.echo(f"replayed {count} record(s) from {topic}")
