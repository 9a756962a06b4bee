"""Household figures, adequacy boundaries and solvency with missing data (hand-computed)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from gateway.codec.avro import load_schemas
from gateway.cotation.adequacy import assess, parse_rules, to_record
from gateway.cotation.household import consumption_units, household_size, months_between, resources_per_uc
from gateway.errors import ConfigError
from gateway.policy.samples import sample_decision

NOW = date(2026, 6, 1)
RULES = parse_rules(
    {
        "id": "t",
        "personnes_par_piece": {"min": 0.5, "max": 2.0},
        "typologies": {"T1": {"min": 1, "max": 2}},
        "taux_effort_max": 0.30,
        "reste_a_vivre_min_par_uc": 400,
    }
)


def _person(born: date) -> dict[str, Any]:
    return {"nom": "X", "prenom": "Y", "dateNaissance": born, "sexe": None, "lienParente": None}


def _demande(children: int = 1, income: str | None = "1500", *, adults: int = 1) -> dict[str, Any]:
    lines = [] if income is None else [{"code": "SAL", "montant": Decimal(income)}]
    co = {
        "dateNaissance": date(1985, 1, 1),
        "ressourcesRecues": [],
        "ressourcesSante": [],
        "ressourcesVersees": [],
    }
    return {
        "demandeur": {
            "dateNaissance": date(1990, 1, 1),
            "ressourcesRecues": lines,
            "ressourcesSante": [],
            "ressourcesVersees": [],
        },
        "cotitulaires": [co] * (adults - 1),
        "personnesACharge": [_person(date(2020, 1, 1))] * children,
        "personnesEnGarde": [],
        "personnesANaitre": None,
    }


def test_months_between_counts_whole_months() -> None:
    assert months_between(date(2024, 1, 15), date(2026, 3, 1)) == 25
    assert months_between(date(2024, 1, 31), date(2024, 2, 29)) == 0
    assert months_between(date(2024, 1, 31), date(2024, 3, 31)) == 2
    assert months_between(date(2026, 3, 1), date(2024, 1, 15)) == -25


def test_consumption_units_and_resources_per_uc_as_the_sne() -> None:
    d = _demande(children=2, adults=2)  # 1 + 0.5 + 2 x 0.3
    d["personnesACharge"] = [_person(date(2020, 1, 1)), _person(date(2010, 1, 1))]  # 6 and 16 years old
    assert household_size(d) == 4
    assert consumption_units(d, NOW) == 2.3  # 1 + 0.5 (co-applicant) + 0.3 (6) + 0.5 (16)
    assert resources_per_uc(d, NOW) == round(1500 * 12 / 2.3, 2)
    d["demandeur"]["ressourcesVersees"] = [{"code": "PAV", "montant": Decimal("200")}]
    assert resources_per_uc(d, NOW) == round(1300 * 12 / 2.3, 2)
    d["personnesACharge"][0] = dict(d["personnesACharge"][0], dateNaissance=None)
    assert consumption_units(d, NOW) is None and resources_per_uc(d, NOW) is None  # unknown, never 0
    assert resources_per_uc(_demande(income=None), NOW) is None


@pytest.mark.parametrize(
    ("kind", "persons", "result"),
    [
        ("T2", 1, "PASSE"),  # 2 rooms x 0.5 = 1
        ("T2", 4, "PASSE"),  # 2 rooms x 2 = 4
        ("T2", 5, "ECHEC"),
        ("T3", 1, "ECHEC"),  # 3 x 0.5 = 1.5
        ("T3", 2, "PASSE"),
        ("T1", 2, "PASSE"),  # explicit band 1-2
        ("T1", 3, "ECHEC"),
        (None, 2, "INCONNU"),
    ],
)
def test_adequacy_boundaries(kind: str | None, persons: int, result: str) -> None:
    _, verdicts = assess(
        RULES,
        _demande(children=persons - 1),
        {"typeLogement": kind, "loyer": Decimal("300")},
        NOW,
        charges=0,
        aide=0,
    )
    assert verdicts[0].id == "taille_typologie" and verdicts[0].result == result


def test_solvency_exact_and_at_the_thresholds() -> None:
    # 1500 €/month, rent 400 + charges 100 - allowance 50 = 450: 0.30 exactly passes.
    overall, v = assess(
        RULES,
        _demande(children=1),
        {"typeLogement": "T2", "loyer": Decimal("400")},
        NOW,
        charges=100,
        aide=50,
    )
    assert (v[1].result, v[1].value) == ("PASSE", 0.3)
    assert (v[2].result, v[2].value) == ("PASSE", round(1050 / 1.3, 2))  # 807.69 per UC
    assert overall == "PASSE"
    _, v = assess(
        RULES,
        _demande(children=1),
        {"typeLogement": "T2", "loyer": Decimal("401")},
        NOW,
        charges=100,
        aide=50,
    )
    assert v[1].result == "ECHEC"
    # reste à vivre: 600 €/month, cost 80: (600 - 80) / 1.3 = 400 exactly passes; 1 € less fails
    _, v = assess(
        RULES,
        _demande(children=1, income="600"),
        {"typeLogement": "T2", "loyer": Decimal("100")},
        NOW,
        charges=0,
        aide=20,
    )
    assert (v[2].result, v[2].value) == ("PASSE", 400.0)
    _, v = assess(
        RULES,
        _demande(children=1, income="599"),
        {"typeLogement": "T2", "loyer": Decimal("100")},
        NOW,
        charges=0,
        aide=20,
    )
    assert v[2].result == "ECHEC"


def test_solvency_with_missing_allowance_is_bounded_or_unknown_never_zero() -> None:
    # without the allowance the burden is at most (350 + 50) / 1500 = 0.2667: passes whatever it is
    overall, v = assess(RULES, _demande(), {"typeLogement": "T2", "loyer": Decimal("350")}, NOW, charges=50)
    assert (v[1].result, v[1].value, v[1].bound) == ("PASSE", 0.2667, "max")
    assert "aideLogement" in v[1].why
    # at most (500 + 50) / 1500 = 0.367 > 0.30: the allowance decides, unknown
    overall, v = assess(RULES, _demande(), {"typeLogement": "T2", "loyer": Decimal("500")}, NOW, charges=50)
    assert (v[1].result, v[1].value) == ("INCONNU", None) and overall == "INCONNU"
    # no resources declared: unknown, not a division by zero nor a failure
    _, v = assess(
        RULES, _demande(income=None), {"typeLogement": "T2", "loyer": Decimal("350")}, NOW, charges=50, aide=0
    )
    assert v[1].result == v[2].result == "INCONNU" and "ressources" in v[1].why
    # charges missing but allowance given: at least (600 - 50) / 1500 = 0.3667: fails whatever the charges
    _, v = assess(RULES, _demande(), {"typeLogement": "T2", "loyer": Decimal("600")}, NOW, aide=50)
    assert (v[1].result, v[1].bound) == ("ECHEC", "min")


def test_adequacy_record_is_valid() -> None:
    decision = sample_decision("DESIGNATION")
    overall, v = assess(RULES, _demande(), decision["designation"]["logement"], NOW)
    record = to_record(RULES, decision, overall, v, NOW)
    load_schemas().codec("fr.gp.Adequation").encode_checked(record)
    assert record["resultat"] == "INCONNU"


def test_bad_rules_are_refused_with_every_problem() -> None:
    with pytest.raises(ConfigError) as err:
        parse_rules(
            {
                "personnes_par_piece": {"min": 3, "max": 1},
                "typologies": {"T12": {"min": 1, "max": 2}},
                "taux_effort_max": 1.5,
                "reste_a_vivre_min_par_uc": -1,
                "surprise": 1,
            }
        )
    paths = {p.path.split(".")[0] for p in err.value.problems}
    assert {
        "personnes_par_piece",
        "typologies",
        "taux_effort_max",
        "reste_a_vivre_min_par_uc",
        "surprise",
    } <= paths


def test_adequacy_command_prints_one_line_per_designation() -> None:
    import json  # noqa: PLC0415

    from click.testing import CliRunner  # noqa: PLC0415
    from gateway.cli import cli  # noqa: PLC0415

    args = ["cotation", "adequacy", "--rules", "gateway/data/cotation/adequation-exemple.yaml",
            "cdc-json:samples/cdc-json/erp-nantes-evenements.jsonl"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.output.splitlines()]
    assert lines and all(set(x) == {"key", "designation", "resultat", "details"} for x in lines)
