"""The cotation worker's decisions without Kafka: what is published when, and how it is framed."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from gateway.codec.avro import decode_single_object, load_schemas
from gateway.cotation.adequacy import load_rules
from gateway.cotation.grid import load_grid
from gateway.cotation.state import ADEQUATION, COTATION, CotationState
from gateway.flows.cotation import encode_output
from gateway.policy import load_policy
from gateway.policy.samples import sample_decision, sample_demande

DATA = Path(__file__).resolve().parents[3] / "gateway" / "data" / "cotation"
GRID = load_grid(DATA / "grille-exemple.yaml", load_policy())
RULES = load_rules(DATA / "adequation-exemple.yaml")
DAY1, DAY2 = date(2026, 3, 1), date(2026, 3, 2)


def test_catch_up_is_silent_then_daily_then_changes_only() -> None:
    state = CotationState(GRID, RULES, live=False)
    a = sample_demande("044260100000000001", ("44109",))
    b = sample_demande("044260100000000002", ("44109",), violences=True)
    assert state.on_demande(a, DAY1) == [] and state.on_demande(b, DAY1) == []
    state.live = True
    first = state.daily(DAY1)
    assert sorted(r["numUnique"] for _, r in first) == [a["numUnique"], b["numUnique"]]
    ranks = {r["numUnique"]: r["rang"] for _, r in first}
    assert ranks[b["numUnique"]] == 1  # violences points put b first among T3 applications
    assert state.daily(DAY1) == []  # once a day
    label = sample_decision("LABEL_PRIORITAIRE", a["numUnique"], dateLabel=date(2026, 2, 1))
    ((schema, rec),) = state.on_decision(label, DAY1)
    assert schema == COTATION and rec["numUnique"] == a["numUnique"]
    designation = sample_decision("DESIGNATION", a["numUnique"])
    ((schema, adequacy),) = state.on_decision(designation, DAY1)
    assert schema == ADEQUATION and adequacy["designation"] == designation["eventId"]
    assert len(state.daily(DAY2)) == 2


def test_application_leaving_the_territory_is_dropped() -> None:
    state = CotationState(GRID)
    a = sample_demande("044260100000000001", ("44109",))
    assert len(state.on_demande(a, DAY1)) == 1
    assert state.on_demande(sample_demande("044260100000000001", ("35238",)), DAY1) == []
    assert state.daily(DAY1) == []


def test_outputs_are_framed_for_the_canonical_topics() -> None:
    state = CotationState(GRID)
    ((schema, record),) = state.on_demande(sample_demande("044260100000000001", ("44109",)), DAY1)
    schemas = load_schemas()
    topic, key, value, headers = encode_output(schemas, schema, record, "gp")
    assert (topic, key) == ("gp.canonical.cotation", b"044260100000000001")
    codec = schemas.codec(COTATION)
    _, decoded = decode_single_object(value, {codec.fingerprint: codec})
    assert decoded["total"] == record["total"]
    names = dict(headers)
    assert names["ce_type"] == b"fr.gp.Cotation.v1" and names["gp.schema.name"] == b"fr.gp.Cotation"
    again = encode_output(schemas, schema, record, "gp")
    assert dict(again[3])["ce_id"] == names["ce_id"]  # the same cotation recomputed has the same id
