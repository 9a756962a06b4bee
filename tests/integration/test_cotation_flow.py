"""Cotation flow on a real broker: applications already on the canonical topic are scored once caught
up, a new label rescores its application, a designation gives an adequacy record."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from gateway.broker.local import free_port
from gateway.codec.avro import decode_single_object, load_schemas
from gateway.cotation.grid import load_grid
from gateway.cotation.score import active_labels, score
from gateway.flows.admin import ensure_topics, ingest_topics
from gateway.flows.cotation import cotation_topics
from gateway.policy import load_policy
from gateway.policy.samples import sample_decision, sample_demande
from gateway.settings import GatewaySettings
from gateway.testing.kafka import produce, start_worker, stop_worker, wait_for_count, worker_env
from gateway.topics import canonical_topic, report_topic

DATA = Path(__file__).resolve().parents[2] / "gateway" / "data" / "cotation"
A, B, C = "044260100000000001", "044260100000000002", "035260100000000009"
REPORTING = DATA.parent / "reporting"
RAD = sample_decision("RADIATION", C)


def _framed(schema: str, record: dict[str, object]) -> bytes:
    return load_schemas().codec(schema).encode_framed(record)


def _decode(value: bytes | None, schema: str) -> dict[str, object]:
    codec = load_schemas().codec(schema)
    return decode_single_object(value or b"", {codec.fingerprint: codec})[1]


def test_cotation_flow_scores_rescored_and_assesses(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = f"cot{uuid.uuid4().hex[:8]}"
    env = worker_env(
        kafka_bootstrap, prefix=prefix, state_dir=str(tmp_path), web_port=free_port(), partitions=2
    )
    env["GATEWAY_COTATION_GRID"] = str(DATA / "grille-exemple.yaml")
    env["GATEWAY_ADEQUACY_RULES"] = str(DATA / "adequation-exemple.yaml")
    env["GATEWAY_REPORT_TERRITORIES"] = str(REPORTING / "territoires-exemple.yaml")
    env["GATEWAY_REPORT_QPV"] = str(REPORTING / "qpv-exemple.csv")
    settings = GatewaySettings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
        partitions=2,
        report_territories=REPORTING / "territoires-exemple.yaml",
    )
    ensure_topics(kafka_bootstrap, [*ingest_topics(settings), *cotation_topics(settings)])
    a = sample_demande(A, ("44109",))
    b = sample_demande(B, ("44109",), violences=True)
    attributed = sample_demande(C, ("35238",))
    produce(
        kafka_bootstrap,
        canonical_topic("demande", prefix),
        [(d["numUnique"].encode(), _framed("fr.gp.Demande", d)) for d in (a, b, attributed)],
    )
    # an attribution (Rennes Métropole, COLACT) already there: the report is published once caught up
    produce(
        kafka_bootstrap, canonical_topic("decision", prefix), [(C.encode(), _framed("fr.gp.Decision", RAD))]
    )
    worker = start_worker(env, flows="cotation", log_path=str(tmp_path / "worker.log"))
    try:
        cotations = wait_for_count(kafka_bootstrap, canonical_topic("cotation", prefix), 2, max_wait_s=180)
        label = sample_decision("LABEL_PRIORITAIRE", A, dateLabel=date(2026, 1, 1))
        designation = sample_decision("DESIGNATION", A)
        produce(
            kafka_bootstrap,
            canonical_topic("decision", prefix),
            [(A.encode(), _framed("fr.gp.Decision", d)) for d in (label, designation)],
        )
        adequacy = wait_for_count(kafka_bootstrap, canonical_topic("adequation", prefix), 1, max_wait_s=120)
        cotations = wait_for_count(kafka_bootstrap, canonical_topic("cotation", prefix), 3, max_wait_s=120)
        lines = wait_for_count(kafka_bootstrap, report_topic("attributions", prefix), 3, max_wait_s=120)
    finally:
        assert stop_worker(worker) == 0, (tmp_path / "worker.log").read_text()
    today = datetime.now(UTC).date()
    grid = load_grid(DATA / "grille-exemple.yaml", load_policy())
    per_key: dict[object, list[dict[str, object]]] = {}
    for m in cotations:  # in order within a partition, so within an application
        per_key.setdefault(m.key, []).append(_decode(m.value, "fr.gp.Cotation"))
    assert len(per_key[A.encode()]) == 2 and len(per_key[B.encode()]) == 1  # caught up, then its label
    assert (per_key[B.encode()][0]["rang"], per_key[A.encode()][0]["rang"]) == (1, 2)
    assert per_key[A.encode()][0]["total"] == score(grid, a, today).total
    assert per_key[A.encode()][1]["total"] == score(grid, a, today, active_labels([label], today)).total
    (assessed,) = [_decode(m.value, "fr.gp.Adequation") for m in adequacy]
    assert assessed["designation"] == designation["eventId"]
    assert {d["id"] for d in assessed["details"]} == {"taille_typologie", "taux_effort", "reste_a_vivre"}
    report = {m.key: _decode(m.value, "fr.gp.LigneAttributions") for m in lines}
    line = report[b"2026;243500139;COLACT;reservataire;dalo_25"]
    assert (line["attributions"], line["dalo"], line["horsQpv"]) == (1, 0, 1)
    assert set(report) == {
        b"2026;243500139;COLACT;reservataire;dalo_25",
        b"2026;243500139;243500139;epci;premier_quartile_hors_qpv_25",
        b"2026;243500139;200000001;bailleur;premier_quartile_hors_qpv_25",
    }
