"""CEL expressions of the cotation grids and adequacy rules: compilation (once), the paths an
expression reads, and evaluation over plain data.

The CEL runtime is `cel-expr-python` (the CEL project's own Python binding of cel-cpp), chosen by
measurement (bench/bench_cotation.py, docs/cotation.md). Its runtime error texts may quote the value
that failed, so they are never shown: callers get a redacted reason.

Values are bound as CEL-native plain data: dates and timestamps as ISO strings ("2026-03-01", so
they compare in order), decimals as doubles, enums as their symbol strings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from cel_expr_python import cel

from gateway.cotation.household import months_between

__all__ = [
    "FUNCTIONS",
    "MACROS",
    "CompiledExpr",
    "ExprError",
    "Read",
    "compile_expr",
    "reads",
    "to_cel",
    "to_cel_fields",
]

MACROS = frozenset(
    {"all", "exists", "exists_one", "map", "filter", "transformList", "transformMap", "transformMapEntry"}
)
# identifiers that are not variables (literals, type names)
_WORDS = frozenset(
    {"true", "false", "null", "in", "int", "uint", "double", "bool", "string", "bytes", "list", "map", "dyn",
     "type", "null_type", "timestamp", "duration"}
)  # fmt: skip


def _iso(value: str) -> date:
    return date.fromisoformat(value[:10])


def _months(a: str, b: str) -> int:
    return months_between(_iso(a), _iso(b))


def _years(a: str, b: str) -> int:
    m = months_between(_iso(a), _iso(b))
    return int(m / 12)


def _days(a: str, b: str) -> int:
    return (_iso(b) - _iso(a)).days


# name -> (doc, overload id, return type, parameter types, implementation)
FUNCTIONS: dict[str, tuple[str, Any, list[Any], Any]] = {
    "mois_entre": (
        "whole months from date a to date b",
        cel.Type.INT,
        [cel.Type.STRING, cel.Type.STRING],
        _months,
    ),
    "annees_entre": (
        "whole years from date a to date b",
        cel.Type.INT,
        [cel.Type.STRING, cel.Type.STRING],
        _years,
    ),
    "jours_entre": ("days from date a to date b", cel.Type.INT, [cel.Type.STRING, cel.Type.STRING], _days),
}


class ExprError(ValueError):
    """An expression that does not compile: `reason` is the compiler's message (grid text only)."""


def _env(variables: Mapping[str, Any]) -> Any:
    decls = [
        cel.FunctionDecl(name, [cel.Overload(f"{name}_string_string", ret, params, impl=impl)])
        for name, (_doc, ret, params, impl) in FUNCTIONS.items()
    ]
    return cel.NewEnv(variables=dict(variables), functions=decls)


_ENVS: dict[tuple[str, ...], Any] = {}


def env_for(roots: tuple[str, ...]) -> Any:
    """One CEL environment per set of root variables (all dynamic, except `now`, a date string)."""
    env = _ENVS.get(roots)
    if env is None:
        env = _env({r: cel.Type.STRING if r == "now" else cel.Type.DYN for r in roots})
        _ENVS[roots] = env
    return env


@dataclass(frozen=True)
class CompiledExpr:
    source: str
    program: Any
    result: str  # "bool", "number", "dyn", "other"

    def evaluate(self, activation: Any) -> Any:
        """The value; a runtime error comes back as a str (its text may quote data: never show it).
        Callers check the type they expect (bool, number), which is enough: a str is never one."""
        return self.program.eval(activation).value()

    def evaluate_plain(self, activation: Any) -> Any:
        """`evaluate` for list or map results: their items as plain Python values."""
        return self.program.eval(activation).plain_value()


def _kind(t: Any) -> str:
    if t == cel.Type.BOOL:
        return "bool"
    if t in (cel.Type.INT, cel.Type.DOUBLE, cel.Type.UINT):
        return "number"
    if t == cel.Type.DYN:
        return "dyn"
    return "other"


def compile_expr(source: str, roots: tuple[str, ...]) -> CompiledExpr:
    try:
        program = env_for(roots).compile(source)
    except RuntimeError as exc:
        text = str(exc).removeprefix("INVALID_ARGUMENT: ")
        raise ExprError(" ".join(text.split())) from None
    return CompiledExpr(source, program, _kind(program.return_type()))


def activation(roots: tuple[str, ...], data: Mapping[str, Any]) -> Any:
    return env_for(roots).Activation(dict(data))


_SCALARS = (str, int, float, bool, type(None))


def to_cel(value: Any) -> Any:
    """Plain canonical data (fastavro's Python values) as CEL-native values."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, dict):
        return {k: v if isinstance(v, _SCALARS) else to_cel(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [v if isinstance(v, _SCALARS) else to_cel(v) for v in value]
    if isinstance(value, date):  # datetime included
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def to_cel_fields(record: Any, fields: frozenset[str] | None) -> dict[str, Any]:
    """`to_cel` of the top-level `fields` of a record only (None: all of them)."""
    if fields is None:
        return to_cel(record)  # type: ignore[no-any-return]
    return {k: to_cel(record.get(k)) for k in fields}


# ---------------------------------------------------------------------------- paths an expression reads

_TOKEN = re.compile(
    r"""\s*(?:(?P<str>(?:[rRbB]{0,2})(?:"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'))|(?P<num>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[uU]?)|(?P<id>[A-Za-z_]\w*)|(?P<op>==|!=|<=|>=|&&|\|\||[^\s\w]))"""
)


@dataclass(frozen=True)
class Read:
    """A path an expression reads: `path` is dotted from the root, `[]` marks an element of a list or
    map; `presence` is True when only the presence or the size is read (has(), == null, .size())."""

    path: str
    presence: bool = False
    guarded: bool = False  # inside has(): a missing value is the expression's own business


def _tokens(source: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None or m.end() == pos:
            if source[pos:].strip():
                out.append(("bad", source[pos:]))  # reads() fails closed on it
            break
        kind = m.lastgroup or "op"
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _closing(toks: list[tuple[str, str]], i: int) -> int:
    """Index of the bracket closing the one at i."""
    depth = 0
    for j in range(i, len(toks)):
        if toks[j][1] in "([{":
            depth += 1
        elif toks[j][1] in ")]}":
            depth -= 1
            if depth == 0:
                return j
    return len(toks)


def _bind_macro(
    toks: list[tuple[str, str]], j: int, path: str, bound: list[tuple[str, str, int]], declared: set[int]
) -> None:
    """`.macro(v, …)` at toks[j] ('.'): bind v (and the second variable of a two-variable form) to
    the elements of `path` until the macro's closing parenthesis."""
    end = _closing(toks, j + 2)
    names = [j + 3]
    if j + 6 < len(toks) and toks[j + 5][0] == "id" and toks[j + 6][1] == ",":
        names.append(j + 5)  # two-variable form (index, element): both read the element
    for k in names:
        bound.append((toks[k][1], path + "[]", end))
        declared.add(k)


def _chain(
    toks: list[tuple[str, str]], j: int, path: str, bound: list[tuple[str, str, int]], declared: set[int]
) -> tuple[str, int, bool]:
    """Follow `.field`, `["field"]` and `[i]` from toks[j]: (path, index after it, presence only)."""
    presence = False
    while j < len(toks):
        if toks[j][1] == "." and j + 1 < len(toks) and toks[j + 1][0] == "id":
            name = toks[j + 1][1]
            if j + 2 < len(toks) and toks[j + 2][1] == "(":  # a method call ends the chain
                is_macro = j + 4 < len(toks) and toks[j + 3][0] == "id" and toks[j + 4][1] == ","
                if name == "size":
                    presence = True
                elif name in MACROS and is_macro:
                    presence = True
                    _bind_macro(toks, j, path, bound, declared)
                break
            path = f"{path}.{name}"
            j += 2
        elif toks[j][1] == "[":
            end = _closing(toks, j)
            inner = toks[j + 1 : end]
            path = f"{path}.{inner[0][1][1:-1]}" if len(inner) == 1 and inner[0][0] == "str" else f"{path}[]"
            j = end + 1
        else:
            break
    return path, j, presence


def reads(source: str, roots: frozenset[str]) -> list[Read]:
    """Every select chain from a root variable (macro variables followed), as paths. An identifier
    that is neither a root, a macro variable, a function nor a literal gives a `?name` read: the
    caller refuses it (fail closed)."""
    toks = _tokens(source)
    out: list[Read] = []
    bound: list[tuple[str, str, int]] = []  # (variable, path, end index of its scope)
    has_until = -1
    declared: set[int] = set()
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        if kind == "bad":
            out.append(Read("?(unreadable expression text)"))
            break
        bound = [b for b in bound if b[2] > i]
        called = i + 1 < len(toks) and toks[i + 1][1] == "("
        if kind == "id" and text == "has" and called:
            has_until = _closing(toks, i + 1)
        prev = toks[i - 1][1] if i else ""
        var = next((b for b in reversed(bound) if b[0] == text), None)
        if kind != "id" or prev == "." or i in declared or (text not in roots and var is None):
            if kind == "id" and prev != "." and i not in declared and not called and text not in _WORDS:
                out.append(Read(f"?{text}"))  # a variable this scanner cannot follow
            i += 1
            continue
        path, j, presence = _chain(toks, i + 1, var[1] if var else text, bound, declared)
        nxt = [t[1] for t in toks[j : j + 2]]
        if nxt in (["==", "null"], ["!=", "null"]) or (prev in ("==", "!=") and toks[i - 2][1] == "null"):
            presence = True
        out.append(Read(path, presence=presence or i < has_until, guarded=i < has_until))
        i = j if j > i else i + 1
    return out
