"""Rules on texts shared by the normalisers: control characters, formula injection, and the day
of reception that bounds the dates of past facts (set by `gateway.normalise.normalise`)."""

from __future__ import annotations

import re
from contextvars import ContextVar, Token
from datetime import date

__all__ = [
    "CONTROL_CHARACTER",
    "CONTROL_MULTILINE",
    "CONTROL_ONE_LINE",
    "FORMULA_START",
    "current_today",
    "has_control",
    "neutralise_formula",
    "reset_today",
    "set_today",
]

# characters refused in any text: C0/C1 controls, DEL, surrogates, non-characters (they stop XML
# builders and terminals); line breaks and tabs are allowed only where a text may span lines
CONTROL_MULTILINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
CONTROL_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
CONTROL_CHARACTER = "control character not allowed"
# a text a spreadsheet would run as a formula (CSV/formula injection, OWASP): neutralised by a
# leading apostrophe, which spreadsheets show as text; codes and patterned values never start so
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def has_control(value: str, *, multiline: bool = False) -> bool:
    return (CONTROL_MULTILINE if multiline else CONTROL_ONE_LINE).search(value) is not None


def neutralise_formula(value: str) -> str:
    """`value`, with a leading apostrophe when a spreadsheet would read it as a formula."""
    return "'" + value if value.startswith(FORMULA_START) else value


_TODAY: ContextVar[date | None] = ContextVar("gp_normalise_today", default=None)


def set_today(day: date) -> Token[date | None]:
    """The day of reception of the input being normalised (set by `gateway.normalise.normalise`):
    dates of past facts (birth, creation of the application) after it are refused."""
    return _TODAY.set(day)


def reset_today(token: Token[date | None]) -> None:
    _TODAY.reset(token)


def current_today() -> date | None:
    return _TODAY.get()
