"""The original bytes and headers of records read again from their topic on the real broker
(gateway.flows.originals.read_originals): found by their coordinates, or None once Kafka removed
them (here by DeleteRecords, as retention or compaction would)."""

from __future__ import annotations

import uuid

from gateway.flows.originals import read_originals
from gateway.testing.kafka import admin, client_kwargs, create_topics, produce
from kafka import TopicPartition


def test_records_are_read_again_by_their_coordinates_and_a_removed_one_is_gone(kafka_bootstrap: str) -> None:
    topic = f"gp.originals.{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, [topic], partitions=2)
    sent = [(f"k{i}".encode(), f"value {i}".encode(), (("ce_id", f"id-{i}".encode()),)) for i in range(6)]
    produce(kafka_bootstrap, topic, sent)
    found_at = read_originals(client_kwargs(kafka_bootstrap), [(topic, p, 0) for p in (0, 1)], 30.0)
    by_value = {v[0]: (t, p, o) for (t, p, o), v in found_at.items() if v is not None}
    assert len(by_value) == 2  # each partition's first record
    # a partition's second record and later ones, then its first one removed from the log
    partition = 0
    ends = read_originals(client_kwargs(kafka_bootstrap), [(topic, partition, o) for o in (1, 2)], 30.0)
    client = admin(kafka_bootstrap)
    try:
        client.delete_records({TopicPartition(topic, partition): 1})
    finally:
        client.close()
    wanted = [(topic, partition, 0), (topic, partition, 1), (topic, partition, 2)]
    again = read_originals(client_kwargs(kafka_bootstrap), wanted, 30.0)
    assert again[(topic, partition, 0)] is None  # gone: before the log's start now
    assert again[(topic, partition, 1)] == ends[(topic, partition, 1)]
    assert again[(topic, partition, 2)] == ends[(topic, partition, 2)]
    value, headers = again[(topic, partition, 1)] or (b"", ())
    assert (value, headers) in [(v, h) for _, v, h in sent]
