"""Avro view schema -> PostgreSQL columns (pure): one column per top-level field of the view."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["COMPATIBLE", "columns_of"]

_PRIMITIVE = {
    "string": "text",
    "boolean": "boolean",
    "int": "integer",
    "long": "bigint",
    "float": "real",
    "double": "double precision",
    "bytes": "bytea",
}
_LOGICAL = {
    "date": "date",
    "timestamp-millis": "timestamp with time zone",
    "timestamp-micros": "timestamp with time zone",
    "time-millis": "time without time zone",
    "time-micros": "time without time zone",
    "uuid": "text",
}
# (column has, view wants): a change PostgreSQL makes without losing a value
COMPATIBLE = {("integer", "bigint"), ("real", "double precision"), ("integer", "numeric")}


def _named(schema: Any, out: dict[str, Any]) -> None:
    if isinstance(schema, list):
        for s in schema:
            _named(s, out)
    elif isinstance(schema, dict):
        if "name" in schema and schema.get("type") in ("record", "enum", "fixed"):
            out[schema["name"]] = schema
        for f in schema.get("fields", []) or []:
            _named(f.get("type"), out)
        for k in ("items", "values"):
            if k in schema:
                _named(schema[k], out)


def _pg(type_: Any, named: Mapping[str, Any]) -> str:
    if isinstance(type_, list):
        branches = [t for t in type_ if t != "null"]
        return _pg(branches[0], named) if len(branches) == 1 else "jsonb"
    if isinstance(type_, str):
        if type_ in _PRIMITIVE:
            return _PRIMITIVE[type_]
        return _pg(named[type_], named) if type_ in named else "text"
    logical = type_.get("logicalType")
    if logical == "decimal":
        return f"numeric({int(type_['precision'])},{int(type_.get('scale', 0))})"
    if logical in _LOGICAL:
        return _LOGICAL[logical]
    kind = type_.get("type")
    if kind == "enum":
        return "text"
    if kind in ("record", "array", "map"):
        return "jsonb"
    if kind == "fixed":
        return "bytea"
    return _pg(kind, named)


def columns_of(schema: Mapping[str, Any]) -> dict[str, str]:
    """Top-level field name -> PostgreSQL type, in the schema's order."""
    named: dict[str, Any] = {}
    _named(schema, named)
    return {f["name"]: _pg(f["type"], named) for f in schema.get("fields", [])}
