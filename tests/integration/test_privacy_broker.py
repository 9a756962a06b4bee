"""Issue 10 on the real broker: marker values in bad parts reach no header, log line (DEBUG), metric
label or topic name; each bad CAL line is its own dead letter (its bytes) while the good lines go
through; a mostly unreadable cdc-json file is one dead letter with a count."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

from gateway.broker.local import free_port
from gateway.flows.admin import ensure_topics, ingest_topics
from gateway.model.deadletter import ERR, problems_from_headers
from gateway.settings import GatewaySettings
from gateway.testing.kafka import admin, consume_all, produce, stop_worker, worker_env
from gateway.topics import canonical_topic, dlq_topic, source_raw_topic

HEADER = "numUnique;siren;commission;dateCommission;rang;decision;motifs\n"
PHONE = "0612345678"  # in a code column
NAME = "ZqXoulKwaz"  # after a quote that never closes
GARBAGE = "QXJKWZQX"  # in every line of a garbage file


def _line(i: int, decision: str = "d", motifs: str = "ressources") -> str:
    return f"03526010000000000{i};200000001;CAL-RH-01;05/03/2026;{i};{decision};{motifs}\n"


def _debug_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`gateway --log-level DEBUG run --flows ingest` (start_worker runs it at the default level)."""
    cmd = [sys.executable, "-m", "gateway", "--log-level", "DEBUG", "run", "--flows", "ingest"]
    with log.open("ab") as out:
        return subprocess.Popen(
            cmd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def test_markers_stay_out_of_every_channel_and_bad_parts_are_their_own_dead_letters(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"prv{uuid.uuid4().hex[:8]}"
    settings = GatewaySettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, partitions=1)
    ensure_topics(kafka_bootstrap, ingest_topics(settings))
    src = "rennes-habitat-erp"  # a source of the demo actors file that speaks for 200000001
    cal, cdc = source_raw_topic("cal-csv", src, prefix), source_raw_topic("cdc-json", src, prefix)
    bad_phone = _line(2, decision=PHONE)
    bad_quote = f'035260100000000004;200000001;"{NAME};05/03/2026;4;d;x\n'
    csv = HEADER + _line(1) + bad_phone + _line(3) + bad_quote + _line(5)
    garbage = "".join(f"{{{GARBAGE} {i} not json\n" for i in range(200))
    assert produce(kafka_bootstrap, cal, [(b"cal.csv", csv.encode())]) == 1
    assert produce(kafka_bootstrap, cdc, [(b"dump.json", garbage.encode())]) == 1

    port = free_port()
    env = worker_env(kafka_bootstrap, prefix=prefix, state_dir=str(tmp_path), web_port=port, partitions=1)
    log = tmp_path / "worker.log"
    worker = _debug_worker(env, log)
    try:
        decisions = consume_all(
            kafka_bootstrap, canonical_topic("decision", prefix), expect=3, max_wait_s=120
        )
        cal_dead = consume_all(kafka_bootstrap, dlq_topic(cal), expect=2, quiet_ms=2000, max_wait_s=120)
        [cdc_dead] = consume_all(kafka_bootstrap, dlq_topic(cdc), expect=1, quiet_ms=2000, max_wait_s=120)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            metrics = response.read().decode()
    finally:
        stop_worker(worker)

    assert "DEBUG" in log.read_text(encoding="utf-8", errors="replace")  # the log really is at DEBUG
    assert len(decisions) == 3
    assert sorted(d.header("gp.errors.locator") for d in cal_dead) == [b"line 3", b"line 5"]
    assert {d.value for d in cal_dead} == {bad_phone.encode(), bad_quote.encode()}  # each line's own bytes
    [summary, *_] = problems_from_headers(cdc_dead.headers)
    assert summary.reason == "mostly unreadable: 200 of 200 parts rejected"
    assert cdc_dead.value == garbage.encode()

    client = admin(kafka_bootstrap)
    try:
        names = client.list_topics()
    finally:
        client.close()
    for marker in (PHONE, NAME, GARBAGE):
        for letter in [*cal_dead, cdc_dead]:
            for key, value in letter.headers:
                assert marker.encode() not in value, key
            assert letter.header(ERR + "exception.message") is not None
        assert marker not in log.read_text(encoding="utf-8", errors="replace"), "worker log at DEBUG"
        assert marker not in metrics, "metrics"
        assert not [n for n in names if marker in n], "topic names"
