"""The retention tests' kit on the real broker: a tombstone plus forced compaction leaves no
readable byte of the erased key's earlier records, and the other keys keep theirs."""

from __future__ import annotations

import uuid

from gateway.testing.erasure import compacted_topics, force_compaction, scan_topics
from gateway.testing.kafka import create_topics, produce


def test_forced_compaction_removes_what_a_tombstone_erased(kafka_bootstrap: str) -> None:
    prefix = f"ek{uuid.uuid4().hex[:8]}"
    compacted, deleted = f"{prefix}.compacted", f"{prefix}.deleted"
    create_topics(kafka_bootstrap, [compacted], partitions=2, configs={"cleanup.policy": "compact"})
    create_topics(kafka_bootstrap, [deleted], partitions=1)
    gone, kept = b"QzErasedMarker", b"QzKeptMarker"
    produce(kafka_bootstrap, compacted, [(b"A", b"v1 " + gone), (b"B", b"v1 " + kept), (b"A", b"v2 " + gone)])
    produce(kafka_bootstrap, compacted, [(b"A", None)])
    produce(kafka_bootstrap, deleted, [(b"A", b"x " + gone)])
    assert scan_topics(kafka_bootstrap, [compacted, deleted], [gone]) == {compacted: 2, deleted: 1}

    assert compacted_topics(kafka_bootstrap, [compacted, deleted]) == [compacted]
    force_compaction(kafka_bootstrap, [compacted], gone=[gone])

    assert scan_topics(kafka_bootstrap, [compacted], [gone]) == {}
    assert scan_topics(kafka_bootstrap, [compacted], [kept]) == {compacted: 1}
