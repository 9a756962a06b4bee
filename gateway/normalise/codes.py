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
    parsed, named = _schema(schema)
    lists: list[str] = []
    _walk(parsed, record, named, lists)
    return lists


def _walk(t: Any, value: Any, named: dict[str, Any], lists: list[str]) -> None:
    if isinstance(t, str):
        t = named.get(t)
    if isinstance(t, list):  # a union: the record or array branch of a non-null value
        if value is None:
            return
        for branch in t:
            b = named.get(branch) if isinstance(branch, str) else branch
            if isinstance(b, dict) and (
                (b.get("type") == "record" and isinstance(value, dict))
                or (b.get("type") == "array" and isinstance(value, list))
            ):
                _walk(b, value, named, lists)
                return
        return
    if not isinstance(t, dict):
        return
    kind = t.get("type")
    if kind == "array" and isinstance(value, list):
        items = t["items"]
        if isinstance(items, dict) or (
            isinstance(items, str) and named.get(items, {}).get("type") == "record"
        ):
            for v in value:
                _walk(items, v, named, lists)
        return
    if kind != "record" or not isinstance(value, dict):
        return
    for f in t["fields"]:
        name = f["name"]
        if name not in value:
            if "default" in f:
                value[name] = copy.copy(f["default"])
            continue
        v = value[name]
        if isinstance(v, UnknownCode):
            value[name] = INCONNU
            value[f"{name}CodeInconnu"] = v.raw
            lists.append(v.liste)
        elif isinstance(v, list) and v and any(isinstance(x, UnknownCode) for x in v):
            value[f"{name}CodesInconnus"] = [x.raw for x in v if isinstance(x, UnknownCode)]
            lists.extend(x.liste for x in v if isinstance(x, UnknownCode))
            value[name] = [INCONNU if isinstance(x, UnknownCode) else x for x in v]
        elif isinstance(v, dict | list):
            _walk(f["type"], v, named, lists)
