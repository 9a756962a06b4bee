"""Provenance bound to the source, on the real broker: each input on its source's raw topic; one
claiming an organisation its source does not speak for is dead-lettered with the reason; the named
parties of the others gain scope only under the named-party rule (docs/policy.md)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from gateway.broker.local import free_port
from gateway.flows.admin import ensure_topics, ingest_topics
from gateway.flows.ingest import NOT_SPOKEN_FOR
from gateway.flows.route import route_topics
from gateway.model.deadletter import ERR, problems_from_headers
from gateway.policy import load_policy
from gateway.settings import GatewaySettings
from gateway.testing.kafka import consume_all, produce, start_worker, stop_worker, wait_for_count, worker_env
from gateway.topics import actor_topic, canonical_topic, dlq_topic, source_raw_topic

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CIA, STAT, APPLICANT = "CIA-243500139", "STAT-35", "DEM-7K2Q9X4M"
NANTES, RENNES = "044260100000000009", "035260100000000007"


def _cdc(event_id: str, num: str, kind: str, *, origine: str, saisie: str, donnees: dict[str, Any]) -> bytes:
    when = "2026-03-27T09:00:00+01:00"
    after = {
        "id": event_id, "num_unique": num, "type_evenement": kind, "date_evenement": when,
        "origine": origine, "saisie_par": saisie, "date_saisie": when, "donnees": json.dumps(donnees),
    }  # fmt: skip
    source = {
        "version": "2.7.3.Final",
        "connector": "mysql",
        "name": "erp",
        "db": "prem",
        "table": "evenement",
    }
    return json.dumps(
        {"before": None, "after": after, "source": source, "op": "c", "ts_ms": 1774000003007}
    ).encode()


def _avis(num: str, *, saisie: str) -> bytes:
    donnees = {
        "typeCommission": "CIA_COORDINATION",
        "commission": CIA,
        "dateAvis": "2026-03-18",
        "avis": "FAVORABLE",
    }
    return _cdc(f"E-{saisie}-avis", num, "AVIS_COMMISSION", origine=CIA, saisie=saisie, donnees=donnees)


def _inscription(num: str, *, saisie: str) -> bytes:
    donnees = {"dateCommission": "2026-04-09", "commission": CIA}
    return _cdc(f"E-{saisie}-cal", num, "INSCRIPTION_CAL", origine=saisie, saisie=saisie, donnees=donnees)


def _pieces(num: str, *, origine: str, saisie: str) -> bytes:
    donnees = {"pieces": ["avis d'imposition"], "dateLimite": "2026-04-03"}
    return _cdc(f"E-{saisie}-pcs", num, "PIECES_DEMANDEES", origine=origine, saisie=saisie, donnees=donnees)


def test_inputs_are_bound_to_their_source(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = f"prov{uuid.uuid4().hex[:8]}"
    settings = GatewaySettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, partitions=1)
    ensure_topics(kafka_bootstrap, [*ingest_topics(settings), *route_topics(settings, load_policy())])
    env = worker_env(
        kafka_bootstrap, prefix=prefix, state_dir=str(tmp_path), web_port=free_port(), partitions=1
    )
    nantes_cdc = source_raw_topic("cdc-json", "nantes-logement-erp", prefix)
    rennes_cdc = source_raw_topic("cdc-json", "rennes-habitat-erp", prefix)
    siao = source_raw_topic("siao-json", "siao-35", prefix)
    spoofed = (SAMPLES / "cdc-json" / "erp-rennes-demande-creation.json").read_bytes()  # entered by 200000001
    worker = start_worker(env, flows="ingest,route", log_path=str(tmp_path / "worker.log"))
    try:
        # an input on S's topic for an organisation S speaks for flows, marked with S
        produce(
            kafka_bootstrap, siao, [(b"o", (SAMPLES / "siao-json" / "siao35-orientation.json").read_bytes())]
        )
        # an input from S (Nantes Logement's ERP) claiming T (Rennes Habitat) as saisie: dead-lettered
        produce(kafka_bootstrap, nantes_cdc, [(b"spoof", spoofed)])
        # a Nantes landlord's event naming the Rennes CIA commission; a Rennes landlord's inscription at
        # it; a Nantes landlord's event naming the demo applicant as the organisation that caused it
        produce(kafka_bootstrap, nantes_cdc, [(b"a", _avis(NANTES, saisie="200000002"))])
        produce(kafka_bootstrap, rennes_cdc, [(b"b", _inscription(RENNES, saisie="200000001"))])
        produce(kafka_bootstrap, nantes_cdc, [(b"c", _pieces(NANTES, origine=APPLICANT, saisie="200000002"))])

        [dead] = consume_all(kafka_bootstrap, dlq_topic(nantes_cdc), expect=1, quiet_ms=2000, max_wait_s=120)
        decisions = consume_all(
            kafka_bootstrap, canonical_topic("decision", prefix), expect=4, quiet_ms=2000, max_wait_s=120
        )
        wait_for_count(kafka_bootstrap, actor_topic(STAT, prefix), 4, max_wait_s=120)  # every decision routed
        cia = consume_all(kafka_bootstrap, actor_topic(CIA, prefix), quiet_ms=3000, max_wait_s=60)
        applicant = consume_all(kafka_bootstrap, actor_topic(APPLICANT, prefix), quiet_ms=1000, max_wait_s=30)
    finally:
        stop_worker(worker)

    assert dead.value == spoofed  # the original bytes, nothing lost
    assert dead.header(ERR + "topic") == nantes_cdc.encode()
    assert [(p.path, p.reason) for p in problems_from_headers(dead.headers)] == [
        ("provenance.saisie", NOT_SPOKEN_FOR)
    ]
    assert all(b"200000001" not in (v or b"") for _, v in dead.headers)  # the reason, never the value
    by_source = sorted((m.header("gp.source") or b"").decode() for m in decisions)
    assert by_source == ["nantes-logement-erp", "nantes-logement-erp", "rennes-habitat-erp", "siao-35"]
    assert [m.key for m in cia] == [RENNES.encode()]  # the Rennes inscription only, not the Nantes avis
    assert applicant == []  # named as origine of another household's event: nothing
