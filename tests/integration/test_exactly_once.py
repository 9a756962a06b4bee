"""Delivery guarantee: a worker SIGKILLed mid-stream and restarted loses nothing and duplicates
nothing in committed output (read_committed), with processing_guarantee=exactly_once."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import pytest
from gateway.broker.local import free_port
from gateway.flows.admin import ensure_topics, ingest_topics
from gateway.flows.ingest import CE_NAMESPACE
from gateway.model.deadletter import ERR
from gateway.settings import GatewaySettings
from gateway.testing.kafka import (
    Message,
    consume_all,
    end_offsets,
    produce,
    start_worker,
    stop_worker,
    wait_for_group,
    worker_env,
)
from gateway.topics import canonical_topic, dlq_topic, ingest_group, source_raw_topic

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "sne-xml" / "demande-cre-famille-rennes.xml"
N = 600


@pytest.mark.parametrize("processes", [0, 1], ids=["in-thread", "process-pool"])
def test_sigkill_mid_stream_then_restart_gives_exactly_n(
    kafka_bootstrap: str, tmp_path: Path, processes: int
) -> None:
    prefix = f"eos{uuid.uuid4().hex[:8]}"
    env = worker_env(kafka_bootstrap, prefix=prefix, state_dir=str(tmp_path), web_port=free_port())
    env["GATEWAY_INGEST_PROCESSES"] = str(processes)
    settings = GatewaySettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, partitions=3, state_dir=tmp_path
    )
    ensure_topics(kafka_bootstrap, ingest_topics(settings))
    raw, out = source_raw_topic("sne-xml", "rennes-habitat-erp", prefix), canonical_topic("demande", prefix)
    dlq = dlq_topic(raw)
    payload = SAMPLE.read_bytes()
    # every 10th input is malformed: dead letters must be exactly-once too
    inputs = [(f"src-{i}".encode(), f"<bad {i}".encode() if i % 10 == 0 else payload) for i in range(N)]
    assert produce(kafka_bootstrap, raw, inputs) == N
    n_bad = sum(1 for _, v in inputs if v != payload)
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
        got = consume_all(kafka_bootstrap, out, expect=N - n_bad, quiet_ms=4000, max_wait_s=240)
        dead = consume_all(kafka_bootstrap, dlq, expect=n_bad, quiet_ms=2000, max_wait_s=120)
    finally:
        stop_worker(second)

    _assert_exactly_once(kafka_bootstrap, raw, payload, got, dead)
    # the kill happened mid-stream: something was written before it, and the restart had work left
    assert written_before_restart > 0
    print(
        f"written before SIGKILL (with aborted): {written_before_restart}; committed {len(got)}+{len(dead)}"
    )


def _assert_exactly_once(
    bootstrap: str, raw: str, payload: bytes, got: list[Message], dead: list[Message]
) -> None:
    """Every good input once in `got` (by its deterministic ce_id), every bad one once in `dead`."""
    sources = consume_all(bootstrap, raw, expect=N)
    good = {(m.partition, m.offset) for m in sources if m.value == payload}
    bad = {(m.partition, m.offset) for m in sources if m.value != payload}
    ce_ids = [m.header("ce_id") for m in got]
    expected = {str(uuid.uuid5(CE_NAMESPACE, f"{raw}/{p}/{o}/0")).encode() for p, o in good}
    dups = sorted({m.header("gp.source.coordinates") for m in got if ce_ids.count(m.header("ce_id")) > 1})
    assert len(got) == len(good), f"{len(got)} committed records for {len(good)} inputs; duplicated: {dups}"
    assert set(ce_ids) == expected  # every good input exactly once (no loss, no duplicate)
    dead_at = [(int(m.header(ERR + "partition") or -1), int(m.header(ERR + "offset") or -1)) for m in dead]
    assert sorted(dead_at) == sorted(bad)  # every bad input dead-lettered exactly once


def test_two_workers_one_sigkilled_the_other_takes_its_partitions_over_exactly_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The survivor gets the dead worker's partitions after the session timeout; the dead worker's
    open transaction (another transactional id) is aborted by the broker; nothing lost or doubled."""
    prefix = f"eo2{uuid.uuid4().hex[:8]}"
    env = worker_env(kafka_bootstrap, prefix=prefix, state_dir=str(tmp_path), web_port=free_port())
    ensure_topics(
        kafka_bootstrap,
        ingest_topics(GatewaySettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, partitions=3)),
    )
    raw, out = source_raw_topic("sne-xml", "rennes-habitat-erp", prefix), canonical_topic("demande", prefix)
    payload = SAMPLE.read_bytes()
    inputs = [(f"src-{i}".encode(), f"<bad {i}".encode() if i % 10 == 0 else payload) for i in range(N)]
    workers = [
        start_worker(
            {**env, "GATEWAY_INSTANCE_ID": f"w{i}", "GATEWAY_WEB_PORT": str(free_port())},
            log_path=str(tmp_path / f"w{i}.log"),
        )
        for i in range(2)
    ]
    try:
        # both in the group before the inputs arrive: the partitions are shared
        wait_for_group(kafka_bootstrap, ingest_group(env["GATEWAY_APP_ID"]), 2)
        assert produce(kafka_bootstrap, raw, inputs) == N
        deadline = time.monotonic() + 120
        while sum(end_offsets(kafka_bootstrap, out).values()) < N // 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait()
        n_bad = sum(1 for _, v in inputs if v != payload)
        got = consume_all(kafka_bootstrap, out, expect=N - n_bad, quiet_ms=4000, max_wait_s=240)
        dead = consume_all(kafka_bootstrap, dlq_topic(raw), expect=n_bad, quiet_ms=2000, max_wait_s=120)
        assert workers[1].poll() is None, "the survivor keeps running"
    finally:
        for worker in workers:
            stop_worker(worker)
    _assert_exactly_once(kafka_bootstrap, raw, payload, got, dead)
