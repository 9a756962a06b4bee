"""The field tree of a canonical schema: every leaf path, and its classification by the policy.

Paths are dotted field names; an array of records adds ``[]`` (``cotitulaires[].revenuFiscal.montantMoins1``).
A leaf is a field whose type is not a record (primitives, enums, arrays of non-records, logical types).
An optional record (``["null", record]``) is walked into, like a required one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from gateway.codec.avro import load_schemas
from gateway.errors import Problem

__all__ = [
    "CANONICAL_SCHEMAS",
    "Node",
    "classify_leaves",
    "leaf_paths",
    "schema_tree",
    "short_name",
]

CANONICAL_SCHEMAS = ("fr.gp.Demande", "fr.gp.Decision", "fr.gp.Cotation", "fr.gp.Adequation")
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


@dataclass(frozen=True)
class Node:
    """One field of a record. `children` is set for record and array-of-record fields."""

    name: str
    path: str
    field: Mapping[str, Any]  # the raw field declaration (type refers to named types by name)
    record: str | None = None  # full name of the record type, when the field holds records
    optional: bool = False  # ["null", record]
    array: bool = False  # array of records
    children: tuple[Node, ...] = ()

    @property
    def is_leaf(self) -> bool:
        return self.record is None

    def leaves(self) -> Iterator[Node]:
        if self.is_leaf:
            yield self
        else:
            for child in self.children:
                yield from child.leaves()


def short_name(schema: str) -> str:
    return schema.rsplit(".", 1)[-1]


def _full(name: str) -> str:
    return name if "." in name else f"fr.gp.{name}"


def _record_of(type_: Any) -> tuple[str | None, bool, bool]:
    """(record full name, optional, array) for a field type; record None for leaves."""
    schemas = load_schemas()
    optional = False
    array = False
    if isinstance(type_, list):
        branches = [b for b in type_ if b != "null"]
        if len(branches) != 1:
            return None, False, False
        optional = "null" in type_
        type_ = branches[0]
    if isinstance(type_, dict) and type_.get("type") == "array":
        array = True
        type_ = type_["items"]
    if isinstance(type_, str) and type_ not in _PRIMITIVES:
        full = _full(type_)
        if schemas.raw(full).get("type") == "record":
            return full, optional and not array, array
    return None, False, False


def _children(record: str, prefix: str, ancestors: frozenset[str] = frozenset()) -> tuple[Node, ...]:
    out = []
    ancestors = ancestors | {record}
    for field in load_schemas().raw(record)["fields"]:
        path = f"{prefix}{field['name']}"
        rec, optional, array = _record_of(field["type"])
        if rec is None or rec in ancestors:  # a recursive reference is classified as a leaf
            out.append(Node(field["name"], path, field))
        else:
            sub = f"{path}[]." if array else f"{path}."
            out.append(
                Node(field["name"], path, field, rec, optional, array, _children(rec, sub, ancestors)),
            )
    return tuple(out)


@cache
def schema_tree(schema: str) -> tuple[Node, ...]:
    """The top-level fields of a canonical record schema, as a tree."""
    return _children(_full(schema), "")


def leaf_paths(schema: str) -> list[str]:
    return [leaf.path for node in schema_tree(schema) for leaf in node.leaves()]


def _all_paths(schema: str) -> set[str]:
    out: set[str] = set()

    def walk(nodes: tuple[Node, ...]) -> None:
        for n in nodes:
            out.add(n.path.replace("[]", ""))
            walk(n.children)

    walk(schema_tree(schema))
    return out


def classify_leaves(
    schema: str, mapping: Mapping[str, str], where: str
) -> tuple[dict[str, str], list[Problem]]:
    """Resolve the class of every leaf by its longest matching path prefix.

    `mapping` keys are field paths (``[]`` optional) of a record or leaf; values are class names.
    Returns (leaf path -> class, problems): a key naming no field, and a leaf without a class, are
    problems (fail closed: the caller refuses the policy).
    """
    problems: list[Problem] = []
    known = _all_paths(schema)
    norm: dict[str, str] = {}
    for key, cls in mapping.items():
        k = key.replace("[]", "")
        if k not in known:
            problems.append(Problem(f"{where}.{key}", "names no field of the schema"))
        norm[k] = cls
    out: dict[str, str] = {}
    for path in leaf_paths(schema):
        parts = path.replace("[]", "").split(".")
        for i in range(len(parts), 0, -1):
            found = norm.get(".".join(parts[:i]))
            if found is not None:
                out[path] = found
                break
        else:
            problems.append(Problem(f"{where}.{path}", "canonical field has no class (fail closed)"))
    return out, problems
