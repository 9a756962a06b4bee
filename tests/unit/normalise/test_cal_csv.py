from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from gateway.normalise import normalise

from .helpers import SAMPLES, problems, records, rejections, round_trip

WHEN = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HEADER = "numUnique;siren;commission;dateCommission;rang;decision;motifs\n"


def run(data: bytes) -> list:  # type: ignore[type-arg]
    return normalise("cal-csv", data, received_at=WHEN)


def test_secretariat_file_yields_one_decision_per_candidate() -> None:
    out = run((SAMPLES / "cal-csv" / "cal-rennes-habitat-2026-03-05.csv").read_bytes())
    assert not rejections(out)
    recs = [round_trip(r) for r in records(out)]
    assert [r["decisionCal"]["decision"] for r in recs] == [
        "ATTRIBUTION",
        "ATTRIBUTION_RANG",
        "NON_ATTRIBUTION",
        "ATTRIBUTION_CONDITION_SUSPENSIVE",
        "IRRECEVABILITE",
        "NON_ATTRIBUTION",
    ]
    assert [r["decisionCal"]["rang"] for r in recs] == [1, 2, 3, 1, 2, 3]
    cond = recs[3]["decisionCal"]
    assert cond["piecesManquantes"] == ["avis d'imposition 2025", "justificatif de domicile"]
    assert cond["dateLimitePieces"] == date(2026, 3, 19)
    assert cond["logement"]["loyer"] == Decimal("512.40") and cond["logement"]["sirenBailleur"] == "200000001"
    assert recs[0]["decisionCal"]["dateCommission"] == date(2026, 3, 5)
    assert (
        recs[0]["provenance"]["origine"] == "200000001"
        and recs[0]["provenance"]["systemeSource"] == "cal-csv"
    )
    assert "taux d'effort" in recs[2]["decisionCal"]["motifs"]  # accents and apostrophes kept


def test_bom_upper_case_header_iso_dates_and_letters() -> None:
    data = (SAMPLES / "cal-csv" / "cal-nantes-logement-2026-04-09-bom.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    recs = records(run(data))
    assert [r.record["decisionCal"]["decision"] for r in recs] == [
        "ATTRIBUTION",
        "ATTRIBUTION_RANG",
        "ATTRIBUTION_RANG",
    ]
    assert recs[0].record["decisionCal"]["logement"]["referenceBailleur"] == "NL-0451-B12"


def test_one_bad_line_is_one_rejection_the_others_still_yield() -> None:
    data = (SAMPLES / "bad" / "cal-lignes-invalides.csv").read_bytes()
    out = run(data)
    assert [r.record["numUnique"] for r in records(out)] == ["035260100000000021", "035260100000000026"]
    bad = rejections(out)
    assert [r.locator for r in bad] == ["line 3", "line 4", "line 5", "line 6"]
    lines = data.splitlines(keepends=True)
    assert bad[1].fragment == lines[3]  # the original bytes of that line
    line4 = {(p.path, p.reason) for p in bad[1].problems}
    assert line4 >= {
        ("dateCommission", "impossible date"),
        ("decision", "unknown code for TypeDecisionCal (R441-3 a-e)"),
        ("rang", "must be at least 1"),
        ("loyer", "negative amount"),
    }
    assert ("motifs", "missing (mandatory for NON_ATTRIBUTION)") in {
        (p.path, p.reason) for p in bad[0].problems
    }
    assert bad[2].problems[0].reason == "expected 15 fields, got 5"


def test_rank_mandatory_for_ranked_attribution() -> None:
    out = run((HEADER + "035260100000000001;200000001;CAL-1;05/03/2026;;b;\n").encode())
    assert ("rang", "missing (mandatory for ATTRIBUTION_RANG)") in problems(out)


def test_invalid_utf8_line_and_quoted_multiline_field() -> None:
    data = (
        HEADER.encode()
        + b"035260100000000001;200000001;CAL-1;05/03/2026;1;a;\n"
        + b"035260100000000002;200000001;CAL-1;05/03/2026;2;d;motif \xe9crit en latin-1\n"
        + b'035260100000000003;200000001;CAL-1;05/03/2026;3;d;"motif sur\ndeux lignes; avec point-virgule"\n'
    )
    out = run(data)
    assert len(records(out)) == 2
    assert records(out)[1].record["decisionCal"]["motifs"] == "motif sur\ndeux lignes; avec point-virgule"
    assert [(r.locator, r.problems[0].reason) for r in rejections(out)] == [("line 3", "not UTF-8 text")]


def test_comma_separated_file_is_accepted() -> None:
    data = (
        b"numUnique,siren,commission,dateCommission,rang,decision\n"
        b"035260100000000001,200000001,CAL-1,2026-03-05,1,a\n"
    )
    assert len(records(run(data))) == 1


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", {("$", "empty input")}),
        (b"\n\n", {("$", "empty input")}),
        (
            b"a;b;c\n1;2;3\n",
            {
                ("numUnique", "missing column"),
                ("siren", "missing column"),
                ("commission", "missing column"),
                ("dateCommission", "missing column"),
                ("decision", "missing column"),
            },
        ),
    ],
)
def test_whole_file_problems(data: bytes, expected: set) -> None:  # type: ignore[type-arg]
    out = run(data)
    assert problems(out) == expected
    assert [r.locator for r in rejections(out)] == ["$"]


def test_a_name_in_a_code_column_is_never_echoed() -> None:
    """A shifted column puts personal data where a code was expected: the problem gives its length only."""
    from gateway.normalise.common import length  # noqa: PLC0415

    sample = (SAMPLES / "cal-csv" / "cal-rennes-habitat-2026-03-05.csv").read_text(encoding="utf-8-sig")
    header, first, *rest = sample.splitlines()
    cells = first.split(";")
    cells[[c.strip().lower() for c in header.split(";")].index("decision")] = "Mme Dupont"
    out = run("\n".join([header, ";".join(cells), *rest]).encode())
    found = [p for r in rejections(out) for p in r.problems if p.path == "decision"]
    assert found, problems(out)
    assert all("Dupont" not in f"{p.reason} {p.value}" for r in rejections(out) for p in r.problems)
    # issue 10: a value that is not a code of the list is never quoted, however code-like it looks
    assert length("DUPONT") == "6 characters"
    assert length("T9") == "2 characters"
