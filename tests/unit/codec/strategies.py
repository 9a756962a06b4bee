"""Hypothesis strategies of valid values for any fastavro-parsed schema (the whole value space the
fast writer claims: full int/long ranges, unicode, negative and zero decimals, several timezones,
NaN / infinities, omitted fields that have a default or may be null), plus a leaf walker used to
corrupt one leaf of a valid record."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from gateway.codec.avro_write import INT_MAX, INT_MIN, LONG_MAX, LONG_MIN
from hypothesis import strategies as st

__all__ = ["Leaf", "leaves", "values"]

ZONES = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))]
MAX_DEPTH = 4


def _named(parsed: Any) -> dict[str, Any]:
    return dict(parsed.get("__named_schemas") or {}) if isinstance(parsed, dict) else {}


def values(parsed: Any) -> Any:
    """Values that fit `parsed` (a fastavro-parsed schema)."""
    return _Builder(_named(parsed)).build(parsed, 0)


def _decimals(precision: int, scale: int) -> Any:
    def make(coef: int, places: int, negative_zero: bool) -> Decimal:
        if coef == 0 and negative_zero:
            return Decimal(f"-0.{'0' * places}") if places else Decimal("-0")
        return Decimal(coef).scaleb(-places)

    return st.builds(
        make,
        st.integers(-(10**precision) + 1, 10**precision - 1) | st.sampled_from([0, 1, -1, 127, -128, 255]),
        st.integers(0, scale),
        st.booleans(),
    )


class _Builder:
    def __init__(self, named: dict[str, Any]) -> None:
        self.named = named

    def build(self, schema: Any, depth: int) -> Any:
        if isinstance(schema, str) and schema in self.named:
            schema = self.named[schema]
        if isinstance(schema, list):
            if depth >= MAX_DEPTH and "null" in schema:
                return st.none()
            return st.one_of([self.build(b, depth) for b in schema])
        if isinstance(schema, str):
            return self.primitive(schema)
        kind = schema["type"]
        logical = f"{kind}-{schema.get('logicalType')}"
        if logical == "int-date":
            return st.dates() | st.integers(INT_MIN, INT_MAX)
        if logical in ("long-timestamp-millis", "long-timestamp-micros"):
            aware = st.datetimes(datetime(1900, 1, 1), datetime(2100, 1, 1), timezones=st.sampled_from(ZONES))
            return aware | st.integers(LONG_MIN, LONG_MAX)
        if logical in ("long-local-timestamp-millis", "long-local-timestamp-micros"):
            return st.datetimes(datetime(1900, 1, 1), datetime(2100, 1, 1))
        if logical == "bytes-decimal":
            return _decimals(schema["precision"], schema.get("scale", 0))
        if logical == "string-uuid":
            return st.uuids() | st.text()
        if logical in {"int-time-millis", "long-time-micros"}:
            return st.times()
        if kind == "record":
            return self.record(schema, depth + 1)
        if kind == "enum":
            return st.sampled_from(schema["symbols"])
        if kind == "fixed":
            return st.binary(min_size=schema["size"], max_size=schema["size"])
        if kind == "array":
            if depth >= MAX_DEPTH:
                return st.just([])
            return st.lists(self.build(schema["items"], depth + 1), max_size=3)
        if kind == "map":
            return st.dictionaries(st.text(max_size=4), self.build(schema["values"], depth + 1), max_size=3)
        return self.primitive(kind)

    def primitive(self, kind: str) -> Any:
        return {
            "null": st.none(),
            "boolean": st.booleans(),
            "int": st.integers(INT_MIN, INT_MAX) | st.integers(-70, 70),
            "long": st.integers(LONG_MIN, LONG_MAX) | st.integers(-70, 70),
            "float": st.floats(width=32) | st.integers(-(10**6), 10**6),
            "double": st.floats() | st.integers(-(10**6), 10**6),
            "string": st.text(max_size=80) | st.text("abcé€😀", max_size=3),
            "bytes": st.binary(max_size=80),
        }[kind]

    def record(self, schema: dict[str, Any], depth: int) -> Any:
        required: dict[str, Any] = {}
        optional: dict[str, Any] = {}
        for field in schema["fields"]:
            strategy = self.build(field["type"], depth)
            nullable = isinstance(field["type"], list) and "null" in field["type"]
            (optional if "default" in field or nullable else required)[field["name"]] = strategy
        return st.fixed_dictionaries(required, optional=optional)


class Leaf:
    """One leaf of a record: where it is, its schema, and how to replace or delete it."""

    def __init__(  # noqa: PLR0917
        self, path: str, schema: Any, parent: Any, key: Any, field: dict[str, Any] | None, nullable: bool
    ) -> None:
        self.path, self.schema, self.parent, self.key, self.field = path, schema, parent, key, field
        self.nullable = nullable  # null (or an absent key) fits here

    def set(self, value: Any) -> None:
        self.parent[self.key] = value


def leaves(parsed: Any, record: Any) -> list[Leaf]:
    """Every non-record, non-null value of `record` (records are walked into), with its path."""
    named = _named(parsed)
    return list(_walk(parsed, record, "", named, None, None, None, False))


def _walk(  # noqa: PLR0917
    schema: Any,
    value: Any,
    path: str,
    named: dict[str, Any],
    parent: Any,
    key: Any,
    field: Any,
    nullable: bool,
) -> Iterator[Leaf]:
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    if isinstance(schema, list):
        if value is None:
            yield Leaf(path, schema, parent, key, field, True)  # a null that may be set to a wrong value
            return
        others = [b for b in schema if b != "null"]
        yield from _walk(others[0], value, path, named, parent, key, field, "null" in schema)
        return
    kind = schema["type"] if isinstance(schema, dict) else schema
    if kind == "record":
        for f in schema["fields"]:
            sub = f"{path}.{f['name']}" if path else f["name"]
            if f["name"] in value:
                yield from _walk(f["type"], value[f["name"]], sub, named, value, f["name"], f, False)
            elif "default" not in f:
                yield Leaf(sub, f["type"], value, f["name"], f, True)  # absent optional: can be set
        return
    if kind == "array":
        yield Leaf(path, schema, parent, key, field, nullable)
        for i, item in enumerate(value):
            yield from _walk(schema["items"], item, f"{path}[{i}]", named, value, i, None, False)
        return
    if kind == "null":
        return
    yield Leaf(path, schema, parent, key, field, nullable)
