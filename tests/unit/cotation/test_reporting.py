"""The 25 % figures on a hand-made year of attributions (QPV and non-QPV dwellings), and bad files."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from gateway.cli import cli
from gateway.errors import ConfigError
from gateway.policy.samples import sample_decision
from gateway.reporting.attributions import COLUMNS, facts, rows, to_csv
from gateway.reporting.config import ReportingConfig, parse_qpv, parse_territories

if TYPE_CHECKING:
    from gateway.reporting.live import ReportState

TERRITORIES = parse_territories(
    {"territoires": {"244400404": {"nom": "NM", "communes": ["44109", "44162"], "premier_quartile": 10000}}}
)
CONFIG = ReportingConfig(TERRITORIES, parse_qpv("rpls;qpv\nQPV0000001;QN044001\n"))


def _demande(num: str, monthly: str | None, *, dalo: str | None = None, children: int = 0) -> dict[str, Any]:
    lines = [] if monthly is None else [{"code": "SAL", "montant": Decimal(monthly)}]
    return {
        "numUnique": num,
        "demandeur": {
            "dateNaissance": date(1990, 1, 1),
            "ressourcesRecues": lines,
            "ressourcesSante": [],
            "ressourcesVersees": [],
        },
        "cotitulaires": [],
        "personnesACharge": [{"dateNaissance": date(2021, 1, 1)}] * children,
        "personnesEnGarde": [],
        "personnesANaitre": None,
        "dalo": None if dalo is None else {"statut": dalo},
    }


def _radiation(
    num: str, rpls: str, contingent: str, siren: str, *, dalo: bool | None, year: int = 2026, event: str = ""
) -> dict[str, Any]:
    d = sample_decision("RADIATION", num, event_id=event or f"rad-{num}")
    att = d["radiation"]["attribution"]
    att.update(
        siren=siren, contingent=contingent, daloPrioritaireUrgent=dalo, dateSignatureBail=date(year, 5, 2)
    )
    att["logement"] = dict(att["logement"], rpls=rpls, commune="44109", sirenBailleur=siren)
    return d


def _designation(num: str, rpls: str) -> dict[str, Any]:
    d = sample_decision("DESIGNATION", num, origine="824541148")
    d["designation"]["logement"] = dict(d["designation"]["logement"], rpls=rpls, commune="44109")
    return d


def _year() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    demandes = {
        "A": _demande("A", "800"),  # 9600 €/UC/year: first quartile
        "B": _demande("B", "2000"),
        "C": _demande("C", None),  # resources unknown: never counted as first quartile
        "D": _demande("D", "700", dalo="ACTIF", children=1),  # 8400 / 1.3 = 6461.54: first quartile
        "E": _demande("E", "500"),
        "F": _demande("F", "900"),  # 10800: not first quartile
    }
    label = sample_decision("LABEL_PRIORITAIRE", "B", dateLabel=date(2026, 1, 1))
    bail = sample_decision("BAIL_SIGNE", "D")
    bail["bail"]["dateSignature"] = date(2026, 9, 1)
    bail["bail"]["logement"] = dict(
        bail["bail"]["logement"], rpls="NQPV000003", commune="44162", sirenBailleur="200000002"
    )
    decisions = [
        _designation("A", "NQPV000001"),
        _radiation("A", "NQPV000001", "COLACT", "200000002", dalo=True),
        _designation("B", "QPV0000001"),
        label,
        _radiation("B", "QPV0000001", "COLACT", "200000002", dalo=False),
        _radiation("C", "NQPV000002", "AUCUN", "200000003", dalo=None),
        _designation("D", "NQPV000003"),
        bail,
        _radiation("E", "NQPV000004", "COLACT", "200000002", dalo=True, year=2025),
        _radiation("A", "NQPV000001", "COLACT", "200000002", dalo=True, event="replayed"),
        _radiation("F", "NQPV000005", "PPRIOR", "200000002", dalo=False),
    ]
    return demandes, decisions


def _live_year() -> tuple[ReportState, dict[str, Any]]:
    """The worker's report state fed with the year's demandes then decisions, and the demandes."""
    from gateway.reporting.live import ReportState  # noqa: PLC0415

    demandes, decisions = _year()
    live = ReportState(CONFIG)
    for d in demandes.values():
        live.on_demande(d)
    for d in decisions:
        live.on_decision(d)
    return live, demandes


EXPECTED = (
    ";".join(COLUMNS)
    + """
2026;244400404;200000002;bailleur;premier_quartile_hors_qpv_25;4;2;3;0.5000;0.7500;3;2;0.6667
2026;244400404;200000003;bailleur;dalo_25;1;0;0;0.0000;0.0000;1;0;0.0000
2026;244400404;200000003;bailleur;premier_quartile_hors_qpv_25;1;0;0;0.0000;0.0000;1;0;0.0000
2026;244400404;244400404;epci;premier_quartile_hors_qpv_25;5;2;3;0.4000;0.6000;4;2;0.5000
2026;244400404;824541148;reservataire;dalo_25;3;2;3;0.6667;1.0000;2;2;1.0000
"""
)


def test_hand_made_year_of_attributions() -> None:
    demandes, decisions = _year()
    assert to_csv(rows(facts(demandes, decisions, CONFIG), 2026)) == EXPECTED
    assert to_csv(rows(facts(demandes, decisions, CONFIG), 2026, "35")).strip() == ";".join(COLUMNS)
    (row,) = [r for r in rows(facts(demandes, decisions, CONFIG), 2025) if r.role == "reservataire"]
    assert (row.acteur, row.attributions, row.dalo) == ("COLACT", 1, 1)  # no designation names the actor


def test_bad_territories_and_qpv_files_list_every_problem() -> None:
    with pytest.raises(ConfigError) as err:
        parse_territories(
            {
                "territoires": {
                    "A": {"communes": ["4410"], "premier_quartile": 0},
                    "B": {"communes": ["44109"], "premier_quartile": 1, "x": 1},
                }
            }
        )
    reasons = " ".join(p.path for p in err.value.problems)
    assert "A.communes" in reasons and "A.premier_quartile" in reasons and "B.x" in reasons
    with pytest.raises(ConfigError) as err:
        parse_territories(
            {
                "territoires": {
                    "A": {"communes": ["44109"], "premier_quartile": 1},
                    "B": {"communes": ["44109"], "premier_quartile": 1},
                }
            }
        )
    assert "also in A" in err.value.problems[0].reason
    with pytest.raises(ConfigError) as err:
        parse_qpv("rpls;qpv\nQPV0000001;Q\nshort;Q\nQPV0000001;Q\n", "q.csv")
    assert [p.path for p in err.value.problems] == ["q.csv:3.rpls", "q.csv:4.rpls"]
    with pytest.raises(ConfigError):
        parse_qpv("id;qpv\n1;2\n")


def test_report_command_prints_the_csv_of_the_samples() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "report",
            "attributions",
            "--year",
            "2026",
            "sne-xml:samples/sne-xml/demande-rad-attribution-rennes.xml",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == ";".join(COLUMNS)
    assert "2026;243500139;243500139;epci;premier_quartile_hors_qpv_25;1;" in result.output


def test_demo_prints_the_cotation_and_the_25_percent_figures_of_its_samples() -> None:
    from gateway.cli.cotation import demo_lines  # noqa: PLC0415
    from gateway.cli.demo import SAMPLES  # noqa: PLC0415

    lines = demo_lines(SAMPLES, date(2026, 6, 1))
    text = "\n".join(lines)
    assert "044260100000000001   644.0" in text  # DALO, violences, sans logement, local, 4 months
    assert "  " + ";".join(COLUMNS) in lines
    assert "2026;244400404;824541148;reservataire;dalo_25;1;" in text


def test_html_report_draws_each_share_against_the_25_percent_line() -> None:
    from gateway.reporting.html import to_html  # noqa: PLC0415

    demandes, decisions = _year()
    page = to_html(rows(facts(demandes, decisions, CONFIG), 2026), 2026)
    assert "<script" not in page and "http" not in page.replace('lang="fr"', "")  # nothing fetched
    assert page.count("<svg") == 1 and ">25 %</text>" in page
    assert "100.0% (3 DALO or prioritaires, 2 DALO / 3)" in page  # the réservataire's share
    assert page.count('fill="#2e7d32"') == 3 and page.count('fill="#c62828"') == 2  # met / not met


def test_the_worker_report_has_the_offline_figures_and_republishes_changed_years_only() -> None:
    from gateway.codec.avro import load_schemas  # noqa: PLC0415
    from gateway.reporting.live import line_key, line_record  # noqa: PLC0415

    live, demandes = _live_year()
    changed = live.changed()
    assert sorted(changed) == [2025, 2026]
    assert to_csv(changed[2026]) == EXPECTED
    assert live.changed() == {}  # nothing new
    live.on_demande(demandes["E"])  # E's lease is in 2025: only 2025 is recomputed
    assert sorted(live.changed()) == [2025]
    (reservataire,) = [r for r in changed[2026] if r.role == "reservataire"]
    record = line_record(reservataire)
    load_schemas().codec("fr.gp.LigneAttributions").encode_checked(record)
    assert line_key(reservataire) == "2026;244400404;824541148;reservataire;dalo_25"
    shares = (record["partDalo"], record["partPrioritaires"], record["partPremierQuartile"])
    assert shares == (0.6667, 1.0, 1.0)
