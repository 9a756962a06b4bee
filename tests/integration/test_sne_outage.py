"""`gateway sne run` with its broker lost mid-run: it does not exit; it says so and backs off, and once
the broker is back the feedback it could not publish is published (the SNE is not called twice).
Uses its own broker (the session one is shared); the connector runs as a child process, as in production."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.sne.simulator.certs import ensure_certs
from connectors.sne.testing import SimulatorProcess, demande
from gateway.broker import LocalBroker
from gateway.codec.avro import decode_single_object, encode_single_object, load_schemas
from gateway.testing.kafka import apply_acls, consume_all, create_topics, produce
from gateway.topics import canonical_topic, dlq_topic, feedback_topic

SCHEMAS = load_schemas()


def _until(predicate: Callable[[], bool], limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.3)


def _states(ledger: Path) -> list[str]:
    if not ledger.exists():
        return []
    with contextlib.closing(sqlite3.connect(ledger)) as db:
        try:
            return [str(r[0]) for r in db.execute("SELECT state FROM requests")]
        except sqlite3.OperationalError:  # the connector created the file, not yet its tables
            return []


def test_sne_run_survives_a_broker_lost_while_publishing(own_broker: LocalBroker, tmp_path: Path) -> None:
    bootstrap = own_broker.bootstrap
    prefix = f"o{uuid.uuid4().hex[:8]}"
    source, feedback = canonical_topic("demande", prefix), feedback_topic("200000001", prefix)
    create_topics(bootstrap, [source, dlq_topic(source)])
    certs = tmp_path / "certs"
    ensure_certs(certs)
    sim = SimulatorProcess(certs, tmp_path / "sim-state").start()
    state = tmp_path / "state"
    env = dict(
        os.environ,
        GATEWAY_BOOTSTRAP_SERVERS=bootstrap,
        GATEWAY_TOPIC_PREFIX=prefix,
        GATEWAY_STATE_DIR=str(state),
        GATEWAY_APP_ID=prefix,
        GATEWAY_SNE_GUICHET="G3501",
        GATEWAY_SNE_URL=f"https://127.0.0.1:{sim.port}/services/DemandeLogementImplService/",
        GATEWAY_SNE_MODE="daily",  # the batch is sent when the test says so
        GATEWAY_SNE_DAILY_AT=(datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M"),
        GATEWAY_BROKER_TIMEOUT_S="5",  # a publish (topic creation) fails after 5 s, not 60: sooner lost
    )
    # the connector runs as the gateway worker <app id>.sne: its ACLs come from `gateway acl apply`
    apply_acls(env)
    cmd = [sys.executable, "-m", "gateway", "sne", "run", "--no-poll", "--certs", str(certs)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    assert proc.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr or ()), daemon=True)
    reader.start()
    ledger = state / "sne" / "ledger.sqlite"
    try:
        produce(bootstrap, source, [(b"k1", encode_single_object(SCHEMAS.codec("fr.gp.Demande"), demande()))])
        _until(lambda: _states(ledger) == ["QUEUED"])  # daily mode: stored, offset committed
        assert _states(ledger) == ["QUEUED"]

        own_broker.stop()
        (
            ledger.parent / "send-now"
        ).touch()  # `gateway sne flush`: sent, then the feedback cannot be published
        waiting = "Kafka is not reachable at"
        _until(lambda: sum(waiting in line for line in lines) >= 2 or proc.poll() is not None)
        assert proc.poll() is None, "gateway sne run must wait for the broker, not exit"
        assert sum(waiting in line for line in lines) >= 2
        assert not any("Traceback" in line for line in lines)
        assert _states(ledger) == ["ANSWERED"] and sim.control()["calls"] == {"numUnique": 1}

        own_broker.start()  # same port, same data
        got = consume_all(bootstrap, feedback, expect=1, quiet_ms=3000, max_wait_s=180)
        assert len(got) == 1 and got[0].key == b"ERP-0001" and got[0].value is not None
        fb = decode_single_object(got[0].value, SCHEMAS.by_fingerprint())[1]
        assert (fb["status"], fb["typeFichier"]) == ("ACCEPTED", "CRE")
        assert sim.control()["calls"] == {"numUnique": 1}  # not sent twice
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        reader.join(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
        sim.stop()
