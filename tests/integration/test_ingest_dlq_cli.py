"""`gateway dlq list|show|replay` on the real broker: problems shown, payload hidden unless asked,
replay re-injects the original bytes into the original topic."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from gateway.errors import Problem
from gateway.flows.dlq import DeadLetters
from gateway.testing.kafka import consume_all, create_topics, produce
from gateway.topics import dlq_topic, source_raw_topic


def _gateway(bootstrap: str, prefix: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "GATEWAY_TOPIC_PREFIX": prefix})
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "dlq", *args], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_dlq_show_and_replay(kafka_bootstrap: str) -> None:
    prefix = f"dlq{uuid.uuid4().hex[:6]}"
    raw = source_raw_topic("cal-csv", "rennes-habitat-erp", prefix)
    dlq = dlq_topic(raw)
    create_topics(kafka_bootstrap, [raw, dlq])
    secret = b"2026-13-45;DUPONT Jeanne;035260100000000001\n"
    letter = DeadLetters().build(
        source_topic=raw, partition=0, offset=12, key=b"f.csv", original=secret,
        problems=[Problem("ligne[2].date", "not a date")], message="cal-csv rejected", stage="normalise",
        locator="line 2",
    )  # fmt: skip
    produce(kafka_bootstrap, dlq, [(letter.key, letter.value, letter.headers)])

    listing = _gateway(kafka_bootstrap, prefix, "list")
    assert f"{dlq}" in listing
    assert listing.split(dlq)[1].split()[0] == "1"

    shown = _gateway(kafka_bootstrap, prefix, "show", dlq)
    assert "problem ligne[2].date: not a date" in shown
    assert f"topic: {raw}" in shown
    assert "DUPONT" not in shown  # never the payload by default
    assert "DUPONT" in _gateway(kafka_bootstrap, prefix, "show", dlq, "--payload")

    assert "replayed 1 record" in _gateway(
        kafka_bootstrap, prefix, "replay", dlq, "--partition", "0", "--offset", "0"
    )
    [replayed] = consume_all(kafka_bootstrap, raw, expect=1)
    assert replayed.value == secret
    assert replayed.key == b"f.csv"
    assert replayed.header("gp.replayed.from") == f"{dlq}@0".encode()
    assert not [k for k, _ in replayed.headers if k.startswith("__connect.errors.")]
