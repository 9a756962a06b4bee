"""Ingest flow on the real broker: the bundled samples in, canonical records out with the right
keys and headers; malformed samples dead-lettered with their original bytes; /health and /metrics."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from connectors.file_drop.demo import assign_samples
from gateway.broker.local import free_port
from gateway.cli.demo import SAMPLES
from gateway.codec.avro import decode_single_object, load_schemas
from gateway.flows.admin import ensure_topics, ingest_topics
from gateway.model.deadletter import ERR, problems_from_headers
from gateway.normalise import CanonicalRecord, Rejection, normalise
from gateway.policy.model import load_policy
from gateway.settings import GatewaySettings
from gateway.testing.kafka import Message, consume_all, produce, start_worker, stop_worker, worker_env
from gateway.topics import canonical_topic, dlq_topic, source_raw_topic

CE_HEADERS = ("ce_id", "ce_source", "ce_type", "ce_time", "ce_subject", "ce_specversion")


def _files() -> list[tuple[str, str, Path]]:
    """(source, format, path) of every good and bad sample, each sent by the demo source that speaks
    for the organisation that entered it (the demo's spoofed input left out)."""
    return [
        (source, fmt, p)
        for source, fmt, p, name in assign_samples(load_policy(), SAMPLES)
        if not name.startswith("spoof-")
    ]


class Running:
    def __init__(self, bootstrap: str, prefix: str, web_port: int) -> None:
        self.bootstrap, self.prefix, self.web_port = bootstrap, prefix, web_port

    def all(self, topic: str, expect: int) -> list[Message]:
        return consume_all(self.bootstrap, topic, expect=expect, quiet_ms=2000, max_wait_s=120)


@pytest.fixture(scope="module")
def running(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("ingest")
    prefix = f"ing{uuid.uuid4().hex[:8]}"
    port = free_port()
    settings = GatewaySettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, partitions=3, state_dir=tmp
    )
    ensure_topics(kafka_bootstrap, ingest_topics(settings))
    proc = start_worker(
        worker_env(kafka_bootstrap, prefix=prefix, state_dir=str(tmp), web_port=port),
        log_path=str(tmp / "w.log"),
    )
    try:
        for source, fmt, path in _files():
            produce(
                kafka_bootstrap,
                source_raw_topic(fmt, source, prefix),
                [(path.name.encode(), path.read_bytes())],
            )
        yield Running(kafka_bootstrap, prefix, port)
    finally:
        stop_worker(proc)


def test_samples_become_canonical_records_keyed_by_numero_unique(running: Running) -> None:
    expected: Counter[tuple[str, str]] = Counter()
    sources = set()
    for source, fmt, path in _files():
        for o in normalise(fmt, path.read_bytes()):
            if isinstance(o, CanonicalRecord):
                expected[(o.schema, o.key)] += 1
                sources.add(source)
    assert expected, "the samples should yield canonical records"
    by_kind = {"fr.gp.Demande": "demande", "fr.gp.Decision": "decision"}
    codecs = load_schemas().by_fingerprint()
    got: Counter[tuple[str, str]] = Counter()
    for schema, kind in by_kind.items():
        n = sum(c for (s, _), c in expected.items() if s == schema)
        messages = running.all(canonical_topic(kind, running.prefix), n)
        for m in messages:
            assert m.key is not None and m.value is not None
            for h in CE_HEADERS:
                assert m.header(h), f"missing {h}"
            assert m.header("ce_specversion") == b"1.0"
            assert m.header("ce_subject") == m.key
            assert m.header("gp.schema.name") == schema.encode()
            codec, record = decode_single_object(m.value, codecs)
            assert codec.name == schema
            assert m.header("gp.schema.fingerprint") == codec.fingerprint_hex.encode()
            assert (m.header("gp.source") or b"").decode() in sources  # the source that sent it
            assert m.value[2:10] == codec.fingerprint
            if record.get("numUnique"):
                assert m.key == record["numUnique"].encode()
            got[(schema, m.key.decode())] += 1
    assert got == expected


def test_malformed_samples_are_dead_lettered_with_original_bytes(running: Running) -> None:
    expected: dict[str, list[bytes]] = {}
    for source, fmt, path in _files():
        data = path.read_bytes()
        for o in normalise(fmt, data):
            if isinstance(o, Rejection):
                topic = dlq_topic(source_raw_topic(fmt, source, running.prefix))
                expected.setdefault(topic, []).append(o.fragment if o.fragment is not None else data)
    assert expected, "samples/bad should yield rejections"
    for topic, originals in expected.items():
        messages = running.all(topic, len(originals))
        assert sorted(m.value or b"" for m in messages) == sorted(originals)
        for m in messages:
            assert m.header(ERR + "topic") == topic.removesuffix(".dlq").encode()
            assert m.header(ERR + "exception.class.name") == b"gateway.errors.RejectedMessage"
            assert int(m.header(ERR + "offset") or b"-1") >= 0
            assert problems_from_headers(m.headers), "every dead letter lists its problems"


def test_health_and_metrics(running: Running) -> None:
    running.all(canonical_topic("demande", running.prefix), 1)  # something went through (-k runs it alone)
    base = f"http://127.0.0.1:{running.web_port}"
    with urllib.request.urlopen(base + "/health", timeout=10) as r:  # noqa: S310 - loopback
        assert r.status == 204
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:  # noqa: S310
        text = r.read().decode()
    assert 'gp_records_in_total{flow="ingest",source="sne-xml"}' in text
    assert "gp_records_out_total" in text
    assert "gp_records_dead_lettered_total" in text
    assert "gp_processing_seconds_bucket" in text
    # the ingest loop's own consumer group, per raw partition it holds
    group, topic = re.escape(f"{running.prefix}-app.ingest"), re.escape(f"{running.prefix}.raw.")
    lag = rf'kafka_consumergroup_lag{{consumergroup="{group}",partition="\d+",topic="{topic}'
    assert re.search(lag, text), "no lag of the ingest consumer group"
