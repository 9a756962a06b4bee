"""An input near Kafka's size limit: its dead letter (original bytes + error headers) would exceed the
producer's limit, so it is dead-lettered without the bytes (they stay in the raw topic), naming the
input's coordinates; the flow goes on with the next input."""

from __future__ import annotations

import uuid
from pathlib import Path

from gateway.broker.local import free_port
from gateway.codec.avro import load_schemas
from gateway.flows.admin import ensure_topics, ingest_topics
from gateway.flows.dlq import DeadLetters
from gateway.flows.ingest import ingest_record
from gateway.model.deadletter import ERR, problems_from_headers
from gateway.settings import GatewaySettings
from gateway.testing.kafka import consume_all, produce, start_worker, stop_worker, worker_env
from gateway.topics import canonical_topic, dlq_topic, source_raw_topic

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "sne-xml" / "demande-cre-famille-rennes.xml"
PRODUCER_LIMIT = 1_048_576  # kafka-python's default max_request_size, as the worker's producer has


def test_an_input_whose_dead_letter_is_too_large_is_dead_lettered_without_its_bytes(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"lim{uuid.uuid4().hex[:8]}"
    settings = GatewaySettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, partitions=1)
    ensure_topics(kafka_bootstrap, ingest_topics(settings))
    raw = source_raw_topic("sne-xml", "rennes-habitat-erp", prefix)
    huge = b"<not-xml " + b"x" * (PRODUCER_LIMIT - 220)  # fits a record, not with ~500 B of headers
    letter = ingest_record(
        "sne-xml", huge, source_topic=raw, partition=0, offset=0, key=b"big", timestamp_ms=0,
        schemas=load_schemas(), dead_letters=DeadLetters(),
    ).dead[0]  # fmt: skip
    assert len(letter.value) + sum(len(k) + len(v) for k, v in letter.headers) > PRODUCER_LIMIT
    assert produce(kafka_bootstrap, raw, [(b"big", huge), (b"next", SAMPLE.read_bytes())]) == 2

    env = worker_env(kafka_bootstrap, prefix=prefix, state_dir=str(tmp_path), web_port=free_port())
    worker = start_worker(env, log_path=str(tmp_path / "w.log"))
    try:
        [dead] = consume_all(kafka_bootstrap, dlq_topic(raw), expect=1, quiet_ms=2000, max_wait_s=120)
        [good] = consume_all(kafka_bootstrap, canonical_topic("demande", prefix), expect=1, max_wait_s=120)
    finally:
        stop_worker(worker)
    assert dead.value in (b"", None)
    assert dead.key == b"big"
    assert dead.header(ERR + "topic") == raw.encode()
    assert dead.header(ERR + "offset") == b"0"
    [problem] = problems_from_headers(dead.headers)
    assert "too large" in problem.reason
    assert f"{raw}@0/0" in problem.reason
    assert good.header("gp.source.coordinates") == f"{raw}/0/1".encode()
