"""Retention flow on the real broker and registry (issue 16): the clock moved 366 days past a
radiation (injected into the gateway: the broker's own time retention does not age with it),
`gateway retention run` erases the radiated application (tombstones with `gp.erasure` on every
canonical topic, the raw topic purged up to the ingest's committed offset and not beyond, one
fr.gp.Effacement in the audit topic) and leaves the déradiated one alone; a second run is a no-op.
The SIGKILL test: the worker killed while an erasure waits for a store, restarted, the store's
receipt sent by hand -> exactly one audit entry naming every store.

The other stores are stubbed ONLY by the expected stores (GATEWAY_RETENTION_STORES)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from gateway.broker.local import free_port
from gateway.codec.avro import load_schemas
from gateway.codec.framing import decoder_for
from gateway.flows.admin import DAY_MS, TopicSpec, ensure_topics, ingest_topics, keyed_configs
from gateway.flows.retention import CANONICAL_KINDS, retention_topics
from gateway.retention.protocol import ERASURE_HEADER
from gateway.settings import GatewaySettings
from gateway.signals.samples import demande
from gateway.testing.kafka import (
    admin,
    cli_env,
    client_kwargs,
    consume_all,
    produce,
    start_worker,
    stop_worker,
    worker_env,
)
from gateway.topics import audit_topic, canonical_topic, ingest_group, retention_topic, source_raw_topic
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

RADIATED, DERADIATED, KILLED = "035250100000000001", "035250100000000002", "035250100000000003"
RADIATION = date.today() - timedelta(days=30)
LATER = RADIATION + timedelta(days=366)
PARTITIONS = 2


def _framed(record: dict[str, Any]) -> bytes:
    return load_schemas().codec("fr.gp.Demande").encode_framed(record)


def _radiated(num: str) -> dict[str, Any]:
    record = demande(num, statut="RADIEE")
    record["radiation"] = {"motif": "RADATT", "dateRadiation": RADIATION}
    return record


def _setup(
    bootstrap: str, tmp_path: Path, stores: str, registry: str | None
) -> tuple[str, dict[str, str], Path]:
    prefix = f"ret{uuid.uuid4().hex[:8]}"
    clock = tmp_path / "clock"
    clock.write_text(date.today().isoformat(), encoding="utf-8")
    env = worker_env(
        bootstrap, prefix=prefix, state_dir=str(tmp_path), web_port=free_port(), partitions=PARTITIONS
    )
    env |= {
        "GATEWAY_RETENTION_CLOCK": f"file:{clock}",
        "GATEWAY_RETENTION_CLOCK_INTERVAL": "3600",
        "GATEWAY_RETENTION_STORES": stores,
    }
    if registry:
        env["GATEWAY_SCHEMA_REGISTRY_URL"] = registry
    settings = GatewaySettings(bootstrap_servers=bootstrap, topic_prefix=prefix, partitions=PARTITIONS)
    raw = source_raw_topic("sne-xml", "test", prefix)
    specs = [*ingest_topics(settings, raw_topics=[raw]), *retention_topics(settings)]
    ensure_topics(client_kwargs(bootstrap), specs)
    return prefix, env, clock


def _cli(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "retention", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _cli_env(bootstrap: str, env: dict[str, str]) -> dict[str, str]:
    out = cli_env(bootstrap)
    for name in (
        "GATEWAY_TOPIC_PREFIX",
        "GATEWAY_APP_ID",
        "GATEWAY_PARTITIONS",
        "GATEWAY_RETENTION_STORES",
        "GATEWAY_RETENTION_CLOCK",
        "GATEWAY_STATE_DIR",
    ):
        out[name] = env[name]
    return out


def _wait_planned(cli: dict[str, str], wanted: set[str], max_wait: float = 120) -> list[str]:
    deadline = time.monotonic() + max_wait
    lines: list[str] = []
    while time.monotonic() < deadline:
        done = _cli(cli, "plan", "--now", LATER.isoformat())
        lines = done.stdout.splitlines()
        if done.returncode == 0 and {line.split()[0] for line in lines} == wanted:
            return lines
        time.sleep(2)
    raise AssertionError(f"plan never listed {sorted(wanted)}: {lines}")


def _effacements(bootstrap: str, prefix: str, registry: str | None) -> list[dict[str, Any]]:
    codec = load_schemas().codec("fr.gp.Effacement")
    decoder = decoder_for(registry, {codec.fingerprint: codec})
    out = []
    for m in consume_all(bootstrap, audit_topic(prefix), quiet_ms=1500, max_wait_s=30):
        assert m.value is not None
        if m.header("gp.schema.name") == b"fr.gp.Effacement":  # the route's disclosures are skipped
            out.append(decoder.decode(m.value)[1])
    return out


def _start_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(**client_kwargs(bootstrap), enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return {tp.partition: off for tp, off in consumer.beginning_offsets(parts).items()}
    finally:
        consumer.close()


def test_retention_run_erases_the_radiated_application_once_and_leaves_the_deradiated_one(
    kafka_bootstrap: str, schema_registry_url: str, tmp_path: Path
) -> None:
    prefix, env, clock = _setup(kafka_bootstrap, tmp_path, "canonical,raw", schema_registry_url)
    cli = _cli_env(kafka_bootstrap, env)
    # raw inputs: 3 on partition 0, the ingest group committed 2 of them
    raw = source_raw_topic("sne-xml", "test", prefix)
    produce(kafka_bootstrap, raw, [(b"k", f"<raw {n}/>".encode()) for n in range(3)])
    kwargs = client_kwargs(kafka_bootstrap)
    group = KafkaConsumer(**kwargs, group_id=ingest_group(env["GATEWAY_APP_ID"]), enable_auto_commit=False)
    try:
        from kafka.structs import OffsetAndMetadata  # noqa: PLC0415

        filled = [p for p, n in enumerate(_end_offsets(kafka_bootstrap, raw)) if n == 3]
        assert filled, "the three raw inputs are on one partition"
        group.commit({TopicPartition(raw, filled[0]): OffsetAndMetadata(2, "", -1)})
    finally:
        group.close()
    worker = start_worker(env, flows="retention", log_path=str(tmp_path / "worker.log"))
    try:
        produce(
            kafka_bootstrap,
            canonical_topic("demande", prefix),
            [
                (RADIATED.encode(), _framed(_radiated(RADIATED))),
                (DERADIATED.encode(), _framed(_radiated(DERADIATED))),
                (DERADIATED.encode(), _framed(demande(DERADIATED))),  # déradiated: the clock is cancelled
            ],
        )
        produce(
            kafka_bootstrap, canonical_topic("decision", prefix), [(RADIATED.encode(), b"decision bytes")]
        )
        lines = _wait_planned(cli, {RADIATED})
        due = (RADIATION.replace(year=RADIATION.year + 1)).isoformat()
        assert lines == [f"{RADIATED} {due} canonical,raw"]
        # before the clock moves, a run --now in its future is refused: nothing erased early
        early = _cli(cli, "run", "--now", LATER.isoformat(), "--timeout", "60")
        assert early.returncode == 1, early.stdout + early.stderr
        assert "later than the worker's clock" in early.stdout
        clock.write_text(LATER.isoformat(), encoding="utf-8")
        done = _cli(cli, "run", "--now", LATER.isoformat(), "--timeout", "90")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1 erasure(s) started or re-driven, 1 completed" in done.stdout
        request = done.stdout.split()[2]
        for kind in CANONICAL_KINDS:
            got = consume_all(kafka_bootstrap, canonical_topic(kind, prefix), quiet_ms=1000, max_wait_s=30)
            tombstones = [m for m in got if m.value is None]
            assert [(m.key, m.header(ERASURE_HEADER)) for m in tombstones] == [
                (RADIATED.encode(), request.encode())
            ], kind
            assert not any(m.key == DERADIATED.encode() and m.value is None for m in got), kind
        # the déradiated application's record is still there
        demandes = consume_all(kafka_bootstrap, canonical_topic("demande", prefix), quiet_ms=1000)
        assert [m.key for m in demandes if m.value is not None].count(DERADIATED.encode()) == 2
        # raw purged up to the ingest's committed offset, never beyond
        assert _start_offsets(kafka_bootstrap, raw)[filled[0]] == 2
        erased = _effacements(kafka_bootstrap, prefix, schema_registry_url)
        assert len(erased) == 1
        assert erased[0]["numUnique"] == RADIATED
        assert erased[0]["dateRadiation"] == RADIATION
        assert erased[0]["stores"] == ["canonical", "raw"]
        assert request in erased[0]["par"]
        # a second run: nothing due, nothing erased, exit 0; still one audit entry
        again = _cli(cli, "run", "--timeout", "60")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "0 erasure(s) started or re-driven, 0 completed" in again.stdout
        assert _cli(cli, "plan", "--now", LATER.isoformat()).stdout == ""
        assert len(_effacements(kafka_bootstrap, prefix, schema_registry_url)) == 1
    finally:
        stop_worker(worker)


def _end_offsets(bootstrap: str, topic: str) -> list[int]:
    consumer = KafkaConsumer(**client_kwargs(bootstrap), enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        ends = consumer.end_offsets(parts)
        return [ends[tp] for tp in parts]
    finally:
        consumer.close()


def test_sigkill_mid_erasure_then_restart_finishes_with_one_audit_entry_and_every_store(
    kafka_bootstrap: str, schema_registry_url: str, tmp_path: Path
) -> None:
    prefix, env, clock = _setup(kafka_bootstrap, tmp_path, "canonical,raw,route", schema_registry_url)
    cli = _cli_env(kafka_bootstrap, env)
    worker = start_worker(env, flows="retention", log_path=str(tmp_path / "worker.log"))
    try:
        produce(
            kafka_bootstrap,
            canonical_topic("demande", prefix),
            [(KILLED.encode(), _framed(_radiated(KILLED)))],
        )
        _wait_planned(cli, {KILLED})
        clock.write_text(LATER.isoformat(), encoding="utf-8")
        # the route store never answers: not complete, exit 1 naming it
        waiting = _cli(cli, "run", "--timeout", "15")
        assert waiting.returncode == 1, waiting.stdout + waiting.stderr
        assert "NOT complete: 1 erasure(s) still waiting" in waiting.stdout
        assert "route (1)" in waiting.stdout
        request = waiting.stdout.split()[2]
        tombstones = [
            m
            for m in consume_all(kafka_bootstrap, canonical_topic("signal", prefix), quiet_ms=1000)
            if m.value is None
        ]
        assert [m.key for m in tombstones] == [KILLED.encode()]
        assert _effacements(kafka_bootstrap, prefix, schema_registry_url) == []
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(30)
    finally:
        stop_worker(worker)
    worker = start_worker(env, flows="retention", log_path=str(tmp_path / "worker2.log"))
    try:
        # the route flow's receipt, by hand (the store that was down answers later)
        produce(
            kafka_bootstrap,
            retention_topic("receipts", prefix),
            [(KILLED.encode(), b"route", [(ERASURE_HEADER, request.encode())])],
        )
        done = _cli(cli, "run", "--timeout", "120")
        assert done.returncode == 0, done.stdout + done.stderr
        deadline = time.monotonic() + 60
        erased = _effacements(kafka_bootstrap, prefix, schema_registry_url)
        while not erased and time.monotonic() < deadline:
            time.sleep(2)
            erased = _effacements(kafka_bootstrap, prefix, schema_registry_url)
        assert len(erased) == 1
        assert erased[0]["numUnique"] == KILLED
        assert erased[0]["stores"] == ["canonical", "raw", "route"]
        assert request in erased[0]["par"]
        # and it stays one: a third run erases nothing
        assert _cli(cli, "run", "--timeout", "60").returncode == 0
        assert len(_effacements(kafka_bootstrap, prefix, schema_registry_url)) == 1
    finally:
        stop_worker(worker)


def test_ensure_topics_reconciles_the_configs_of_an_existing_topic(kafka_bootstrap: str) -> None:
    topic = f"rec{uuid.uuid4().hex[:8]}.canonical.decision"
    old = TopicSpec(topic, 1, 1, "delete", {"retention.ms": str(DAY_MS)})
    assert ensure_topics(client_kwargs(kafka_bootstrap), [old]) == [topic]
    new = TopicSpec(topic, 1, 1, "compact", keyed_configs())
    # without reconcile an existing topic is left as it is
    assert ensure_topics(client_kwargs(kafka_bootstrap), [new]) == []

    def configs() -> dict[str, str]:
        client = admin(kafka_bootstrap)
        try:
            got = client.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all"
            )
        finally:
            client.close()
        return {k: v.get("value") for k, v in got["topic"][topic].items()}

    assert configs()["cleanup.policy"] == "delete"
    assert ensure_topics(client_kwargs(kafka_bootstrap), [new], reconcile=True) == []
    after = configs()
    assert {k: after[k] for k in new.all_configs()} == new.all_configs()
    assert after["retention.ms"] == str(DAY_MS)  # undeclared configs are left as they were


def test_the_daily_clock_erases_on_the_due_date_without_any_command(
    kafka_bootstrap: str, schema_registry_url: str, tmp_path: Path
) -> None:
    prefix, env, clock = _setup(kafka_bootstrap, tmp_path, "canonical,raw", schema_registry_url)
    env["GATEWAY_RETENTION_CLOCK_INTERVAL"] = "1"
    cli = _cli_env(kafka_bootstrap, env)
    worker = start_worker(env, flows="retention", log_path=str(tmp_path / "worker.log"))
    try:
        produce(
            kafka_bootstrap,
            canonical_topic("demande", prefix),
            [(KILLED.encode(), _framed(_radiated(KILLED)))],
        )
        _wait_planned(cli, {KILLED})
        time.sleep(3)  # the clock looked several times: nothing is due yet
        assert _effacements(kafka_bootstrap, prefix, schema_registry_url) == []
        clock.write_text(LATER.isoformat(), encoding="utf-8")  # the day changes; no input, no command
        deadline = time.monotonic() + 90
        erased = _effacements(kafka_bootstrap, prefix, schema_registry_url)
        while not erased and time.monotonic() < deadline:
            time.sleep(2)
            erased = _effacements(kafka_bootstrap, prefix, schema_registry_url)
        assert [(e["numUnique"], e["par"].endswith("(horloge)")) for e in erased] == [(KILLED, True)]
        tombstones = consume_all(kafka_bootstrap, canonical_topic("demande", prefix), quiet_ms=1000)
        assert [m.header(ERASURE_HEADER) for m in tombstones if m.value is None] == [b"horloge"]
    finally:
        stop_worker(worker)


def test_with_the_real_route_flow_its_receipt_completes_the_erasure(
    kafka_bootstrap: str, schema_registry_url: str, tmp_path: Path
) -> None:
    prefix, env, clock = _setup(kafka_bootstrap, tmp_path, "canonical,raw,route", schema_registry_url)
    cli = _cli_env(kafka_bootstrap, env)
    worker = start_worker(env, flows="route,retention", log_path=str(tmp_path / "worker.log"))
    try:
        produce(
            kafka_bootstrap,
            canonical_topic("demande", prefix),
            [(KILLED.encode(), _framed(_radiated(KILLED)))],
        )
        _wait_planned(cli, {KILLED})
        clock.write_text(LATER.isoformat(), encoding="utf-8")
        done = _cli(cli, "run", "--timeout", "120")
        assert done.returncode == 0, done.stdout + done.stderr
        erased = _effacements(kafka_bootstrap, prefix, schema_registry_url)
        assert [(e["numUnique"], e["stores"]) for e in erased] == [(KILLED, ["canonical", "raw", "route"])]
        receipts = consume_all(kafka_bootstrap, retention_topic("receipts", prefix), quiet_ms=1000)
        assert [(m.key, m.value) for m in receipts] == [(KILLED.encode(), b"route")]
    finally:
        stop_worker(worker)
