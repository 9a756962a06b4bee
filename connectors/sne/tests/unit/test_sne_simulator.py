"""Simulator rules: numéro shape, duplicates, anomalies, radiations, polling answers, persistence."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from connectors.sne.answers import parse_answer
from connectors.sne.mtom import SoapFault, build_request, parse_request
from connectors.sne.nuu import build_for_record, to_bytes, with_application
from connectors.sne.simulator.logic import handle
from connectors.sne.simulator.state import Registry, departement_of
from connectors.sne.testing import decision_radiation, demande

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


def _call(
    registry: Registry,
    service: str,
    record: dict[str, Any] | None = None,
    schema: str = "fr.gp.Demande",
    scalar: str | None = None,
) -> Any:
    xml = None
    if record is not None:
        built = build_for_record(schema, record, guichet="G3501", now=NOW)
        assert built is not None
        root = built[1]
        if schema.endswith("Decision"):  # as the sink does: the application, then the radiation
            app = build_for_record(
                "fr.gp.Demande", demande(num_unique=record["numUnique"]), guichet="G3501", now=NOW
            )
            assert app is not None
            root = with_application(root, app[1])
        xml = to_bytes(root)
    req = build_request(service, guichet="G3501", now=NOW, xml=xml, scalar=scalar)
    ctype, body = handle(parse_request(req.headers, req.body), registry)
    return parse_answer(service, ctype, body)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "sim.sqlite")


def test_numeros_have_the_documented_18_character_shape(registry: Registry) -> None:
    a = _call(registry, "numUnique", demande("A", nom="Un"))
    b = _call(registry, "numUnique", demande("B", nom="Deux"))
    c = _call(registry, "numUnique", demande("C", nom="Trois", communes=("44109",)))
    assert (a.num_unique, b.num_unique, c.num_unique) == (
        "035260100000000001",
        "035260100000000002",
        "044260100000000001",
    )
    assert all(re.fullmatch(r"[0-9A-Z]{18}", n or "") for n in (a.num_unique, b.num_unique, c.num_unique))
    assert departement_of("2A004") == "02A" and departement_of("97105") == "971"


def test_same_identity_and_birth_date_is_a_duplicate(registry: Registry) -> None:
    first = _call(registry, "numUnique", demande("A", nom="Lefèvre", prenom="Anaïs"))
    again = _call(registry, "numUnique", demande("B", nom="LEFEVRE", prenom="anais"))
    assert [c for c, _ in again.anomalies] == ["CTRL_DEM_0030"]
    assert again.num_unique == first.num_unique
    doublons = _call(registry, "doublons", demande("C", nom="Lefevre", prenom="Anaïs"))
    assert doublons.doublons == (first.num_unique,)
    assert registry.count() == 1


def test_missing_mandatory_fields_come_back_as_anomalies(registry: Registry) -> None:
    bad = demande(communes=())
    bad["logementRecherche"]["typesLogement"] = []
    answer = _call(registry, "numUnique", bad)
    assert sorted(c for c, _ in answer.anomalies) == ["CTRL_DEM_0007", "CTRL_DEM_0008"]
    assert all(text for _, text in answer.anomalies)
    assert registry.count() == 0


def test_modification_of_an_unknown_number(registry: Registry) -> None:
    answer = _call(registry, "numUnique", demande(num_unique="035260100000009999"))
    assert [c for c, _ in answer.anomalies] == ["CTRL_DEM_0020"]


def test_radiation_with_attribution_then_polling(registry: Registry) -> None:
    num = _call(registry, "numUnique", demande()).num_unique
    rad = _call(registry, "numUnique", decision_radiation(num), schema="fr.gp.Decision")
    assert rad.accepted and rad.num_unique == num
    again = _call(registry, "numUnique", decision_radiation(num), schema="fr.gp.Decision")
    assert again.accepted  # the same radiation twice is acknowledged, not refused
    other = _call(registry, "numUnique", decision_radiation(num, motif="RADABA"), schema="fr.gp.Decision")
    assert [c for c, _ in other.anomalies] == ["CTRL_DEM_0021"]
    mod = _call(registry, "numUnique", demande(num_unique=num))
    assert [c for c, _ in mod.anomalies] == ["CTRL_DEM_0021"]
    polled = _call(registry, "demandesRadieesDepuisLe", scalar="2020-01-01T00:00:00.0+01:00")
    assert [(r.num_unique, r.motif) for r in polled.radiations] == [(num, "RADATT")]
    later = _call(registry, "demandesRadieesDepuisLe", scalar="2999-01-01T00:00:00.0+01:00")
    assert later.radiations == ()


def test_new_dalo_decisions_are_served(registry: Registry) -> None:
    registry.add_dalo("035260100000000001", "ACTIF", "2026-11-02", "03", "35")
    answer = _call(registry, "nouveauxDaloDepuisLe", scalar="2026-01-01T00:00:00.0+00:00")
    assert [(d.num_unique, d.statut, d.typologie, d.commission) for d in answer.dalo] == [
        ("035260100000000001", "ACTIF", "03", "35"),
    ]


def test_bad_date_parameter_is_a_fault(registry: Registry) -> None:
    req = build_request("nouveauxDaloDepuisLe", guichet="G3501", now=NOW, scalar="hier")
    with pytest.raises(SoapFault):
        handle(parse_request(req.headers, req.body), registry)


def test_state_survives_a_restart(tmp_path: Path) -> None:
    first = Registry(tmp_path / "sim.sqlite")
    num = _call(first, "numUnique", demande()).num_unique
    first.close()
    second = Registry(tmp_path / "sim.sqlite")
    assert second.get(num or "") is not None
    nxt = _call(second, "numUnique", demande("B", nom="Autre")).num_unique
    assert nxt == "035260100000000002"
