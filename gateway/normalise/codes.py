"""Forward-compatible codes (issue 17): a code the SNE added to one of its lists after this version,
that has the shape of the list's codes (`codeShape` of the enum's schema), is carried, not refused.

The normalisers read it as an `UnknownCode` (gateway.normalise.values.lookup_code); `complete()` turns
each into the enum's default symbol INCONNU and puts the code itself in the sibling field
`<field>CodeInconnu` (or, for a list, `<field>CodesInconnus`, in order), classified like the field by
the policy. It also fills the fields a normaliser left out with their schema defaults. Unknown codes
of lists that reveal health data (resources, motifs) are carried in the health fields (fail closed).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from typing import Any

from gateway.codec.avro import load_schemas
from gateway.model.canonical import CanonicalRecord, canonical_key
from gateway.normalise.values import INCONNU, UnknownCode

__all__ = ["canonical", "complete"]


def canonical(schema: str, record: dict[str, Any]) -> CanonicalRecord:
    """The CanonicalRecord of a record a normaliser built (completed, unknown codes carried)."""
    lists = complete(schema, record)
    return CanonicalRecord(schema, canonical_key(schema, record), record, tuple(lists))


def _named(schema: Any, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(schema, list):
        for branch in schema:
            _named(branch, out)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed") and "name" in schema:
            out.setdefault(schema["name"], schema)
        for f in schema.get("fields", []):
            _named(f["type"], out)
        if "items" in schema:
            _named(schema["items"], out)
    return out


@cache
def _schema(name: str) -> tuple[Any, dict[str, Any]]:
    parsed = load_schemas().codec(name).parsed
    return parsed, _named(parsed, {})


def complete(schema: str, record: dict[str, Any]) -> list[str]:
    """Complete `record` (a canonical record being built, changed in place) and return the names of
    the code lists of the unknown codes it carries (for the metric, never the codes)."""
    lists: list[str] = []
    _plan(schema)(record, lists)
    return lists


Step = Callable[[dict[str, Any], list[str]], None]


@cache
def _plan(schema: str) -> Step:
    """The completion of one record schema, compiled once: only the fields that have a default, an
    unknown-code sibling, or sub-records with such fields are visited (the normalisers are hot)."""
    parsed, named = _schema(schema)
    step = _record_step(parsed, named, {})
    return step or (lambda record, lists: None)


def _resolve(t: Any, named: dict[str, Any]) -> Any:
    return named.get(t, t) if isinstance(t, str) else t


def _record_step(t: dict[str, Any], named: dict[str, Any], seen: dict[str, Step | None]) -> Step | None:
    name = t.get("name", "")
    if name in seen:
        return seen[name]
    seen[name] = None  # (no recursive types in the contract)
    fills: list[tuple[str, Any]] = []
    codes: list[str] = []
    code_lists: list[str] = []
    subs: list[tuple[str, Step, bool]] = []  # (field, step, is an array of records)
    field_names = {f["name"] for f in t["fields"]}
    for f in t["fields"]:
        fname = f["name"]
        if "default" in f:
            fills.append((fname, f["default"]))
        if f"{fname}CodeInconnu" in field_names:
            codes.append(fname)
        if f"{fname}CodesInconnus" in field_names:
            code_lists.append(fname)
        ftype = f["type"]
        branches = ftype if isinstance(ftype, list) else [ftype]
        for b in branches:
            rb = _resolve(b, named)
            if isinstance(rb, dict) and rb.get("type") == "record":
                sub = _record_step(rb, named, seen)
                if sub is not None:
                    subs.append((fname, sub, False))
            elif isinstance(rb, dict) and rb.get("type") == "array":
                items = _resolve(rb["items"], named)
                if isinstance(items, dict) and items.get("type") == "record":
                    sub = _record_step(items, named, seen)
                    if sub is not None:
                        subs.append((fname, sub, True))
    if not (fills or codes or code_lists or subs):
        return None

    def step(value: dict[str, Any], lists: list[str]) -> None:
        for fname, default in fills:
            if fname not in value:
                value[fname] = [] if default == [] else copy.copy(default)
        for fname in codes:
            v = value[fname]
            if type(v) is UnknownCode:
                value[fname] = INCONNU
                value[f"{fname}CodeInconnu"] = v.raw
                lists.append(v.liste)
        for fname in code_lists:
            vs = value[fname]
            if vs and any(type(x) is UnknownCode for x in vs):
                value[f"{fname}CodesInconnus"] = [x.raw for x in vs if type(x) is UnknownCode]
                lists.extend(x.liste for x in vs if type(x) is UnknownCode)
                value[fname] = [INCONNU if type(x) is UnknownCode else x for x in vs]
        for fname, sub, many in subs:
            v = value.get(fname)
            if many:
                if v:
                    for item in v:
                        if type(item) is dict:
                            sub(item, lists)
            elif type(v) is dict:
                sub(v, lists)

    seen[name] = step
    return step
