"""Building blocks shared by the normalisers: a problem collector and a typed reader of source nodes.

A `Node` wraps one mapping of a decoded source (an XML element turned into a dict, a JSON object,
a CSV row) with its path in the source's vocabulary. Every accessor returns the converted value
or None and records a `Problem` (path, reason, safe value) instead of raising, so a normaliser
collects EVERY problem of an input before it decides. Problem values are type names, lengths,
expected patterns or codes of the list checked, never the offending value (docs/normalise.md).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, TypeVar

from gateway.errors import Problem
from gateway.normalise.textrules import (
    CONTROL_CHARACTER,
    CONTROL_MULTILINE,
    CONTROL_ONE_LINE,
    FORMULA_START,
    current_today,
    has_control,
    neutralise_formula,
)
from gateway.normalise.values import (
    CODE_MAPS,
    MAX_YEAR,
    MIN_YEAR,
    PARIS,
    code_map,
    known_code,
    length,
    lookup_code,
    midnight,
    parse_date,
    parse_timestamp,
    shown_code,
    to_millis,
    type_name,
)

T = TypeVar("T")

__all__ = [
    "CONTROL_CHARACTER",
    "EVENT_NAMESPACE",
    "FORMULA_START",
    "MAX_AMOUNT",
    "MAX_TEXT",
    "PARIS",
    "Ctx",
    "Node",
    "event_id",
    "has_control",
    "known_code",
    "length",
    "lookup_code",
    "midnight",
    "neutralise_formula",
    "provenance",
    "short_digest",
    "shown_code",
    "to_millis",
    "unique",
]

MAX_TEXT = 500  # characters in one free-text field
MAX_AMOUNT = Decimal("1000000000")  # euros; fits decimal(12, 2)
CENT = Decimal("0.01")
EVENT_NAMESPACE = uuid.UUID("6f1e0c2a-7d0b-5c1e-9a43-2b8f0e5d6a11")  # gp-gateway decisions
_NUMBER_RE = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$", re.ASCII)  # ASCII digits only (not Arabic-Indic...)
# fast paths (ASCII digits only; anything else takes the general rules)
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_FR_DAY = re.compile(r"\d{2}/\d{2}/\d{4}", re.ASCII)
_PLAIN_NUMBER = re.compile(r"\d+(?:[.,]\d+)?", re.ASCII)


def unique(problems: Iterable[Problem]) -> list[Problem]:
    """Problems without duplicates, first occurrence order."""
    seen: set[Problem] = set()
    out: list[Problem] = []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def short_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


def event_id(source: str, *parts: object) -> str:
    """Deterministic decision id: the same source event always yields the same id (idempotency)."""
    return str(uuid.uuid5(EVENT_NAMESPACE, "|".join([source, *(str(p) for p in parts)])))


def provenance(
    *,
    origine: str,
    saisie: str,
    date_evenement: datetime,
    date_saisie: datetime,
    systeme: str,
    reference: str | None,
    operation: str = "CREATION",
) -> dict[str, Any]:
    return {
        "origine": origine,
        "saisie": saisie,
        "dateEvenement": to_millis(date_evenement),
        "dateSaisie": to_millis(date_saisie),
        "systemeSource": systeme,
        "referenceSource": reference,
        "operation": operation,
    }


class Ctx:
    """Collects the problems of one input (or of one part of it)."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.today: date | None = current_today()

    def add(self, path: str, reason: str, value: str | None = None) -> None:
        self.problems.append(Problem(path, reason, value))

    @property
    def ok(self) -> bool:
        return not self.problems


def _pattern(pattern: str) -> re.Pattern[str]:
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        # patterns are constants of the code; \d means an ASCII digit (not Arabic-Indic...)
        compiled = _PATTERNS[pattern] = re.compile(pattern, re.ASCII)
    return compiled


def _is_mapping(value: Any) -> bool:
    # most values are plain dicts or strings: skip the (slow) abstract-base-class check for them
    kind = type(value)
    return kind is dict or (kind is not str and isinstance(value, Mapping))


class Node:
    """A mapping of a decoded source with its path, and typed accessors that record problems.

    Hot path of every normaliser: the accessors read the mapping directly (no helper calls on the
    common path), and the path of a child node is only built when it is read (a problem, a child's
    path), from its parent's path at that time and its key (parents' paths are set before any
    child is read).
    """

    __slots__ = ("_parent", "_path", "_spec", "ctx", "data", "names", "sep")

    def __init__(
        self,
        ctx: Ctx,
        data: Mapping[str, Any],
        path: str,
        *,
        sep: str = "/",
        names: Mapping[str, str] | None = None,
    ) -> None:
        self.ctx = ctx
        self.data = data
        self._path: str | None = path
        self._parent: Node | None = None
        self._spec: Any = None  # key (a child), or (key, item, index) (an element of a list)
        self.sep = sep
        self.names: Mapping[str, str] = names or {}

    @property
    def path(self) -> str:
        path = self._path
        if path is None:
            parent, spec = self._parent, self._spec
            assert parent is not None  # noqa: S101 - set with _path None (_sub)
            path = parent._join(spec) if type(spec) is str else parent.item_path(*spec)
            self._path = path
        return path

    @path.setter
    def path(self, value: str) -> None:
        self._path = value

    # -- plumbing -------------------------------------------------------------------------------
    def key(self, name: str) -> str:
        return self.names.get(name, name)

    def _join(self, key: str) -> str:
        path = self.path
        return f"{path}{self.sep}{key}" if path else key

    def p(self, name: str) -> str:
        return self._join(self.names.get(name, name))

    def item_path(self, key: str, item: str, i: int) -> str:
        base = self._join(key)
        return f"{base}/{item}[{i + 1}]" if self.sep == "/" else f"{base}[{i}]"

    def _sub(self, data: Mapping[str, Any], spec: Any) -> Node:
        node = _new_node(Node)
        node.ctx = self.ctx
        node.data = data
        node._path = None
        node._parent = self
        node._spec = spec
        node.sep = self.sep
        node.names = self.names
        return node

    def raw(self, name: str) -> Any:
        names = self.names
        value = self.data.get(names.get(name, name) if names else name)
        if isinstance(value, str) and not value.strip():
            return None
        return value

    def has(self, name: str) -> bool:
        return self.raw(name) is not None

    def _missing(self, name: str, required: bool | str) -> None:
        if required:
            reason = required if isinstance(required, str) else "missing"
            self.ctx.add(self.p(name), reason)

    # -- scalars --------------------------------------------------------------------------------
    def text(
        self,
        name: str,
        *,
        required: bool | str = False,
        max_len: int = MAX_TEXT,
        pattern: str | None = None,
        multiline: bool = False,
    ) -> str | None:
        """A text; refused when too long, not matching `pattern`, or holding a control character
        (line breaks and tabs too, unless `multiline`). A free text (no pattern) a spreadsheet would
        run as a formula comes back neutralised (see `neutralise_formula`)."""
        names = self.names
        raw = self.data.get(names.get(name, name) if names else name)
        if type(raw) is str:
            value = raw.strip()
            if not value:
                raw = None
        elif isinstance(raw, str):
            value = str(raw).strip()
            if not raw.strip():
                raw = None
        elif raw is not None:
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                self.ctx.add(self.p(name), "not a text value", type_name(raw))
                return None
            value = str(raw).strip()
        if raw is None:
            if required:
                self._missing(name, required)
            return None
        if len(value) > max_len:
            self.ctx.add(self.p(name), "too large", f"{len(value)} characters")
            return None
        if pattern is not None:
            if not (_PATTERNS.get(pattern) or _pattern(pattern)).fullmatch(value):
                self.ctx.add(self.p(name), "bad format", f"expected {pattern}")
                return None
            return value
        if (CONTROL_MULTILINE if multiline else CONTROL_ONE_LINE).search(value) is not None:
            self.ctx.add(self.p(name), CONTROL_CHARACTER)
            return None
        return "'" + value if value.startswith(FORMULA_START) else value

    def code(self, name: str, enum: str, liste: str, *, required: bool | str = False) -> str | None:
        """An enum symbol from an SNE code (or from the symbol itself); unknown codes are problems."""
        names = self.names
        raw = self.data.get(names.get(name, name) if names else name)
        if type(raw) is str:  # fast path: a known code (else lookup_code records the problem)
            code = raw.strip()
            if not code:
                if required:
                    self._missing(name, required)
                return None
            by_code, symbols = CODE_MAPS.get(enum) or code_map(enum)
            symbol = by_code.get(code) or (code if code in symbols else None)
            if symbol is not None:
                return symbol
        raw = self.raw(name)
        if raw is None:
            self._missing(name, required)
            return None
        return lookup_code(self.ctx, self.p(name), raw, enum, liste)

    def date(self, name: str, *, required: bool | str = False, past: bool = False) -> date | None:
        """A date; `past`: the date of a past fact (a birth, the creation of the application), refused
        when after the day the input was received (one day of tolerance for time zones)."""
        names = self.names
        raw = self.data.get(names.get(name, name) if names else name)
        if type(raw) is str and (_ISO_DAY.fullmatch(raw) or _FR_DAY.fullmatch(raw)):
            try:  # fast path, the same rules as parse_date: a real day, MIN_YEAR..MAX_YEAR
                day = (
                    date.fromisoformat(raw)
                    if raw[2] != "/"
                    else date(int(raw[6:10]), int(raw[3:5]), int(raw[0:2]))
                )
            except ValueError:
                day = None
            if day is None or not MIN_YEAR <= day.year <= MAX_YEAR:
                self.ctx.add(self.p(name), "impossible date", "str")
                return None
        else:
            day = self._parsed(name, required, parse_date)
        if past and day is not None:
            today = self.ctx.today or datetime.now(PARIS).date()
            if day > today + timedelta(days=1):
                self.ctx.add(self.p(name), "date in the future", "date")
                return None
        return day

    def timestamp(self, name: str, *, required: bool | str = False) -> datetime | None:
        return self._parsed(name, required, parse_timestamp)

    def _parsed(self, name: str, required: bool | str, parse: Callable[[Any], T | str]) -> T | None:
        """`parse` applied to a present value; its message (a str) becomes a problem at the path."""
        raw = self.raw(name)
        if raw is None:
            if required:
                self._missing(name, required)
            return None
        value = parse(raw)
        if isinstance(value, str):
            self.ctx.add(self.p(name), value, type_name(raw))
            return None
        return value

    def number(
        self, name: str, *, required: bool | str = False, negative: str = "negative number"
    ) -> Decimal | None:
        names = self.names
        raw = self.data.get(names.get(name, name) if names else name)
        if type(raw) is str:  # fast path: plain digits, as the general rules below would read them
            text = raw.strip()
            if _PLAIN_NUMBER.fullmatch(text):
                value = Decimal(text.replace(",", "."))
                if value >= MAX_AMOUNT:
                    self.ctx.add(self.p(name), "too large")
                    return None
                return value
        raw = self.raw(name)
        if raw is None:
            if required:
                self._missing(name, required)
            return None
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            self.ctx.add(self.p(name), "not a number", type_name(raw))
            return None
        text = str(raw).strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
        if not isinstance(raw, float) and not _NUMBER_RE.match(text):
            self.ctx.add(self.p(name), "not a number", type_name(raw))
            return None
        try:
            value = Decimal(text.replace(",", "."))
        except InvalidOperation:
            self.ctx.add(self.p(name), "not a number", type_name(raw))
            return None
        if not value.is_finite():
            self.ctx.add(self.p(name), "not a number", "non-finite")
            return None
        if value < 0 or value.is_signed():  # -0.00 too: a sign that means nothing is a bad value
            self.ctx.add(self.p(name), negative)
            return None
        if value >= MAX_AMOUNT:
            self.ctx.add(self.p(name), "too large")
            return None
        return value

    def amount(self, name: str, *, required: bool | str = False) -> Decimal | None:
        """A euro amount, >= 0, rounded to the cent (decimal(12, 2))."""
        value = self.number(name, required=required, negative="negative amount")
        return None if value is None else value.quantize(CENT, rounding=ROUND_HALF_UP)

    def real(self, name: str, *, required: bool | str = False) -> float | None:
        value = self.number(name, required=required)
        return None if value is None else float(value)

    def integer(
        self, name: str, *, required: bool | str = False, minimum: int = 0, maximum: int = 100_000
    ) -> int | None:
        raw = self.raw(name)
        if raw is None:
            if required:
                self._missing(name, required)
            return None
        if isinstance(raw, bool):
            self.ctx.add(self.p(name), "not an integer", "bool")
            return None
        try:
            text = str(raw).strip()
            value = int(text) if isinstance(raw, str | int) and text.isascii() else None
        except ValueError:
            value = None
        if value is None:
            self.ctx.add(self.p(name), "not an integer", type_name(raw))
            return None
        if value < minimum:
            self.ctx.add(self.p(name), "negative number" if value < 0 else f"must be at least {minimum}")
            return None
        if value > maximum:
            self.ctx.add(self.p(name), "too large")
            return None
        return value

    def boolean(self, name: str, *, required: bool | str = False) -> bool | None:
        raw = self.raw(name)
        if raw is None:
            if required:
                self._missing(name, required)
            return None
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower() if isinstance(raw, str | int) else None
        if text in ("true", "1", "oui", "o", "vrai"):
            return True
        if text in ("false", "0", "non", "n", "faux"):
            return False
        self.ctx.add(self.p(name), "not a boolean (true/false)", type_name(raw))
        return None

    # -- structure ------------------------------------------------------------------------------
    def child(self, name: str, *, required: bool | str = False) -> Node | None:
        names = self.names
        key = names.get(name, name) if names else name
        raw = self.data.get(key)
        if type(raw) is dict:  # fast path
            return self._sub(raw, key)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if required:
                self._missing(name, required)
            return None
        if not _is_mapping(raw):
            self.ctx.add(self.p(name), "not a structure", type_name(raw))
            return None
        return self._sub(raw, key)

    def elements(self, name: str) -> tuple[str, list[Any]]:
        """(key, elements) of a list (`liste*` element or JSON array); no elements when absent."""
        names = self.names
        key = names.get(name, name) if names else name
        raw = self.data.get(key)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return key, []
        return key, raw if isinstance(raw, list) else [raw]

    def items(self, name: str, item: str) -> list[tuple[str, Any]]:
        """Elements of a list (`liste*` element or JSON array) with their paths."""
        key, values = self.elements(name)
        return [(self.item_path(key, item, i), v) for i, v in enumerate(values)]

    def child_items(self, name: str, item: str) -> list[Node]:
        out = []
        key, values = self.elements(name)
        for i, value in enumerate(values):
            if type(value) is dict or _is_mapping(value):
                out.append(self._sub(value, (key, item, i)))
            else:
                self.ctx.add(self.item_path(key, item, i), "not a structure", type_name(value))
        return out

    def codes(self, name: str, item: str, enum: str, liste: str) -> list[str]:
        out: list[str] = []
        key, elements = self.elements(name)
        if not elements:
            return out
        by_code, symbols = CODE_MAPS.get(enum) or code_map(enum)
        for i, element in enumerate(elements):
            value = element.get("code") if _is_mapping(element) else element  # JSON {"code": "T2"}
            if type(value) is str:  # fast path: a known code
                symbol = by_code.get(value.strip()) or (value.strip() if value.strip() in symbols else None)
                if symbol is not None:
                    if symbol not in out:
                        out.append(symbol)
                    continue
            path = self.item_path(key, item, i)
            if value is None or (isinstance(value, str) and not value.strip()):
                self.ctx.add(path, "missing")
                continue
            symbol = lookup_code(self.ctx, path, value, enum, liste)
            if symbol is not None and symbol not in out:
                out.append(symbol)
        return out


_new_node = object.__new__
_PATTERNS: dict[str, re.Pattern[str]] = {}
