"""Delivery guarantee: a worker SIGKILLed mid-stream and restarted loses nothing and duplicates
nothing in committed output (read_committed), with processing_guarantee=exactly_once."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

from gateway.broker.local import free_port
from gateway.flows.admin import ensure_topics, ingest_topics
from gateway.flows.ingest import CE_NAMESPACE
from gateway.settings import GatewaySettings
from gateway.testing.kafka import consume_all, end_offsets, produce, start_worker, stop_worker, worker_env
from gateway.topics import canonical_topic, raw_topic

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "sne-xml" / "demande-cre-famille-rennes.xml"
N = 600


def test_sigkill_mid_stream_then_restart_gives_exactly_n(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = f"eos{uuid.uuid4().hex[:8]}"
    env = worker_env(kafka_bootstrap, prefix=prefix, state_dir=str(tmp_path), web_port=free_port())
    settings = GatewaySettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, partitions=3, state_dir=tmp_path
    )
    ensure_topics(kafka_bootstrap, ingest_topics(settings))
    raw, out = raw_topic("sne-xml", prefix), canonical_topic("demande", prefix)
    payload = SAMPLE.read_bytes()
    assert produce(kafka_bootstrap, raw, [(f"src-{i}".encode(), payload) for i in range(N)]) == N
    log = str(tmp_path / "worker.log")

    first = start_worker(env, log_path=log)
    try:
        # kill once some output exists (committed or not) but, most likely, not all of it
        deadline = time.monotonic() + 120
        while sum(end_offsets(kafka_bootstrap, out).values()) < N // 5 and time.monotonic() < deadline:
            assert first.poll() is None, Path(log).read_text()
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        written_before_restart = sum(end_offsets(kafka_bootstrap, out).values())
    finally:
        stop_worker(first)

    second = start_worker(env, log_path=log)
    try:
        got = consume_all(kafka_bootstrap, out, expect=N, quiet_ms=4000, max_wait_s=240)
    finally:
        assert stop_worker(second) == 0 or second.returncode in (-15, 143)

    ce_ids = [m.header("ce_id") for m in got]
    offsets = end_offsets(kafka_bootstrap, raw)
    expected = {
        str(uuid.uuid5(CE_NAMESPACE, f"{raw}/{p}/{o}/0")).encode()
        for p, n in offsets.items()
        for o in range(n)
    }
    dups = sorted({m.header("gp.source.coordinates") for m in got if ce_ids.count(m.header("ce_id")) > 1})
    assert len(got) == N, f"{len(got)} committed records for {N} inputs; duplicated inputs: {dups}"
    assert set(ce_ids) == expected  # every input exactly once (no loss, no duplicate)
    # the kill happened mid-stream: something was written before it, and the restart had work left
    assert written_before_restart > 0
    print(f"written before SIGKILL (incl. aborted): {written_before_restart}; committed: {len(got)}")
