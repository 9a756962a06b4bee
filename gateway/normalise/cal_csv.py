"""`cal-csv`: a CAL secretariat's decisions file, one line per candidate examined, with its rank.

`;`-separated (`,` accepted when the header has no `;`), UTF-8 with or without BOM, a header line
naming the columns (any order, case-insensitive). One bad line is one Rejection (locator
"line N", fragment = its original bytes); the other lines still yield their DECISION_CAL.
Dates as dd/mm/yyyy or ISO; amounts with a decimal comma or point. Columns in docs/normalise.md.
"""

from __future__ import annotations

import codecs
import csv
from datetime import datetime
from typing import Any

from gateway.errors import Problem
from gateway.model.canonical import DECISION, CanonicalRecord
from gateway.normalise.common import Ctx, Node, event_id, midnight, provenance, unique
from gateway.normalise.demande import map_logement
from gateway.normalise.events import ORG_RE, build_decision
from gateway.normalise.outcome import INTERNAL_ERROR, Outcome, Rejection

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


MAX_CONTINUATION = 50  # physical lines one quoted record may span


def normalise_cal_csv(data: bytes, received_at: datetime) -> list[Outcome]:
    """Linear in the input: each physical line is read once; a record spans several lines only
    inside a quoted field, and a quote that never closes rejects its own line only."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    lines = data.splitlines(keepends=True)  # bytes: splits on \n, \r\n and \r only
    start = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if start is None:
        return [Rejection((Problem("$", "empty input"),), "$")]
    parsed = _header(lines[start], start)
    if isinstance(parsed, Rejection):
        return [parsed]
    header, delimiter = parsed
    out: list[Outcome] = []
    i = start + 1
    while i < len(lines):
        raw = lines[i]
        i += 1
        if raw.strip():
            outcome, used = _line(lines, i - 1, header, delimiter, received_at)
            out.append(outcome)
            i += used - 1
    return out


def _header(line: bytes, start: int) -> tuple[list[str], str] | Rejection:
    try:
        header_line = line.decode("utf-8")
    except UnicodeDecodeError:
        return Rejection((Problem("line 1", "not UTF-8 text"),), "$")
    delimiter = ";" if ";" in header_line or "," not in header_line else ","
    try:
        header = [_column(h) for h in next(csv.reader([header_line], delimiter=delimiter))]
    except (csv.Error, StopIteration):
        return Rejection((Problem(f"line {start + 1}", "malformed CSV header"),), "$")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        return Rejection(tuple(Problem(c, "missing column") for c in missing), "$")
    return header, delimiter


def _line(
    lines: list[bytes], at: int, header: list[str], delimiter: str, received_at: datetime
) -> tuple[Outcome, int]:
    """The outcome of the record starting at physical line `at`, and how many lines it used."""
    raw = lines[at]
    locator = f"line {at + 1}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Rejection((Problem(locator, "not UTF-8 text"),), locator, raw), 1
    used = 1
    if '"' not in text:  # fast path: no quoting
        row = text.rstrip("\r\n").split(delimiter)
        fragment = raw
    else:
        record = _quoted(lines, at, text, delimiter)
        if isinstance(record, str):  # the quote never closes, or the CSV is malformed
            return Rejection((Problem(locator, record),), locator, raw), 1
        row, used = record
        fragment = b"".join(lines[at : at + used])
        if len(row) != len(header) and used > 1:  # a stray quote joined lines: reject its line only
            row, fragment, used = [], raw, 1
    if len(row) != len(header):
        problem = Problem(locator, f"expected {len(header)} fields, got {len(row)}")
        return Rejection((problem,), locator, fragment), used
    ctx = Ctx()
    try:  # one line's internal error rejects that line only
        decision = _decision(ctx, dict(zip(header, row, strict=True)), received_at)
    except Exception as exc:  # noqa: BLE001 - the contract: bad input never escapes
        ctx.add(locator, INTERNAL_ERROR, type(exc).__name__)
        decision = None
    if ctx.ok and decision is not None:
        return CanonicalRecord.of(DECISION, decision), used
    problems = unique(ctx.problems) or [Problem(locator, "cannot be read")]
    return Rejection(tuple(problems), locator, fragment), used


def _quoted(lines: list[bytes], first: int, text: str, delimiter: str) -> tuple[list[str], int] | str:
    """The fields of the record that starts at line `first` and holds quotes, and how many physical
    lines it spans; or the reason it cannot be read."""
    parts = [text]
    quotes = text.count('"')
    used = 1
    while quotes % 2 and used < MAX_CONTINUATION and first + used < len(lines):
        try:
            more = lines[first + used].decode("utf-8")
        except UnicodeDecodeError:
            break
        parts.append(more)
        quotes += more.count('"')
        used += 1
    if quotes % 2:
        return "unbalanced quote"
    try:
        rows = list(csv.reader(parts, delimiter=delimiter, strict=True))
    except csv.Error as exc:
        return f"malformed CSV ({type(exc).__name__})"
    if len(rows) != 1:
        return "malformed CSV (quoting)"
    return rows[0], used


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
