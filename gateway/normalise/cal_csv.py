"""`cal-csv`: a CAL secretariat's decisions file, one line per candidate examined, with its rank.

`;`-separated (`,` accepted when the header has no `;`), UTF-8 with or without BOM, a header line
naming the columns (any order, case-insensitive). One bad line is one Rejection (locator
"line N", fragment = its original bytes); the other lines still yield their DECISION_CAL.
Dates as dd/mm/yyyy or ISO; amounts with a decimal comma or point. Columns in docs/normalise.md.
"""

from __future__ import annotations

import codecs
import csv
import re
from datetime import datetime
from typing import Any

from gateway.errors import Problem
from gateway.model.canonical import DECISION
from gateway.normalise.codes import canonical
from gateway.normalise.common import Ctx, Node, event_id, midnight, provenance, unique
from gateway.normalise.demande import map_logement
from gateway.normalise.events import ORG_RE, build_decision
from gateway.normalise.outcome import Outcome, Rejection

__all__ = ["COLUMNS", "REQUIRED_COLUMNS", "normalise_cal_csv"]

SOURCE = "cal-csv"
COLUMNS = (
    "numUnique",
    "siren",
    "commission",
    "dateCommission",
    "rang",
    "decision",
    "motifs",
    "piecesManquantes",
    "dateLimitePieces",
    "rpls",
    "referenceLogement",
    "communeLogement",
    "typeLogement",
    "surface",
    "loyer",
    "saisiePar",
    "dateSaisie",
)
REQUIRED_COLUMNS = ("numUnique", "siren", "commission", "dateCommission", "decision")
LOGEMENT_NAMES = {"referenceBailleur": "referenceLogement", "commune": "communeLogement"}
LOGEMENT_COLUMNS = ("rpls", "referenceLogement", "communeLogement", "typeLogement", "surface", "loyer")
_BY_LOWER = {c.lower(): c for c in COLUMNS}


def _column(name: str) -> str:
    key = name.strip().strip('"').replace("_", "").replace(" ", "").lower()
    return _BY_LOWER.get(key, name.strip())


def normalise_cal_csv(data: bytes, received_at: datetime) -> list[Outcome]:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    text = data.decode("utf-8", errors="surrogateescape")
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if start is None:
        return [Rejection((Problem("$", "empty input"),), "$")]
    header_line = lines[start]
    if _has_surrogates(header_line):
        return [Rejection((Problem("line 1", "not UTF-8 text"),), "$")]
    delimiter = ";" if ";" in header_line or "," not in header_line else ","
    try:
        header = [_column(h) for h in next(csv.reader([header_line], delimiter=delimiter))]
    except (csv.Error, StopIteration):
        return [Rejection((Problem(f"line {start + 1}", "malformed CSV header"),), "$")]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        return [Rejection(tuple(Problem(c, "missing column") for c in missing), "$")]
    out: list[Outcome] = []
    body = lines[start + 1 :]
    reader = csv.reader(iter(body), delimiter=delimiter)
    consumed = 0
    while True:
        first = consumed
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            consumed = reader.line_num
            out.append(_bad(first, consumed, start, body, f"malformed CSV ({type(exc).__name__})"))
            continue
        consumed = reader.line_num
        locator = f"line {start + 2 + first}"
        fragment = "".join(body[first:consumed]).encode("utf-8", errors="surrogateescape")
        if not any(cell.strip() for cell in row):
            continue
        if any(_has_surrogates(cell) for cell in row):
            out.append(Rejection((Problem(locator, "not UTF-8 text"),), locator, fragment))
            continue
        if len(row) != len(header):
            problem = Problem(locator, f"expected {len(header)} fields, got {len(row)}")
            out.append(Rejection((problem,), locator, fragment))
            continue
        ctx = Ctx()
        record = _decision(ctx, dict(zip(header, row, strict=True)), received_at)
        if ctx.ok and record is not None:
            out.append(canonical(DECISION, record))
        else:
            problems = unique(ctx.problems) or [Problem(locator, "cannot be read")]
            out.append(Rejection(tuple(problems), locator, fragment))
    return out


def _bad(first: int, consumed: int, start: int, body: list[str], reason: str) -> Rejection:
    locator = f"line {start + 2 + first}"
    fragment = "".join(body[first:consumed]).encode("utf-8", errors="surrogateescape")
    return Rejection((Problem(locator, reason),), locator, fragment)


_SURROGATE = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)


def _has_surrogates(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def _decision(ctx: Ctx, row: dict[str, Any], received_at: datetime) -> dict[str, Any] | None:
    n = Node(ctx, row, "", sep=".")
    num = n.text("numUnique", required=True, pattern=r"[0-9A-Z]{18}")
    siren = n.text("siren", required=True, pattern=r"\d{9}")
    saisie = n.text("saisiePar", pattern=ORG_RE)
    date_saisie = n.timestamp("dateSaisie") or received_at
    day = n.date("dateCommission")
    commission = n.text("commission", max_len=64) or ""
    logement = None
    if any(n.has(c) for c in LOGEMENT_COLUMNS):
        logement = map_logement(Node(ctx, row, "", sep=".", names=LOGEMENT_NAMES))
        if siren is not None:
            logement["sirenBailleur"] = siren
    ref = n.text("rpls") or n.text("referenceLogement") or "-"
    prov = provenance(
        origine=siren or "",
        saisie=saisie or siren or "",
        date_evenement=midnight(day) if day else received_at,
        date_saisie=date_saisie,
        systeme=SOURCE,
        reference=f"{commission}/{day}/{num}",
    )
    eid = event_id(SOURCE, siren, commission, day, num, ref)
    record = build_decision(
        ctx,
        event_id=eid,
        num_unique=num,
        type_evenement="DECISION_CAL",
        provenance=prov,
        data=n,
        data_path="$",
    )
    if record.get("decisionCal") is not None:
        record["decisionCal"]["logement"] = logement
    return record
