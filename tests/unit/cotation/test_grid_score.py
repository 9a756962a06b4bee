"""Cotation grids: hand-computed scores on varied households, classes of the criteria, bad grids."""

from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import yaml
from gateway.codec.avro import load_schemas
from gateway.cotation.batch import score_all
from gateway.cotation.grid import load_grid, parse_grid
from gateway.cotation.score import active_labels, score, to_record
from gateway.errors import ConfigError
from gateway.policy import Router, load_policy
from gateway.policy.samples import sample_decision, sample_demande
from gateway.policy.scope import update_state
from gateway.policy.views import schema_leaf_paths

POLICY = load_policy()
NOW = date(2026, 3, 1)
GRID = yaml.safe_load(
    """
id: test
epci: "244400404"
version: 3
criteria:
  - id: anciennete
    label: 2 points par mois
    condition: true
    points: "double(calcul.anciennete_mois) * 2.0"
  - id: dalo
    label: DALO
    condition: 'demande.dalo != null && demande.dalo.statut == "ACTIF"'
    points: 300
  - id: label
    label: Labellisé sans logement
    when: 'labels.priorite.exists(l, l.categorie == "SANS_LOGEMENT")'
    points: 150
  - {id: violences, label: Violences, condition: demande.violencesFamiliales, points: 200}
  - id: handicap
    label: Handicap
    condition: 'demande.motifsSante.exists(m, m == "HANDICAP")'
    points: 100
  - {id: suroccupation, label: Sur-occupation, condition: calcul.personnes_par_piece > 2.0, points: 80}
  - {id: local, label: EPCI, condition: '"44109" in demande.logementRecherche.communes', points: 20}
  - {id: quartile, label: Premier quartile, condition: calcul.ressources_par_uc < 10000.0, points: 50}
"""
)


def _household(**changes: Any) -> dict[str, Any]:
    d = sample_demande("044260100000000001", ("44109",), handicap=False)
    d["cotitulaires"] = []
    d["personnesANaitre"] = None
    d["demandeur"]["ressourcesSante"] = []
    d.update(changes)
    return d


def _h1() -> dict[str, Any]:
    """Created 2024-01-15 (25 whole months on 2026-03-01), DALO actif, 5 occupants in a T2, wants
    44109, 1200 €/month alone with children of 7 and 10: 14400 / 1.6 UC = 9000 €/UC/year."""
    d = _household(
        dateCreationDemande=date(2024, 1, 15),
        dalo={"statut": "ACTIF", "dateDecision": None, "typologie": None},
    )
    d["demandeur"]["ressourcesRecues"] = [{"code": "SAL", "montant": Decimal("1200.00")}]
    d["personnesACharge"] = [
        {"nom": "X", "prenom": "A", "dateNaissance": date(2018, 6, 1), "sexe": None, "lienParente": None},
        {"nom": "X", "prenom": "B", "dateNaissance": date(2015, 6, 1), "sexe": None, "lienParente": None},
    ]
    d["logementActuel"] = dict(d["logementActuel"], nombreHabitant=5, typeLogementActuel="T2")
    return d


def _h2() -> dict[str, Any]:
    """Created 2026-02-10 (0 months), violences, handicap, no current dwelling, no resources declared,
    wants Rennes."""
    d = _household(
        numUnique="035260100000000002",
        dateCreationDemande=date(2026, 2, 10),
        violencesFamiliales=True,
        motifsSante=["HANDICAP"],
        logementActuel=None,
    )
    d["logementRecherche"] = dict(d["logementRecherche"], communes=["35238"])
    d["demandeur"]["ressourcesRecues"] = []
    return d


def _points(scored: Any) -> dict[str, tuple[float, str]]:
    return {c.id: (p, why) for c, p, why, _ in scored.criteria}


def test_hand_computed_totals_on_varied_households() -> None:
    grid = parse_grid(GRID, POLICY)
    label = sample_decision(
        "LABEL_PRIORITAIRE", "044260100000000001", categorie="SANS_LOGEMENT", dateLabel=date(2026, 1, 1)
    )
    s1 = score(grid, _h1(), NOW, active_labels([label], NOW))
    assert _points(s1) == {
        "anciennete": (50.0, "condition met"),
        "dalo": (300.0, "condition met"),
        "label": (150.0, "condition met"),
        "violences": (0.0, "condition not met"),
        "handicap": (0.0, "condition not met"),
        "suroccupation": (80.0, "condition met"),
        "local": (20.0, "condition met"),
        "quartile": (50.0, "condition met"),
    }
    assert s1.total == 650.0
    s2 = score(grid, _h2(), NOW)
    p2 = _points(s2)
    assert s2.total == 300.0  # 0 seniority + 200 violences + 100 handicap
    assert p2["suroccupation"] == (0.0, "missing: calcul.personnes_par_piece")
    assert p2["quartile"] == (0.0, "missing: calcul.ressources_par_uc")
    assert p2["dalo"] == (0.0, "condition not met") and p2["local"] == (0.0, "condition not met")


def test_expired_label_and_caduc_dalo_score_nothing() -> None:
    grid = parse_grid(GRID, POLICY)
    d = _h1()
    d["dalo"] = {"statut": "CADUC", "dateDecision": None, "typologie": None}
    expired = sample_decision(
        "LABEL_PRIORITAIRE", categorie="SANS_LOGEMENT", dateLabel=date(2025, 1, 1), dateFin=date(2026, 2, 28)
    )
    p = _points(score(grid, d, NOW, active_labels([expired], NOW)))
    assert p["dalo"][0] == 0.0 and p["label"][0] == 0.0


def test_boolean_conditions() -> None:
    raw = {
        "criteria": [
            {"id": "on", "label": "on", "condition": True, "points": 3},
            {"id": "off", "label": "off", "when": False, "points": 5},
        ]
    }
    scored = score(parse_grid(raw, POLICY), _h1(), NOW)
    assert scored.total == 3.0 and [m for *_, m in scored.criteria] == [True, False]


def test_null_field_inside_an_expression_scores_zero_with_its_path() -> None:
    grid = parse_grid(
        {
            "criteria": [
                {"id": "s", "label": "s", "condition": "demande.logementActuel.surface < 9.0", "points": 5}
            ]
        },
        POLICY,
    )
    d = _h1()
    d["logementActuel"] = dict(d["logementActuel"], surface=None)
    ((_, pts, why, met),) = score(grid, d, NOW).criteria
    assert (pts, why, met) == (0.0, "missing: logementActuel.surface", None)


def test_each_criterion_is_classified_like_the_data_it_reads() -> None:
    groups = {c.id: c.group for c in parse_grid(GRID, POLICY).criteria}
    assert groups["dalo"] == groups["label"] == groups["local"] == groups["anciennete"] == "priorite"
    assert groups["violences"] == "violences"
    assert groups["handicap"] == "sante_handicap"
    assert groups["quartile"] == "sante_handicap"  # resources per UC include AAH amounts
    assert groups["suroccupation"] not in ("priorite", "logement_actuel")  # statistique may not see occupants


def test_record_is_valid_and_a_reservataire_sees_no_violence_or_health_points() -> None:
    grid = parse_grid(GRID, POLICY)
    demande = _h2()
    record = to_record(grid, score(grid, demande, NOW), NOW)
    load_schemas().codec("fr.gp.Cotation").encode_checked(record)
    assert [c["id"] for c in record["criteres"]["violences"]] == ["violences"]
    router = Router(POLICY)
    state = update_state(None, "fr.gp.Demande", demande)
    result = router.route("fr.gp.Cotation", b"k", record, state)
    reservataire = next(a for a in POLICY.actors.values() if a.role == "reservataire")
    delivery = result.for_actor(reservataire.id)
    assert delivery is not None
    paths = schema_leaf_paths(delivery.view.avro)
    assert "total" in paths
    assert not any(p.startswith(("criteres.violences", "criteres.sante_handicap")) for p in paths)
    bailleur = next(a for a in POLICY.actors.values() if a.role == "bailleur" and "35" in a.departements)
    full = result.for_actor(bailleur.id)
    assert full is not None and any(
        p.startswith("criteres.violences") for p in schema_leaf_paths(full.view.avro)
    )


def test_position_and_indicative_wait_among_similar_applications() -> None:
    grid = parse_grid(GRID, POLICY)
    a, b = _h1(), _household(numUnique="044260100000000009", dateCreationDemande=date(2025, 3, 1))
    attributed = _household(
        numUnique="044260100000000007", dateCreationDemande=date(2024, 1, 1), statut="RADIEE"
    )
    lease = sample_decision("RADIATION", "044260100000000007")
    lease["radiation"]["attribution"]["dateSignatureBail"] = date(2025, 7, 1)
    lease["radiation"]["attribution"]["logement"]["typeLogement"] = "T3"
    records = {
        r["numUnique"]: r
        for r in score_all(grid, {d["numUnique"]: d for d in (a, b, attributed)}, [lease], NOW)
    }
    assert set(records) == {a["numUnique"], b["numUnique"]}  # the radiated application is not scored
    assert (records[a["numUnique"]]["rang"], records[a["numUnique"]]["demandesSimilaires"]) == (1, 2)
    assert records[b["numUnique"]]["rang"] == 2
    assert records[a["numUnique"]]["attenteIndicativeMois"] == 18  # 2024-01-01 -> 2025-07-01


@pytest.mark.parametrize(
    ("criterion", "reason"),
    [
        ({"condition": "demande.nope > 1"}, "no field 'nope'"),
        ({"condition": "demande.logementActuel.surface +"}, "does not compile"),
        ({"condition": "calcul.inconnu > 1"}, "unknown derived value"),
        ({"condition": "1 + 2"}, "must be a bool expression"),
        ({"points": '"beaucoup"'}, "must be a number expression"),
        ({"condition": "demande.cotitulaires.nom == 'X'"}, "is a list"),
        ({"condition": "labels.autre.size() > 0"}, "unknown label kind"),
    ],
)
def test_bad_criterion_is_refused_with_its_reason(criterion: dict[str, Any], reason: str) -> None:
    base = {"id": "c", "label": "c", "condition": "true", "points": 1} | criterion
    with pytest.raises(ConfigError) as err:
        parse_grid({"criteria": [base]}, POLICY)
    assert any(reason in p.reason for p in err.value.problems), err.value.problems


def test_bad_grid_lists_every_problem() -> None:
    raw = copy.deepcopy(GRID)
    raw["criteria"][0]["condition"] = "demande.absent"
    raw["criteria"][1]["points"] = "demande.dalo.statut +"
    raw["criteria"].append(dict(raw["criteria"][2]))  # duplicate id
    with pytest.raises(ConfigError) as err:
        parse_grid(raw, POLICY)
    where = [p.path for p in err.value.problems]
    assert any(w.startswith("criteria[0]") for w in where)
    assert any(w.startswith("criteria[1]") for w in where)
    assert any("duplicate" in p.reason for p in err.value.problems)
    with pytest.raises(ConfigError) as err2:
        parse_grid({"criteres": []}, POLICY)
    assert any(p.path == "criteria" for p in err2.value.problems)


def test_shipped_grids_load_and_reasons_carry_no_personal_value(tmp_path: Any) -> None:
    from gateway.cotation import grid as grid_mod  # noqa: PLC0415

    shipped = grid_mod.__file__.replace("cotation/grid.py", "data/cotation/grille-exemple.yaml")
    grid = load_grid(__import__("pathlib").Path(shipped), POLICY)
    assert len(grid.criteria) >= 6
    d = _h1()
    d["logementActuel"] = dict(d["logementActuel"], nombreHabitant=None)
    reasons = " ".join(why for _, _, why, _ in score(grid, d, NOW).criteria)
    for personal in ("DEMO", "Alice", "1200", "0600000000", "2018-06-01"):
        assert personal not in reasons
    bad = tmp_path / "g.yaml"
    bad.write_text("criteria: [ {id: x", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_grid(bad, POLICY)
    assert err.value.problems[0].reason == "not valid YAML"


def test_score_command_prints_one_json_line_per_application() -> None:
    import json  # noqa: PLC0415

    from click.testing import CliRunner  # noqa: PLC0415
    from gateway.cli import cli  # noqa: PLC0415

    args = ["cotation", "score", "--grid", "gateway/data/cotation/grille-exemple.yaml", "--now", "2026-06-01",
            "sne-xml:samples/sne-xml/demande-mod-nantes-etranger.xml"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    (line,) = [json.loads(x) for x in result.output.splitlines()]
    assert set(line) == {"key", "total", "criteria"} and line["key"] == "044260100000000001"
    assert [c["id"] for c in line["criteria"]][:3] == ["anciennete", "dalo", "label_prioritaire"]
    assert line["total"] == sum(c["points"] for c in line["criteria"])
    bad = CliRunner().invoke(
        cli, ["cotation", "score", "--grid", "gateway/data/cotation/grille-exemple.yaml", "xml:nope"]
    )
    assert isinstance(bad.exception, ConfigError)
    assert "FORMAT:FILE" in bad.exception.problems[0].reason


def test_the_one_evaluation_fast_path_scores_like_one_evaluation_per_criterion() -> None:
    import dataclasses  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from gateway.testing.samples import canonical_samples  # noqa: PLC0415

    bench = load_grid(Path(__file__).resolve().parents[3] / "bench" / "data" / "grille-60.yaml", POLICY)
    assert bench.combined is not None and len(bench.criteria) == 60
    slow = dataclasses.replace(bench, combined=None)
    demandes = [r for s, r in canonical_samples() if s == "fr.gp.Demande"] + [_h1(), _h2()]
    for d in demandes:
        for when in (NOW, date(2030, 1, 1)):
            fast_s, slow_s = score(bench, d, when), score(slow, d, when)
            assert [(c.id, p, w, m) for c, p, w, m in fast_s.criteria] == [
                (c.id, p, w, m) for c, p, w, m in slow_s.criteria
            ]
    with pytest.raises(ConfigError) as err:
        parse_grid({"criteria": [{"id": "x", "label": "x", "condition": "gp_ok[0]", "points": 1}]}, POLICY)
    assert "reserved" in err.value.problems[0].reason


def test_paths_read_through_macros_decide_the_class_and_unknown_forms_are_refused() -> None:
    from gateway.cotation.expr import reads  # noqa: PLC0415

    roots = frozenset({"demande", "calcul", "labels", "signaux", "now"})
    got = {
        r.path
        for r in reads('demande.cotitulaires.exists(c, c.ressourcesRecues.exists(r, r.code == "SAL"))', roots)
    }
    assert "demande.cotitulaires[].ressourcesRecues[].code" in got
    two = reads("demande.cotitulaires.all(i, c, c.revenuFiscal.montantMoins1 > 0.0)", roots)
    assert "demande.cotitulaires[].revenuFiscal.montantMoins1" in {r.path for r in two}
    cond = "demande.cotitulaires.exists(c, c.revenuFiscal.montantMoins1 > 1e4 && 0x10 > 1)"
    resources = {"id": "r", "label": "r", "points": 1, "condition": cond}
    (criterion,) = parse_grid({"criteria": [resources]}, POLICY).criteria
    assert criterion.group == "ressources"  # not identite: the siao may not see it
    hidden = {"id": "h", "label": "h", "points": 1,
              "condition": '(demande.motifs + demande.motifs).exists(m, m == "AUTRE")'}  # fmt: skip
    with pytest.raises(ConfigError) as err:
        parse_grid({"criteria": [hidden]}, POLICY)
    assert "cannot tell what 'm' reads" in err.value.problems[0].reason
