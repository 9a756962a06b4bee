from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from gateway.codec.avro import load_schemas
from gateway.normalise import normalise

from .helpers import DEMANDE, SAMPLES, only_record, problems, records, rejections, round_trip

WHEN = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SOURCE = {"name": "erp-test", "db": "erp", "table": "demande", "ts_ms": 1768383120000}


def run(value: Any) -> list:  # type: ignore[type-arg]
    data = value if isinstance(value, bytes) else json.dumps(value).encode()
    return normalise("cdc-json", data, received_at=WHEN)


def demande_row(**changes: Any) -> dict[str, Any]:
    document = {k: v for k, v in DEMANDE.items() if k not in ("numGuichet", "dateCreationDemande")}
    row = {
        "id": "ERP-1",
        "num_unique": "035260100000000001",
        "num_guichet": "G3501",
        "date_creation_demande": "2026-01-14",
        "origine": "200000001",
        "date_maj": "2026-01-14T10:00:00+01:00",
        "document": json.dumps(document),
    }
    row.update(changes)
    return row


def test_creation_with_schema_wrapper_sample() -> None:
    rec = only_record(run((SAMPLES / "cdc-json" / "erp-rennes-demande-creation.json").read_bytes()))
    r = round_trip(rec)
    assert rec.key == "035260100000000015"
    assert r["dateCreationDemande"] == date(2026, 1, 14)  # Debezium io.debezium.time.Date (days)
    assert r["provenance"]["operation"] == "CREATION"
    assert r["provenance"]["referenceSource"] == "RH-DEM-2026-000451"
    assert r["provenance"]["dateSaisie"] == datetime(2026, 1, 14, 9, 31, 58, tzinfo=UTC)  # epoch ms
    assert r["cotitulaires"][0]["ressourcesSante"][0]["code"] == "AJPP"
    assert r["personnesANaitre"]["nombre"] == 2
    assert r["logementActuel"]["montantMensuelLoyer"] == Decimal("498.20")
    assert r["motifs"] == ["TROP_PETIT", "MOTIF_21"]


def test_ops_map_to_operations_and_delete_reads_before() -> None:
    for op, operation in [("c", "CREATION"), ("u", "MODIFICATION"), ("r", "LECTURE")]:
        rec = only_record(run({"before": None, "after": demande_row(), "source": SOURCE, "op": op}))
        assert rec.record["provenance"]["operation"] == operation
    deleted = only_record(run((SAMPLES / "cdc-json" / "erp-rennes-demande-suppression.json").read_bytes()))
    assert deleted.record["provenance"]["operation"] == "SUPPRESSION"
    assert deleted.record["personneMorale"]["raisonSociale"].startswith("Foyer")


def test_document_as_object_and_tombstone() -> None:
    row = demande_row(document={"logementRecherche": DEMANDE["logementRecherche"]})
    row["document"]["personneMorale"] = {"raisonSociale": "Asso"}
    assert only_record(run({"after": row, "source": SOURCE, "op": "u"})).record["personneMorale"]
    assert run(b"null") == []  # Debezium tombstone after a delete: nothing to do


def test_demande_column_problems_name_the_column() -> None:
    out = run(
        {
            "after": demande_row(num_guichet=None, date_creation_demande="2026-02-30"),
            "source": SOURCE,
            "op": "c",
        }
    )
    assert problems(out) >= {
        ("after.num_guichet", "missing"),
        ("after.date_creation_demande", "impossible date"),
    }


def test_document_problems_use_sne_element_paths() -> None:
    doc = json.loads(demande_row()["document"])
    doc["logementRecherche"]["listeTypeLogement"] = ["T9"]
    doc["personnePhysique"]["demandeur"]["listeRessourceRecue"] = [{"ressource": "SAL", "montant": -5}]
    out = run({"after": demande_row(document=json.dumps(doc)), "source": SOURCE, "op": "c"})
    assert problems(out) >= {
        (
            "after.document/logementRecherche/listeTypeLogement/typeLogement[1]",
            "unknown code for ListeTypeLogement",
        ),
        (
            "after.document/personnePhysique/demandeur/listeRessourceRecue/detailRessource[1]/montant",
            "negative amount",
        ),
    }
    assert ("after.document", "malformed JSON") in problems(
        run({"after": demande_row(document="{oops"), "source": SOURCE, "op": "c"})
    )


def test_event_table_sample_yields_every_kind_of_decision() -> None:
    out = run((SAMPLES / "cdc-json" / "erp-nantes-evenements.jsonl").read_bytes())
    assert not rejections(out)
    kinds = {r.record["typeEvenement"]: r.record for r in records(out)}
    assert set(kinds) == {
        "PIECES_DEMANDEES",
        "DESIGNATION",
        "INSCRIPTION_CAL",
        "VISITE_PROPOSEE",
        "REFUS_DEMANDEUR",
        "BAIL_SIGNE",
        "AVIS_COMMISSION",
        "RADIATION",
    }
    for rec in records(out):
        round_trip(rec)
    assert kinds["DESIGNATION"]["designation"]["contingent"] == "COLACT"
    assert kinds["VISITE_PROPOSEE"]["visite"]["dateVisite"] == datetime(2026, 4, 2, 15, 30, tzinfo=UTC)
    assert kinds["RADIATION"]["radiation"]["attribution"]["accordCollectif"] == "ACI"
    assert kinds["AVIS_COMMISSION"]["avis"]["typeCommission"] == "CIA_COORDINATION"
    assert kinds["AVIS_COMMISSION"]["provenance"]["origine"] == "CIA-243500139"
    ids = {r.record["eventId"] for r in records(out)}
    assert len(ids) == len(out)
    again = {
        r.record["eventId"]
        for r in records(run((SAMPLES / "cdc-json" / "erp-nantes-evenements.jsonl").read_bytes()))
    }
    assert again == ids  # re-delivery: same ids


def test_event_rows_with_bad_values_each_rejected_and_others_kept() -> None:
    out = run((SAMPLES / "bad" / "cdc-evenements-invalides.jsonl").read_bytes())
    assert len(records(out)) == 1
    locators = [r.locator for r in rejections(out)]
    assert locators == ["line 2", "line 3", "line 4", "line 5"]
    assert rejections(out)[-1].fragment is not None
    unknown = "unknown code for TypeEvenement"
    assert ("after.type_evenement", unknown) in problems(out)
    # issue 10: the unknown table's name is not quoted (it is free text of the source)
    assert ("source.table", "unknown table (expected demande or evenement)") in problems(out)


def test_event_without_its_data_is_rejected() -> None:
    row = {
        "id": "E1",
        "num_unique": "035260100000000001",
        "type_evenement": "BAIL_SIGNE",
        "date_evenement": "2026-05-04T10:00:00Z",
        "origine": "200000001",
    }
    out = run({"after": row, "source": {**SOURCE, "table": "evenement"}, "op": "c"})
    assert problems(out) == {("after.donnees", "missing (data of a BAIL_SIGNE event)")}
    row["type_evenement"] = "DERADIATION"  # an event without data
    assert only_record(run({"after": row, "source": {**SOURCE, "table": "evenement"}, "op": "c"}))


def test_not_a_change_event() -> None:
    assert problems(run([1, 2])) == {("$", "not a Debezium change event")}
    assert ("op", "missing") in problems(run({"after": {}, "source": SOURCE}))
    assert problems(run(b"{")) == {("$", "malformed JSON (line 1)")}


LOGEMENT = {"rpls": "0000449876", "commune": "44162", "typeLogement": "T3", "zus": "ZUSOUI"}
ATTRIBUTION = {
    "siren": "200000002",
    "dateSignatureBail": "2026-05-04",
    "logement": LOGEMENT,
    "contingent": "COLACT",
}


def event(kind: str, donnees: dict[str, Any]) -> dict[str, Any]:
    row = {
        "id": "E9",
        "num_unique": "044260100000000004",
        "type_evenement": kind,
        "date_evenement": "2026-05-04T10:00:00+02:00",
        "origine": "200000002",
        "donnees": json.dumps(donnees),
    }
    return {"after": row, "source": {**SOURCE, "table": "evenement"}, "op": "c"}


def _with(path: str, value: str) -> tuple[str, dict[str, Any], tuple[str, ...]]:
    """(event kind, donnees, path of the value in the Decision) with `value` placed at `path`."""
    if path == "designation.contingent":
        return (
            "DESIGNATION",
            {"designataire": "824541148", "contingent": value, "logement": LOGEMENT},
            ("designation", "contingent"),
        )
    if path.startswith("logement."):
        key = path.split(".")[1]
        return (
            "BAIL_SIGNE",
            {"dateSignature": "2026-05-04", "logement": {**LOGEMENT, key: value}},
            ("bail", "logement", key),
        )
    if path.startswith("attribution."):
        key = path.split(".")[1]
        data = {"motif": "RADATT", "dateRadiation": "2026-05-05", "attribution": {**ATTRIBUTION, key: value}}
        return "RADIATION", data, ("radiation", "attribution", key)
    if path == "radiation.motif":
        data = {
            "motif": value,
            "sousMotif": "IRRSEJ",
            "dateRadiation": "2026-05-05",
            "attribution": ATTRIBUTION,
        }
        return "RADIATION", data, ("radiation", "motif")
    if path == "radiation.sousMotif":
        return (
            "RADIATION",
            {"motif": "RADIRR", "sousMotif": value, "dateRadiation": "2026-05-05"},
            ("radiation", "sousMotif"),
        )
    avis = {"typeCommission": "QPV", "commission": "C1", "dateAvis": "2026-05-01", "avis": "AJOURNE"}
    key = path.split(".")[1]
    return "AVIS_COMMISSION", {**avis, key: value}, ("avis", key)


@pytest.mark.parametrize(
    ("enum", "path"),
    [
        ("TypeReservataire", "designation.contingent"),
        ("TypeReservataire", "attribution.contingent"),
        ("AccordCollectif", "attribution.accordCollectif"),
        ("Booleen", "attribution.dejaLocataire"),
        ("Zus", "logement.zus"),
        ("TypeLogementRPLS", "logement.typeLogement"),
        ("MotifRadiation", "radiation.motif"),
        ("SousMotifIrrecevabilite", "radiation.sousMotif"),
        ("TypeCommission", "avis.typeCommission"),
        ("SensAvis", "avis.avis"),
    ],
)
def test_every_code_of_the_event_lists(enum: str, path: str) -> None:
    for symbol in load_schemas().enum_symbols(enum):
        kind, donnees, where = _with(path, symbol)
        value: Any = round_trip(only_record(run(event(kind, donnees)))).copy()
        for k in where:
            value = value[k]
        assert value == symbol, (enum, symbol)
