"""A record's row for the PostgreSQL sink (pure): its values as a JSON array, in the order of its
columns (the gp_ columns, then the writer schema's fields), for `jsonb_array_elements`; and what a
writer schema tells about its columns, worked out once per schema."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from gateway.connectors import SinkRecord, to_json_bytes

from connectors.postgres.columns import columns_of

__all__ = [
    "C_COLLATED",
    "SYSTEM",
    "Shape",
    "base_type",
    "described",
    "not_finite",
    "render_row",
    "row_values",
]

SYSTEM = {
    "gp_key": "text",
    "gp_event_id": "text",
    "gp_view": "text",
    "gp_topic": "text",
    "gp_partition": "integer",
    "gp_offset": "bigint",
}
# key columns compared byte by byte (identifiers, ASCII): the "C" collation. Under a language's
# collation (fr_FR.UTF-8, even C.UTF-8) every comparison of a primary key's text goes through the
# locale: -1.9 µs of server CPU a row on this machine's PostgreSQL 15 (docs/sinks.md, Measured)
C_COLLATED = frozenset({"gp_key", "gp_topic"})


# column types whose values JSON does not carry as PostgreSQL reads them: those rows go one by one
_SET_UNSAFE = frozenset({"bytea"})
# ... and those whose NaN and infinities it does not carry (to_json writes them null)
_FLOATS = frozenset({"real", "double precision"})


def not_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def base_type(pg_type: str) -> str:
    return pg_type.split("(", 1)[0]


@dataclass(frozen=True, slots=True, eq=False)
class Shape:
    """What a writer schema tells the sink, worked out once (its records come by the thousand).
    Compared and hashed as the object it is: one per schema object (`described`)."""

    columns: Mapping[str, str]  # its columns, in the schema's order: name -> PostgreSQL type
    names: tuple[str, ...]  # the same names: a row's values follow them, after the gp_ columns
    unsafe: bool  # a bytea column (JSON does not carry it): rows one by one
    floats: tuple[str, ...]  # its float columns (NaN and infinities: rows one by one)


_SHAPES: dict[int, tuple[Any, Shape]] = {}  # id(schema) -> (schema, its shape)


def described(schema: Any) -> Shape:
    """The Shape of a writer schema, worked out once per schema object."""
    known = _SHAPES.get(id(schema))
    if known is None or known[0] is not schema:
        wanted = MappingProxyType(columns_of(schema) if schema else {})
        shape = Shape(
            columns=wanted,
            names=tuple(wanted),
            unsafe=not _SET_UNSAFE.isdisjoint(map(base_type, wanted.values())),
            floats=tuple(c for c, t in wanted.items() if base_type(t) in _FLOATS),
        )
        if len(_SHAPES) >= 256:  # a view has a few schemas: bounded whatever a caller passes
            _SHAPES.clear()
        known = _SHAPES[id(schema)] = (schema, shape)
    return known[1]


def row_values(r: SinkRecord, names: tuple[str, ...]) -> list[Any]:
    """The row's values: the gp_ columns (SYSTEM's order), then the record's fields named `names`
    (a missing field is null). A record decoded from its writer schema holds exactly those fields
    in that order: its values are taken as they are, without a lookup a field."""
    record = r.record
    head = [r.key, r.event_id(), r.schema, r.topic, r.partition, r.offset]
    if tuple(record) == names:
        head += record.values()
    else:
        head += [record.get(c) for c in names]
    return head


def render_row(r: SinkRecord) -> bytes | None:
    """The record's row as a JSON array (`row_values`: one element of the statement's
    `jsonb_array_elements`); None when JSON cannot carry it (a bytea column, NaN or an infinity, a
    value JSON does not take): then it is inserted as a row of its own. An array, not an object:
    the server does not read each column's name again in every row, nor sort them (-3 µs a demand
    row of its CPU, docs/sinks.md), and the row is made without a dict a record (-1 to -2 µs)."""
    shape = described(r.writer_schema)
    record = r.record
    if shape.unsafe or any(not_finite(record.get(c)) for c in shape.floats):
        return None
    try:
        return to_json_bytes(row_values(r, shape.names))
    except (TypeError, ValueError):
        return None
