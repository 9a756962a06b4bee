"""Canonical records -> interfaceNuu: valid against the XSD; refused before sending, SNE field named."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from connectors.sne.config import SneConfig
from connectors.sne.connector import SneSink
from connectors.sne.nuu import build_for_record, q, to_bytes, type_fichier_for, with_application
from connectors.sne.rules import mandatory_anomalies, xsd, xsd_problems
from connectors.sne.testing import decision_radiation, demande
from gateway.codec.avro import load_schemas
from gateway.connectors import SinkRecord
from gateway.errors import RejectedMessage
from lxml import etree

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
DEMANDE = "fr.gp.Demande"
DECISION = "fr.gp.Decision"


def _build(schema: str, record: dict[str, Any]) -> tuple[str, Any]:
    assert load_schemas().codec(schema).problems(record) == []  # samples fit the canonical contract
    built = build_for_record(schema, record, guichet="G3501", now=NOW)
    assert built is not None
    return built


def _full_demande() -> dict[str, Any]:
    rec = demande(
        motifs=["SANS_LOGEMENT", "TROP_CHER"],
        motifsSante=["HANDICAP"],
        violencesFamiliales=True,
        handicap={
            "etat": "STABLE",
            "capaciteMarche": "CM2",
            "naturesMoteur": ["MS"],
            "naturesSensoriel": ["DV"],
            "aidesTechniques": ["AT1", "AT3"],
            "equipements": ["EQ2"],
        },
        dalo={"statut": "ACTIF", "dateDecision": date(2026, 6, 1), "typologie": "03"},
        personnesACharge=[
            {
                "nom": "Lefèvre",
                "prenom": "Léo",
                "dateNaissance": date(2015, 5, 2),
                "sexe": "M",
                "lienParente": "ENFANT",
            }
        ],
    )
    rec["demandeur"]["ressourcesSante"] = [{"code": "AAH", "montant": Decimal("971.37")}]
    rec["demandeur"]["revenuFiscal"] = {
        "anneeMoins1": 2025,
        "montantMoins1": Decimal("11650.00"),
        "anneeMoins2": None,
        "montantMoins2": None,
    }
    return rec


def test_a_full_demand_is_valid_and_carries_every_block() -> None:
    tf, root = _build(DEMANDE, _full_demande())
    assert tf == "CRE"
    assert xsd().validate(root), xsd().error_log
    assert mandatory_anomalies(root) == []
    dl: Any = root.find(f"{q('demande')}/{q('demandeLogement')}")
    motifs = [m.get("code") for m in dl.iterfind(f"{q('listeMotifDemande')}/{q('motifDemande')}")]
    assert motifs == ["01", "06", "07", "09"]
    assert dl.find(f"{q('complementHandicap')}/{q('capaciteMarche')}").get("code") == "2"
    assert dl.find(f"{q('dalo')}/{q('statutDalo')}").get("code") == "ACTIF"
    res: Any = dl.find(f".//{q('detailRessource')}")
    assert res.find(q("ressource")).get("code") == "AAH" and res.findtext(q("montant")) == "971.37"


def test_type_fichier_rules() -> None:
    assert type_fichier_for(DEMANDE, demande()) == "CRE"
    assert type_fichier_for(DEMANDE, demande(num_unique="035260100000000001")) == "MOD"
    renewed = demande(num_unique="035260100000000001", dateDernierRenouvellement=date(2026, 11, 26))
    assert type_fichier_for(DEMANDE, renewed) == "REN"
    assert type_fichier_for(DECISION, decision_radiation("035260100000000001")) == "RAD"
    radiated = demande(num_unique="035260100000000001", statut="RADIEE")
    assert type_fichier_for(DEMANDE, radiated) is None  # the Decision RADIATION carries the radiation
    deleted = demande(num_unique="035260100000000001")
    deleted["provenance"] = dict(deleted["provenance"], operation="SUPPRESSION")
    assert type_fichier_for(DEMANDE, deleted) is None  # a row deleted in an ERP is not an SNE fact
    from_sne = demande()
    from_sne["provenance"] = dict(from_sne["provenance"], systemeSource="sne")
    assert type_fichier_for(DEMANDE, from_sne) is None  # never echoed back to the SNE
    other = decision_radiation("035260100000000001") | {
        "typeEvenement": "VISITE_EFFECTUEE",
        "radiation": None,
    }
    assert type_fichier_for(DECISION, other) is None
    renewal = other | {"typeEvenement": "RENOUVELLEMENT"}
    assert type_fichier_for(DECISION, renewal) is None  # the Demande carries the renewal: one REN


def _rad(record: dict[str, Any]) -> tuple[str, Any]:
    """A decision's RAD file completed with the application, as the sink does with demandeLogement."""
    tf, root = _build(DECISION, record)
    _, application = _build(DEMANDE, demande(num_unique=record["numUnique"]))
    return tf, with_application(root, application)


def test_a_radiation_report_does_not_depend_on_the_application_blocks() -> None:
    """Issue 17: when the SNE's copy lacks blocks, the radiation is still reported (only its own
    mandatory fields are checked)."""
    _, root = _build(DECISION, decision_radiation("035260100000000001"))
    assert mandatory_anomalies(root) == []
    no_motif = decision_radiation("035260100000000001")
    no_motif["radiation"] = dict(no_motif["radiation"], attribution=None)
    _, root = _build(DECISION, no_motif)
    assert [a.code for a in mandatory_anomalies(root)] == ["CTRL_DEM_0034"]


def test_radiation_with_attribution_is_valid() -> None:
    tf, root = _rad(decision_radiation("035260100000000001"))
    assert tf == "RAD"
    assert xsd().validate(root), xsd().error_log
    assert mandatory_anomalies(root) == []
    att: Any = root.find(f".//{q('radiation')}/{q('attribution')}")
    assert att.findtext(q("siren")) == "200000001"
    assert att.find(q("contingent")).get("code") == "PPRIOR"
    assert att.findtext(f"{q('logement')}/{q('rpls')}") == "3500012345"


def test_deradiation_is_an_empty_motif() -> None:
    rec = decision_radiation("035260100000000001") | {"typeEvenement": "DERADIATION", "radiation": None}
    tf, root = _rad(rec)
    assert tf == "RAD"
    assert root.find(f".//{q('motifRadiation')}").get("code") == ""
    assert xsd().validate(root), xsd().error_log


@pytest.mark.parametrize(
    ("record", "code", "path_end"),
    [
        (
            decision_radiation("035260100000000001", motif="RADIRR", attribution=False),
            "CTRL_DEM_0033",
            "sousMotifRadiation",
        ),
        (
            decision_radiation("035260100000000001", attribution=False),
            "CTRL_DEM_0034",
            "radiation/attribution",
        ),
    ],
)
def test_radiation_rules(record: dict[str, Any], code: str, path_end: str) -> None:
    _, root = _rad(record)
    found = mandatory_anomalies(root)
    assert [(a.code, a.path.endswith(path_end)) for a in found] == [(code, True)]


def test_every_missing_mandatory_field_is_listed() -> None:
    rec = demande(communes=(), numGuichet="")
    rec["logementRecherche"]["typesLogement"] = []
    _, root = _build(DEMANDE, rec)
    codes = sorted(a.code for a in mandatory_anomalies(root))
    assert codes == ["CTRL_DEM_0007", "CTRL_DEM_0008"]  # numGuichet falls back to the connector's guichet


def test_xsd_problems_name_paths_not_values() -> None:
    _, root = _build(DEMANDE, demande(communes=("Rennes-centre",)))
    problems = xsd_problems(root)
    assert problems
    assert all("Rennes" not in (p.path + p.reason + str(p.value)) for p in problems)
    assert any("commune" in p.path for p in problems)


def test_serialisation_is_seven_bit() -> None:
    _, root = _build(DEMANDE, demande(nom="Ñúñez-Œuvrard"))
    data = to_bytes(root)
    assert all(b < 0x80 for b in data)
    assert etree.fromstring(data).findtext(f".//{q('nom')}") == "Ñúñez-Œuvrard"


def _sink(tmp_path: Path) -> SneSink:
    cfg = SneConfig(
        client_cert=tmp_path / "c.pem",
        client_key=tmp_path / "c.key",
        guichet="G3501",
        ledger_path=tmp_path / "ledger.sqlite",
    )
    return SneSink(cfg, clock=lambda: NOW)


def test_the_sink_refuses_before_sending_naming_the_sne_fields(tmp_path: Path) -> None:
    sink = _sink(tmp_path)
    bad = demande(communes=())
    bad["logementRecherche"]["typesLogement"] = []
    rec = SinkRecord(DEMANDE, "k", bad, topic="gp.canonical.demande", partition=0, offset=7)
    with pytest.raises(RejectedMessage) as info:
        sink.prepare(rec)
    paths = sorted(p.path for p in info.value.problems)
    assert paths == [
        "interfaceNuu/demande/demandeLogement/logementRecherche/listeLocalisationSouhaite/localisationSouhaite/commune",
        "interfaceNuu/demande/demandeLogement/logementRecherche/listeTypeLogement/typeLogement",
    ]
    assert info.value.evidence.offset == 7
    assert "Lef" not in str(info.value)
    # the feedback for the dead-lettered record carries the anomaly codes and fields
    outs = sink.outputs_for_rejection(rec, info.value, 1)
    codec = load_schemas().codec("SneFeedback")
    value = outs[0].value
    assert value is not None
    fb = codec.decode(value[10:])
    assert outs[0].topic == "gp.feedback.200000001" and outs[0].key == b"ERP-0001"
    assert fb["status"] == "REJECTED"
    assert sorted(a["code"] for a in fb["anomalies"]) == ["CTRL_DEM_0007", "CTRL_DEM_0008"]
