from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

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
            "unknown code 'T9' for ListeTypeLogement",
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
    assert ("after.type_evenement", "unknown code 'EXPULSION' for TypeEvenement") in problems(out)
    assert ("source.table", "unknown table 'locataire' (expected demande or evenement)") in problems(out)


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
