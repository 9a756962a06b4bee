"""Lag as a read_committed consumer sees it (gateway/monitoring/lag.py) on a real broker: committed
transactions count, aborted records and commit markers do not, and every partition of a request is
read at once with the same counts as one partition at a time."""

from __future__ import annotations

import uuid

import pytest
from gateway.monitoring.lag import committed_lag, count_committed_records, deliverable, deliverable_between
from gateway.testing.kafka import client_kwargs, create_topics, end_offsets
from kafka import KafkaConsumer, KafkaProducer

pytestmark = pytest.mark.integration


def _transaction(producer: KafkaProducer, topic: str, parts: dict[int, int], *, commit: bool) -> None:
    producer.begin_transaction()
    for partition, n in parts.items():
        for i in range(n):
            producer.send(topic, key=f"k{i}".encode(), value=b"v", partition=partition)
    producer.flush()
    if commit:
        producer.commit_transaction()
    else:
        producer.abort_transaction()


def test_committed_records_count_and_markers_and_aborted_records_do_not(kafka_bootstrap: str) -> None:
    topic = f"lag-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, [topic], partitions=3)
    producer = KafkaProducer(**client_kwargs(kafka_bootstrap), transactional_id=f"lag-{uuid.uuid4().hex[:6]}")
    try:
        producer.init_transactions()
        _transaction(producer, topic, {0: 3, 1: 2}, commit=True)
        _transaction(producer, topic, {1: 4, 2: 5}, commit=False)
        _transaction(producer, topic, {2: 1}, commit=True)
    finally:
        producer.close()
    ends = end_offsets(kafka_bootstrap, topic)
    assert ends == {0: 4, 1: 8, 2: 8}  # records plus one marker a transaction a partition
    reader = KafkaConsumer(**client_kwargs(kafka_bootstrap), isolation_level="read_committed")
    try:
        whole = {(topic, p): (0, end) for p, end in ends.items()}
        expected = {(topic, 0): 3, (topic, 1): 2, (topic, 2): 1}
        assert deliverable(whole, reader) == expected
        assert {k: deliverable_between(reader, topic, k[1], 0, e) for k, (_, e) in whole.items()} == expected
        assert count_committed_records(reader, [topic]) == {topic: 6}
        # a group that committed past the first transaction of partition 0 and 1 (markers included)
        assert committed_lag(reader, {(topic, 0): 4, (topic, 1): 3, (topic, 2): 0}) == {
            (topic, 0): 0,
            (topic, 1): 0,  # only aborted records and markers are left
            (topic, 2): 1,
        }
    finally:
        reader.close()
