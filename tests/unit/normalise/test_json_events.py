from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from gateway.codec.avro import load_schemas
from gateway.normalise import normalise

from .helpers import SAMPLES, only_record, problems, records, rejections, round_trip

WHEN = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def siao(value: Any) -> list:  # type: ignore[type-arg]
    return normalise(
        "siao-json", value if isinstance(value, bytes) else json.dumps(value).encode(), received_at=WHEN
    )


def comed(value: Any) -> list:  # type: ignore[type-arg]
    return normalise(
        "comed-json", value if isinstance(value, bytes) else json.dumps(value).encode(), received_at=WHEN
    )


LABEL = {
    "idEvenement": "SIAO35-1",
    "typeEvenement": "LABEL_PRIORITAIRE",
    "siao": "300000035",
    "numUnique": "035260100000000011",
    "dateEvenement": "2026-02-24T10:15:00+01:00",
    "label": {"categorie": "MAL_LOGE", "dateLabel": "2026-02-24", "contingentsEligibles": ["PPRIOR"]},
}


def test_siao_orientation_sample() -> None:
    r = round_trip(only_record(siao((SAMPLES / "siao-json" / "siao35-orientation.json").read_bytes())))
    assert r["typeEvenement"] == "ORIENTATION_SIAO"
    assert r["orientation"] == {
        "siao": "300000035",
        "dateOrientation": date(2026, 2, 10),
        "enHebergement": True,
        "departement": "35",
        "structure": "CHRS Le Relais, Rennes",
    }
    assert r["provenance"]["origine"] == "300000035" and r["provenance"]["systemeSource"] == "siao-json"


@pytest.mark.parametrize("categorie", load_schemas().enum_symbols("CategoriePrioritaire"))
def test_label_categories_go_to_their_field(categorie: str) -> None:
    event = {**LABEL, "label": {**LABEL["label"], "categorie": categorie}}
    r = round_trip(only_record(siao(event)))
    field = (
        "labelViolences"
        if categorie in {"VIOLENCES_FAMILIALES", "MARIAGE_FORCE", "PROSTITUTION", "TRAITE"}
        else "labelSante"
        if categorie in {"HANDICAP", "SORTANT_ACT"}
        else "label"
    )
    assert r[field]["categorie"] == categorie
    assert r[field]["organismeLabellisant"] == "300000035"  # the SIAO labels
    others = {"label", "labelSante", "labelViolences"} - {field}
    assert all(r[o] is None for o in others)


def test_siao_samples_array_and_json_lines() -> None:
    out = siao((SAMPLES / "siao-json" / "siao35-labels.json").read_bytes())
    assert [r.record["labelViolences"] is not None for r in records(out)] == [True, False, False]
    lines = siao((SAMPLES / "siao-json" / "siao35-events.jsonl").read_bytes())
    assert [r.record["typeEvenement"] for r in records(lines)] == ["ORIENTATION_SIAO", "LABEL_PRIORITAIRE"]


def test_siao_bad_events_are_rejected_one_by_one() -> None:
    out = siao((SAMPLES / "bad" / "siao-evenements-invalides.json").read_bytes())
    assert [getattr(o, "locator", None) for o in out] == ["$[0]", "$[1]", None]
    assert problems(out) >= {
        ("numUnique", "missing"),
        ("label.categorie", "unknown code for CategoriePrioritaire (L441-1)"),
        ("label.contingentsEligibles[0]", "unknown code for ListeTypeReservataire"),
    }
    assert rejections(out)[0].fragment is not None


def test_siao_event_id_is_deterministic() -> None:
    a, b = only_record(siao(LABEL)), only_record(siao(LABEL))
    assert a.record["eventId"] == b.record["eventId"]
    c = only_record(siao({**LABEL, "idEvenement": "SIAO35-2"}))
    assert c.record["eventId"] != a.record["eventId"]


def test_comed_decisions_sample() -> None:
    out = comed((SAMPLES / "comed-json" / "comed35-2026-03-12.json").read_bytes())
    recs = [round_trip(r) for r in records(out)]
    assert len(recs) == 3
    assert [r["decisionDalo"]["sens"] for r in recs] == [
        "FAVORABLE",
        "REORIENTATION_HEBERGEMENT",
        "DEFAVORABLE",
    ]
    first = recs[0]
    assert first["typeEvenement"] == "DECISION_DALO"
    assert first["decisionDalo"]["dateLimiteRelogement"] == date(2026, 9, 12)
    assert first["provenance"]["origine"] == "130000035"
    assert first["provenance"]["dateEvenement"] == datetime(2026, 3, 11, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize("sens", load_schemas().enum_symbols("SensDecisionDalo"))
def test_every_comed_outcome(sens: str) -> None:
    decision = json.loads((SAMPLES / "comed-json" / "comed35-2026-04-decision-unique.json").read_text())
    decision["sens"] = sens
    assert only_record(comed(decision)).record["decisionDalo"]["sens"] == sens


def test_comed_unknown_codes_impossible_date() -> None:
    out = comed((SAMPLES / "bad" / "comed-codes-inconnus.json").read_bytes())
    assert problems(out) >= {
        ("dateDecision", "impossible date"),
        ("sens", "unknown code for SensDecisionDalo"),
        ("statut", "unknown code for ListeStatutDalo"),
    }
    assert problems(comed({"numUnique": "x"})) >= {
        ("idDecision", "missing"),
        ("secretariat", "missing"),
        ("dateDecision", "missing"),
        ("numUnique", "bad format"),
    }
