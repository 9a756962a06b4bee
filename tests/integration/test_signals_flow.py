"""Signals flow on a real broker, with the route flow: a ranked CAL decision with two candidates and
the lease signed by the first -> the second household's actors receive ATTRIBUE_NON_LOGE, audited;
the clock moved past a délai -> DELAI_ANORMAL_DEPASSE with no new input event."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

from gateway.broker.local import free_port
from gateway.codec.avro import load_schemas
from gateway.flows.admin import ensure_topics, ingest_topics
from gateway.flows.route import route_topics
from gateway.flows.signals import signals_topics
from gateway.policy import load_policy
from gateway.settings import GatewaySettings
from gateway.signals.samples import LOGEMENT, bail, cal, decision, demande
from gateway.testing.kafka import (
    consume_all,
    consume_topics,
    produce,
    start_worker,
    stop_worker,
    wait_for_count,
    worker_env,
)
from gateway.topics import actor_topic, audit_topic, canonical_topic

FIRST, SECOND, VENDEE = "044250100000000001", "044250100000000002", "085250800000000003"
BAILLEUR_44, ALS = "200000002", "824541148"


def _framed(schema: str, record: dict[str, object]) -> bytes:
    return load_schemas().codec(schema).encode_framed(record)


def _signals(bootstrap: str, prefix: str, count: int) -> list[dict[str, object]]:
    codec = load_schemas().codec("fr.gp.Signal")
    out = []
    for m in wait_for_count(bootstrap, canonical_topic("signal", prefix), count, max_wait_s=180):
        assert m.value is not None and m.value[2:10] == codec.fingerprint
        out.append(dict(codec.decode(m.value[10:])))
    return out


def test_attribue_non_loge_reaches_the_households_actors_and_time_fires_the_delai(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"sig{uuid.uuid4().hex[:8]}"
    clock = tmp_path / "clock"
    clock.write_text("2026-10-25", encoding="utf-8")
    env = worker_env(
        kafka_bootstrap, prefix=prefix, state_dir=str(tmp_path), web_port=free_port(), partitions=2
    )
    env |= {"GATEWAY_SIGNALS_CLOCK": f"file:{clock}", "GATEWAY_SIGNALS_TICK_INTERVAL": "1"}
    settings = GatewaySettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, partitions=2)
    ensure_topics(
        kafka_bootstrap,
        [*ingest_topics(settings), *route_topics(settings, load_policy()), *signals_topics(settings)],
    )
    worker = start_worker(env, flows="signals,route", log_path=str(tmp_path / "worker.log"))
    try:
        demandes = [
            demande(FIRST, renewed=date(2026, 9, 1)),
            demande(SECOND, renewed=date(2026, 9, 1)),
            # Vendée, inland: délai of 15 months from 2025-08-01 -> due 2026-11-01
            demande(VENDEE, "85191", created=date(2025, 8, 1), renewed=date(2026, 8, 1)),
        ]
        produce(
            kafka_bootstrap,
            canonical_topic("demande", prefix),
            [(str(d["numUnique"]).encode(), _framed("fr.gp.Demande", d)) for d in demandes],
        )
        designation = decision(
            "DESIGNATION", SECOND, when=date(2026, 9, 25), origine=ALS, designataire=ALS, logement=LOGEMENT
        )
        decisions = [
            (SECOND, designation),
            (FIRST, cal(FIRST, 1, logement=LOGEMENT)),
            (SECOND, cal(SECOND, 2, logement=LOGEMENT)),
            (FIRST, bail(FIRST, logement=LOGEMENT)),
        ]
        produce(
            kafka_bootstrap,
            canonical_topic("decision", prefix),
            [
                (num.encode(), _framed("fr.gp.Decision", d), [("ce_id", f"d{i}".encode())])
                for i, (num, d) in enumerate(decisions)
            ],
        )
        flagged = _signals(kafka_bootstrap, prefix, 1)
        assert [(s["typeSignal"], s["numUnique"]) for s in flagged] == [("ATTRIBUE_NON_LOGE", SECOND)]
        # routed to the second household's bailleur and to the réservataire that designated it, audited
        read = consume_topics(
            kafka_bootstrap,
            [actor_topic(a, prefix) for a in (BAILLEUR_44, ALS)],
            quiet_ms=1500,
            max_wait_s=90,
        )
        for actor in (BAILLEUR_44, ALS):
            got = [
                m
                for m in read[actor_topic(actor, prefix)]
                if (m.header("gp.view.schema") or b"").startswith(b"fr.gp.view.Signal_")
            ]
            assert [m.key for m in got] == [SECOND.encode()], actor
        audit_codec = load_schemas().codec("fr.gp.AuditEntry")
        entries = [
            audit_codec.decode(m.value[10:])
            for m in consume_all(kafka_bootstrap, audit_topic(prefix), quiet_ms=1500, max_wait_s=60)
            if m.value
        ]
        audited = {(e["actor"], e["numUnique"]) for e in entries if e["schema"] == "fr.gp.Signal"}
        assert {(BAILLEUR_44, SECOND), (ALS, SECOND)} <= audited
        assert not any(e["numUnique"] == FIRST for e in entries if e["schema"] == "fr.gp.Signal")
        # no DELAI yet (the clock is before 2026-11-01); move the clock: no new input, the signal comes
        assert [s["typeSignal"] for s in _signals(kafka_bootstrap, prefix, 1)] == ["ATTRIBUE_NON_LOGE"]
        clock.write_text("2026-11-01", encoding="utf-8")
        after = _signals(kafka_bootstrap, prefix, 2)
        delai = [s for s in after if s["typeSignal"] == "DELAI_ANORMAL_DEPASSE"]
        assert [(s["numUnique"], s["dateEffet"]) for s in delai] == [(VENDEE, date(2026, 11, 1))]
        assert len(after) == 2
    finally:
        stop_worker(worker)
