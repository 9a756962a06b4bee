"""Scalar readers shared by the normalisers: dates, date-times and SNE codes (see common.Node).

Each parser returns the value or the reason it is refused; a code lookup records its problem.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from gateway.codec.avro import load_schemas

if TYPE_CHECKING:
    from gateway.normalise.common import Ctx

__all__ = [
    "CODE_MAPS",
    "MAX_YEAR",
    "MIN_YEAR",
    "PARIS",
    "code_map",
    "known_code",
    "length",
    "lookup_code",
    "midnight",
    "parse_date",
    "parse_timestamp",
    "shown_code",
    "to_millis",
    "type_name",
]

PARIS = ZoneInfo("Europe/Paris")
_EPOCH = date(1970, 1, 1)
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:Z|[+-]\d{2}:\d{2})?$", re.ASCII)
_FR_DATE_RE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$", re.ASCII)
MIN_YEAR, MAX_YEAR = 1880, 2200
CODE_MAPS: dict[str, tuple[dict[str, str], frozenset[str]]] = {}  # enum -> code_map(enum), filled once


def midnight(day: date) -> datetime:
    """Start of a French calendar day, in UTC."""
    return datetime.combine(day, time(0, 0), tzinfo=PARIS).astimezone(UTC)


def to_millis(value: datetime) -> datetime:
    """Avro timestamp-millis precision, so a record equals its decoded copy."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def type_name(value: Any) -> str:
    if isinstance(value, list):
        return "list"  # also a repeated XML element
    return type(value).__name__


def parse_date(raw: Any) -> date | str:
    """A date from ISO text (xs:date, optional offset), dd/mm/yyyy text or Debezium days; else a reason."""
    if isinstance(raw, bool):
        return "not a date"
    if isinstance(raw, int):  # io.debezium.time.Date: days since the epoch
        if abs(raw) > 200_000:
            return "impossible date"
        day = _EPOCH + timedelta(days=raw)
        return day if MIN_YEAR <= day.year <= MAX_YEAR else "impossible date"
    if not isinstance(raw, str):
        return "not a date"
    text = raw.strip()
    if "T" in text:  # an xs:dateTime where a date is expected: keep the calendar day
        text = text.split("T", 1)[0]
    m = _DATE_RE.match(text)
    if m:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    else:
        m = _FR_DATE_RE.match(text)
        if not m:
            return "not a date"
        d, mo, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not MIN_YEAR <= y <= MAX_YEAR:
        return "impossible date"
    try:
        return date(y, mo, d)
    except ValueError:
        return "impossible date"


def parse_timestamp(raw: Any) -> datetime | str:
    """An aware UTC datetime from ISO text (naive = Europe/Paris) or epoch ms / µs (Debezium)."""
    if isinstance(raw, bool):
        return "not a date-time"
    if isinstance(raw, int):
        seconds = raw / 1_000_000 if abs(raw) > 10**14 else raw / 1000
        try:
            value = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return "impossible date"
        if not MIN_YEAR <= value.year <= MAX_YEAR:
            return "impossible date"
        return to_millis(value)
    if not isinstance(raw, str):
        return "not a date-time"
    text = raw.strip()
    if _DATE_RE.match(text) or _FR_DATE_RE.match(text):
        day = parse_date(text)
        return midnight(day) if isinstance(day, date) else day
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return "impossible date" if re.match(r"^\d{4}-\d{2}-\d{2}T", text) else "not a date-time"
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        return "impossible date"
    if value.tzinfo is None:
        value = value.replace(tzinfo=PARIS)
    return to_millis(value.astimezone(UTC))


@cache
def code_map(enum: str) -> tuple[dict[str, str], frozenset[str]]:
    """SNE code -> symbol, and the symbols, of an enum of the canonical schemas (built once)."""
    symbol_to_code = load_schemas().sne_codes(enum)
    maps = {c: s for s, c in symbol_to_code.items()}, frozenset(symbol_to_code)
    CODE_MAPS[enum] = maps
    return maps


def known_code(raw: Any, enum: str) -> str | None:
    """The symbol of a known code given as text (what lookup_code returns for it), else None."""
    if type(raw) is not str:
        return None
    code = raw.strip()
    by_code, symbols = CODE_MAPS.get(enum) or code_map(enum)
    return by_code.get(code) or (code if code in symbols else None)


def lookup_code(ctx: Ctx, path: str, raw: Any, enum: str, liste: str) -> str | None:
    if type(raw) is str:
        code = raw.strip()
    elif isinstance(raw, bool) or not isinstance(raw, str | int):
        ctx.add(path, f"not a code of {liste}", type_name(raw))
        return None
    else:
        code = str(raw).strip()
    by_code, symbols = code_map(enum)
    symbol = by_code.get(code) or (code if code in symbols else None)
    if symbol is None:
        ctx.add(path, f"unknown code for {liste}", length(code))
    return symbol


def length(value: str) -> str:
    """How a value that is not a code of the list checked appears in a problem: its length only.

    Problems reach logs, stderr and dead-letter headers; a value outside the list may be anything
    a shifted column or a wrong field put there (a phone number, an income, a birth date, a name).
    """
    return "1 character" if len(value) == 1 else f"{len(value)} characters"


def shown_code(value: str) -> str:
    """Kept for callers of the former API: an unknown value is never quoted, see `length`."""
    return length(value)
