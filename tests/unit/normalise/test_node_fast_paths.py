"""The fast paths of `Node` (plain dates, plain numbers, known codes, lazy paths) give exactly what the
general rules give: values, problems, paths. The oracles below are the general rules as they were
written before the fast paths (copied here so that a change to either side is caught)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.errors import Problem
from gateway.normalise.common import MAX_AMOUNT, Ctx, Node, lookup_code
from gateway.normalise.values import parse_date, type_name
from hypothesis import given, settings
from hypothesis import strategies as st

_NUMBER_RE = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$", re.ASCII)  # ASCII digits only (issue 10)
SETTINGS = settings(max_examples=400, deadline=None)

# text close to what the fast paths accept: digits (ASCII and not), separators, spaces, signs
NEAR = st.text(alphabet="0123456789-/.,+ T:Z\u0660\u00b2\u00a0e", max_size=14)
DAYS = st.dates(min_value=date(1, 1, 1)).map(date.isoformat)
TEXTS = st.one_of(NEAR, DAYS, st.decimals(allow_nan=True).map(str), st.text(max_size=12))


def _oracle_raw(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def oracle_date(raw: Any) -> tuple[date | None, list[Problem]]:
    raw = _oracle_raw(raw)
    if raw is None:
        return None, []
    value = parse_date(raw)
    if isinstance(value, str):
        return None, [Problem("p/x", value, type_name(raw))]
    return value, []


def oracle_number(raw: Any) -> tuple[Decimal | None, list[Problem]]:
    raw = _oracle_raw(raw)
    if raw is None:
        return None, []
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return None, [Problem("p/x", "not a number", type_name(raw))]
    text = str(raw).strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    if not isinstance(raw, float) and not _NUMBER_RE.match(text):
        return None, [Problem("p/x", "not a number", type_name(raw))]
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None, [Problem("p/x", "not a number", type_name(raw))]
    if not value.is_finite():
        return None, [Problem("p/x", "not a number", "non-finite")]
    if value < 0 or value.is_signed():  # -0 too (issue 10)
        return None, [Problem("p/x", "negative number")]
    if value >= MAX_AMOUNT:
        return None, [Problem("p/x", "too large")]
    return value, []


def oracle_code(raw: Any) -> tuple[str | None, list[Problem]]:
    raw = _oracle_raw(raw)
    if raw is None:
        return None, []
    ctx = Ctx()
    return lookup_code(ctx, "p/x", raw, "TypeLogement", "ListeTypeLogement"), ctx.problems


def _node(value: Any) -> tuple[Ctx, Node]:
    ctx = Ctx()
    return ctx, Node(ctx, {"x": value}, "p")


def _same(result: Any, ctx: Ctx, expected: tuple[Any, list[Problem]]) -> None:
    assert (result, ctx.problems) == expected
    assert type(result) is type(expected[0])
    if isinstance(result, Decimal):
        assert str(result) == str(expected[0])  # same exponent too


@SETTINGS
@given(TEXTS)
def test_dates_follow_the_general_rules(text: str) -> None:
    ctx, n = _node(text)
    _same(n.date("x"), ctx, oracle_date(text))


@SETTINGS
@given(st.one_of(TEXTS, st.integers(), st.floats(), st.booleans()))
def test_numbers_follow_the_general_rules(raw: Any) -> None:
    ctx, n = _node(raw)
    _same(n.number("x"), ctx, oracle_number(raw))


@SETTINGS
@given(st.one_of(st.sampled_from(["T1", " T2 ", "T3", "T9", "", " ", "t1", "1"]), TEXTS, st.integers()))
def test_codes_follow_the_general_rules(raw: Any) -> None:
    ctx, n = _node(raw)
    _same(n.code("x", "TypeLogement", "ListeTypeLogement"), ctx, oracle_code(raw))


def test_known_edge_cases() -> None:
    for text, expected in [
        ("2024-02-29", date(2024, 2, 29)),
        ("2023-02-29", None),  # impossible date
        ("1879-12-31", None),  # impossible date (year)
        ("2201-01-01", None),
        ("\u0662\u0660\u0662\u0664-01-01", None),  # Arabic-Indic digits: refused (issue 10)
        ("29/02/2024", date(2024, 2, 29)),  # the dd/mm/yyyy fast path
        ("30/02/2024", None),
        ("2024-01-01Z", date(2024, 1, 1)),
    ]:
        ctx, n = _node(text)
        assert n.date("x") == expected, text
        assert bool(ctx.problems) == (expected is None)
    for raw, expected_number in [("12", Decimal("12")), ("1,50", Decimal("1.50")), ("1000000000", None)]:
        ctx, n = _node(raw)
        assert n.number("x") == expected_number
        assert [p.reason for p in ctx.problems] == ([] if expected_number is not None else ["too large"])


def test_child_and_item_paths_are_the_eager_ones_even_when_read_late() -> None:
    ctx = Ctx()
    top = Node(ctx, {"a": {"b": {"listeC": [{"d": "x"}, "oops", {"d": ""}]}}}, "")
    a = top.child("a")
    assert a is not None
    b = a.child("b")
    assert b is not None
    items = b.child_items("listeC", "c")
    assert [i.path for i in items] == ["a/b/listeC/c[1]", "a/b/listeC/c[3]"]
    items[1].text("d", required=True)
    assert ctx.problems == [
        Problem("a/b/listeC/c[2]", "not a structure", "str"),
        Problem("a/b/listeC/c[3]/d", "missing"),
    ]
    assert b.items("listeC", "c")[0][0] == "a/b/listeC/c[1]"
    renamed = Node(ctx, {"x": {"y": {}}}, "", sep=".", names={"z": "x"})
    x = renamed.child("z")
    assert x is not None and x.path == "x" and x.p("y") == "x.y"
    dotted = x.child_items("y", "ignored")
    assert [d.path for d in dotted] == ["x.y[0]"]
    moved = Node(ctx, {"k": {}}, "old")
    moved.path = "new"
    child = moved.child("k")
    assert child is not None and child.path == "new/k"
