"""The session broker is a real Kafka: topics are created, records round-trip with keys and headers."""

from __future__ import annotations

from gateway.testing.kafka import consume_all, create_topics, end_offsets, produce


def test_round_trip_with_keys_and_headers(kafka_bootstrap: str, unique_topic: str) -> None:
    create_topics(kafka_bootstrap, [unique_topic], partitions=3)
    assert sorted(end_offsets(kafka_bootstrap, unique_topic)) == [0, 1, 2]
    items = [(f"k{i}".encode(), f"v{i}".encode(), [("h", str(i).encode())]) for i in range(20)]
    assert produce(kafka_bootstrap, unique_topic, items) == 20
    got = consume_all(kafka_bootstrap, unique_topic, expect=20)
    assert sorted((m.key, m.value, m.header("h")) for m in got) == sorted(
        (k, v, h[0][1]) for k, v, h in items
    )
    # same key -> same partition (order per numéro unique rests on this)
    by_key: dict[bytes | None, set[int]] = {}
    for m in got:
        by_key.setdefault(m.key, set()).add(m.partition)
    assert all(len(p) == 1 for p in by_key.values())
