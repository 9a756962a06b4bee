"""The signals and cotation flows' erasure on a real broker (one worker running both): the erasure
tombstone of an application deletes its signals state (changelog tombstone) and the dwelling
entries naming it, tombstones its signals and its cotation, and each flow writes its receipt; the
clock moving past its due date then signals the others, never it. A tombstone without the erasure
header, and a decision tombstone, change nothing and are not dead-lettered."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

from gateway.broker.local import free_port
from gateway.codec.avro import load_schemas
from gateway.flows.admin import ensure_topics, ingest_topics
from gateway.flows.cotation import cotation_topics
from gateway.flows.signals import APP_TABLE, LOGEMENT_TABLE, signals_topics
from gateway.retention import protocol
from gateway.settings import GatewaySettings
from gateway.signals.samples import LOGEMENT, bail, cal, demande
from gateway.testing.kafka import (
    consume_all,
    consume_topics,
    create_topics,
    produce,
    start_worker,
    stop_worker,
    wait_for_count,
    worker_env,
)
from gateway.topics import canonical_topic, dlq_topic, retention_topic

DATA = Path(__file__).resolve().parents[2] / "gateway" / "data" / "cotation"
KEEP = "085250800000000003"  # Vendée inland, délai due 2026-11-01: signalled by the clock
GONE = "085250800000000004"  # the same délai, ranked 2nd by a CAL: flagged, then erased
SIGNER = "044250100000000001"  # Nantes, ranked 1st, signs the lease: scored, then erased
ERASURE = [(protocol.ERASURE_HEADER, b"run-7")]


def _framed(schema: str, record: dict[str, object]) -> bytes:
    return load_schemas().codec(schema).encode_framed(record)


def test_signals_and_cotation_forget_an_erased_application(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = f"es{uuid.uuid4().hex[:8]}"
    clock = tmp_path / "clock"
    clock.write_text("2026-10-25", encoding="utf-8")
    env = worker_env(
        kafka_bootstrap, prefix=prefix, state_dir=str(tmp_path), web_port=free_port(), partitions=2
    )
    env |= {"GATEWAY_SIGNALS_CLOCK": f"file:{clock}", "GATEWAY_SIGNALS_TICK_INTERVAL": "1"}
    env["GATEWAY_COTATION_GRID"] = str(DATA / "grille-exemple.yaml")
    settings = GatewaySettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, partitions=2)
    ensure_topics(
        kafka_bootstrap, [*ingest_topics(settings), *signals_topics(settings), *cotation_topics(settings)]
    )
    demandes, decisions = canonical_topic("demande", prefix), canonical_topic("decision", prefix)
    create_topics(kafka_bootstrap, [dlq_topic(demandes), dlq_topic(decisions)], partitions=2)
    signal_topic, cotation_topic = canonical_topic("signal", prefix), canonical_topic("cotation", prefix)
    log = tmp_path / "worker.log"
    produce(
        kafka_bootstrap,
        demandes,
        [
            (
                num.encode(),
                _framed(
                    "fr.gp.Demande", demande(num, commune, created=date(2025, 8, 1), renewed=date(2026, 8, 1))
                ),
            )
            for num, commune in ((KEEP, "85191"), (GONE, "85191"), (SIGNER, "44109"))
        ],
    )
    # not erasures: if either deleted GONE's state, its CAL decision would wait for its Demande
    # and it would never be flagged
    produce(kafka_bootstrap, demandes, [(GONE.encode(), None)])
    produce(kafka_bootstrap, decisions, [(GONE.encode(), None, ERASURE)])
    worker = start_worker(env, flows="signals,cotation", log_path=str(log))
    try:
        produce(
            kafka_bootstrap,
            decisions,
            [
                (num.encode(), _framed("fr.gp.Decision", d))
                for num, d in (
                    (SIGNER, cal(SIGNER, 1, logement=LOGEMENT)),
                    (GONE, cal(GONE, 2, logement=LOGEMENT)),
                    (SIGNER, bail(SIGNER, logement=LOGEMENT)),
                )
            ],
        )
        (flagged,) = wait_for_count(kafka_bootstrap, signal_topic, 1, max_wait_s=180)
        assert flagged.key == GONE.encode()
        wait_for_count(kafka_bootstrap, cotation_topic, 1, max_wait_s=180)  # SIGNER's
        produce(kafka_bootstrap, demandes, [(num.encode(), None, ERASURE) for num in (GONE, SIGNER)])
        receipts = wait_for_count(kafka_bootstrap, retention_topic("receipts", prefix), 4, max_wait_s=180)
        clock.write_text("2026-11-01", encoding="utf-8")  # GONE's and KEEP's délai: only KEEP's fires
        signals = wait_for_count(kafka_bootstrap, signal_topic, 4, max_wait_s=180)
        signals = consume_all(kafka_bootstrap, signal_topic, quiet_ms=4000, max_wait_s=60)
        apps_log, dwellings_log = (
            f"{prefix}-app-{APP_TABLE}-changelog",
            f"{prefix}-app-{LOGEMENT_TABLE}-changelog",
        )
        read = consume_topics(kafka_bootstrap, [cotation_topic, apps_log, dwellings_log], quiet_ms=1000)
        cotations, apps, dwellings = read[cotation_topic], read[apps_log], read[dwellings_log]
        dlqs = consume_topics(
            kafka_bootstrap, [dlq_topic(demandes), dlq_topic(decisions)], quiet_ms=500, max_wait_s=5
        )
        dead = [*dlqs[dlq_topic(demandes)], *dlqs[dlq_topic(decisions)]]
    finally:
        stop_worker(worker)
    trace = log.read_text(encoding="utf-8")[-3000:]
    assert sorted((m.key, m.value) for m in receipts) == sorted(
        (num.encode(), store) for num in (GONE, SIGNER) for store in (b"signals", b"cotation")
    ), trace
    assert all(m.headers == ((protocol.ERASURE_HEADER, b"run-7"),) for m in receipts)
    assert dead == [], trace
    # canonical.signal, per application (one partition each): GONE's flag then its tombstone,
    # SIGNER's tombstone, KEEP's délai; GONE's délai, due the same day, never came
    codec = load_schemas().codec("fr.gp.Signal")
    by_key: dict[bytes | None, list[str | None]] = {}
    for m in signals:
        by_key.setdefault(m.key, []).append(
            None if m.value is None else codec.decode(m.value[10:])["typeSignal"]
        )
    assert by_key == {
        GONE.encode(): ["ATTRIBUE_NON_LOGE", None],
        SIGNER.encode(): [None],
        KEEP.encode(): ["DELAI_ANORMAL_DEPASSE"],
    }, trace
    # canonical.cotation: SIGNER's last record is a tombstone
    assert [m.value is None for m in cotations if m.key == SIGNER.encode()][-1:] == [True]
    # the tables' changelogs: the applications' last records are tombstones, and the dwelling that
    # named both is deleted (nobody left in it)
    for num in (GONE, SIGNER):
        mine = [m for m in apps if m.key == num.encode()]
        assert mine and mine[0].value is not None and mine[-1].value is None, (num, trace)
    dwelling = [m for m in dwellings if m.key == f"rpls:{LOGEMENT['rpls']}".encode()]
    assert dwelling and dwelling[0].value is not None and dwelling[-1].value is None, trace
    assert not any(GONE.encode() in (m.value or b"") for m in dwellings[dwellings.index(dwelling[-1]) :])
