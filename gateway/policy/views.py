"""Per-recipient view schemas: the canonical schema with withheld fields removed (not nulled).

A view is defined by (canonical schema, set of kept leaf paths, derived fields, withholdable paths).
Its Avro schema is self-contained, named ``fr.gp.view.<Demande|Decision>_<hash8>``; a sub-record
whose leaves are all withheld disappears, a kept field keeps its type (a required field stays
required), and a partly kept sub-record becomes ``fr.gp.view.<Record>_<hash8>``.

Withholdable paths (``nullable``) are kept fields whose *value* a per-record rule may withhold (the
protected-household rule): they are optional in the schema (``["null", T]``, default null) and
projected as null when the rule applies to the record. The schema, its name and fingerprint are
therefore the same for every record of the view, whatever the rule decided: a recipient cannot
read the rule's outcome from the schema or the headers (issue 10 item 4). Projection + encoding
happen once per view.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.codec.avro import SINGLE_OBJECT_MAGIC, AvroCodec, load_schemas
from gateway.errors import Problem, RejectedMessage
from gateway.policy.derive import DERIVATIONS, Derivation
from gateway.policy.fields import Node, schema_tree, short_name

__all__ = ["VIEW_NAMESPACE", "View", "build_view", "schema_leaf_paths", "view_leaf_paths"]

VIEW_NAMESPACE = "fr.gp.view"

# Projection plan: (field name, kind, sub-plan, record name); kind 0 = copy, 1 = record, 2 = array of
# records, 3 = optional record (projected as 1: the checked writer picks the ["null", record] branch
# from the value), 4 = withholdable leaf (copied), 5 = withheld (null; only in the plan used when the
# rule applies), 6 = withholdable sub-record (every kept leaf withholdable: optional, projected as 3).
# Views built without a `family` name their nested records after a hash of their plan (the plan's
# encoding is then part of their names and fingerprints); the router's views name them by path.
Plan = tuple[tuple[str, int, "Plan", str], ...]


def _hash8(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:8]


def _expand(type_: Any, defined: set[str]) -> Any:
    """Inline named canonical types on first use (a self-contained schema), by name afterwards."""
    return load_schemas().expand(type_, defined)


def _wrap(node: Node, inner: Any) -> Any:
    if node.array:
        return {"type": "array", "items": inner}
    if node.optional:
        return ["null", inner]
    return inner


def _nullable(type_: Any) -> Any:
    """`type_` as an optional type, null first (so that its default can be null)."""
    if isinstance(type_, list):
        return type_ if type_ and type_[0] == "null" else ["null", *(t for t in type_ if t != "null")]
    return ["null", type_]


def _build(
    nodes: Iterable[Node],
    keep: frozenset[str],
    defined: set[str],
    nullable: frozenset[str] = frozenset(),
    owner: str | None = None,
) -> tuple[list[dict[str, Any]], Plan]:
    fields: list[dict[str, Any]] = []
    plan: list[tuple[str, int, Plan, str]] = []
    for node in nodes:
        decl = {k: v for k, v in node.field.items() if k in ("name", "doc", "default")}
        if node.is_leaf:
            if node.path in keep:
                decl["type"] = _expand(node.field["type"], defined)
                kind = 0
                if node.path in nullable:
                    decl["type"] = _nullable(decl["type"])
                    decl["default"] = None
                    kind = 4
                fields.append(decl)
                plan.append((node.name, kind, (), ""))
            continue
        sub_fields, sub_plan = _build(node.children, keep, defined, nullable, owner)
        if not sub_fields:
            continue  # every leaf withheld: the sub-record does not exist in the view
        assert node.record is not None  # noqa: S101 - non-leaf nodes always name their record
        if owner is not None:  # stable: named after the view and the path, whatever its fields
            name = f"{owner}_{node.path.replace('[]', '').replace('.', '_')}"
        else:
            name = f"{VIEW_NAMESPACE}.{short_name(node.record)}_{_hash8(sub_plan)}"
        if name in defined:
            inner: Any = name
        else:
            defined.add(name)
            inner = {"type": "record", "name": name, "fields": sub_fields}
        decl["type"] = _wrap(node, inner)
        kind = 2 if node.array else 3 if node.optional else 1
        if not node.array and all(k in (4, 6) for _, k, _, _ in sub_plan):
            # every kept leaf withholdable: the whole sub-record is (null when withheld)
            decl["type"] = _nullable(decl["type"])
            decl["default"] = None
            kind = 6
        fields.append(decl)
        plan.append((node.name, kind, sub_plan, name))
    return fields, tuple(plan)


def _withheld_plan(plan: Plan) -> Plan:
    """The plan with every withholdable leaf or sub-record withheld (kinds 4 and 6 -> 5)."""
    return tuple(
        (name, 5 if kind in (4, 6) else kind, _withheld_plan(sub) if sub else sub, rec)
        for name, kind, sub, rec in plan
    )


def _project(record: Mapping[str, Any], plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kind, sub, _record_name in plan:
        if kind == 5:
            out[name] = None
            continue
        value = record.get(name)
        if kind in (0, 4) or value is None:
            out[name] = value
        elif kind != 2:
            out[name] = _project(value, sub)
        else:
            out[name] = [_project(v, sub) for v in value]
    return out


@dataclass(frozen=True, eq=False)
class View:
    """One recipient view of a canonical schema."""

    schema: str
    name: str
    paths: frozenset[str]
    derived: tuple[Derivation, ...]
    avro: dict[str, Any]
    codec: AvroCodec
    classes: tuple[str, ...]
    plan: Plan = field(repr=False)
    nullable: frozenset[str] = frozenset()  # kept paths whose value a per-record rule may withhold
    withheld_plan: Plan = field(default=(), repr=False)
    # classes still disclosed when the withholdable values are withheld
    classes_withheld: tuple[str, ...] = ()
    # what the Avro body depends on: views of the same shape (e.g. of roles with the same grants)
    # encode a record to the same body bytes, whatever their names
    shape: tuple[Any, ...] = ()

    @property
    def fingerprint_hex(self) -> str:
        return self.codec.fingerprint_hex

    def project(self, record: Mapping[str, Any], secret: bytes, *, withhold: bool = False) -> dict[str, Any]:
        out = _project(record, self.withheld_plan if withhold and self.nullable else self.plan)
        for d in self.derived:
            out[d.name] = d.fn(record, secret)
        return out

    def disclosed_classes(self, *, withhold: bool = False) -> tuple[str, ...]:
        """Classes holding a value in a record of this view (fewer when the values are withheld)."""
        return self.classes_withheld if withhold and self.nullable else self.classes

    @property
    def frame_prefix(self) -> bytes:
        """The single-object header of this view's records (``C3 01`` + fingerprint)."""
        return SINGLE_OBJECT_MAGIC + self.codec.fingerprint

    def encode(self, record: Mapping[str, Any], secret: bytes, *, withhold: bool = False) -> bytes:
        """Project and encode as an Avro single-object frame of the view schema (`withhold`: the
        withholdable values are null)."""
        return self.frame_prefix + self.encode_body(record, secret, withhold=withhold)

    def encode_body(self, record: Mapping[str, Any], secret: bytes, *, withhold: bool = False) -> bytes:
        """The Avro body (no frame): the same bytes for every view of the same `shape`."""
        try:
            return self.codec.encode_checked(self.project(record, secret, withhold=withhold))
        except RejectedMessage:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise RejectedMessage(
                f"cannot project onto {self.name}", [Problem(self.schema, type(exc).__name__)]
            ) from exc


def build_view(
    schema: str,
    paths: frozenset[str],
    derive: Iterable[str],
    leaf_classes: Mapping[str, str],
    *,
    nullable: frozenset[str] = frozenset(),
    family: Mapping[str, Any] | None = None,
) -> View:
    """The view of `schema` keeping exactly `paths` (leaf paths) plus the named derivations; the
    values of `nullable` (kept paths) may be withheld per record (optional in the schema).

    `family` (the router gives the role and its conditional grants) names the view *stably*: the
    name is a hash of (schema, family) and nested records are named after the view and their path,
    so a policy change that grants or withholds fields gives a new version of the same named
    record (a new version of the same registry subject, checked for compatibility), not a new
    record. Without it, the name is a hash of the paths (a different name for every field set)."""
    derived = tuple(DERIVATIONS[d] for d in derive if schema in DERIVATIONS[d].schemas)
    nullable = nullable & paths
    if family is not None:
        name = f"{VIEW_NAMESPACE}.{short_name(schema)}_{_hash8({'schema': schema, **family})}"
    else:
        ident: dict[str, Any] = {
            "schema": schema,
            "paths": sorted(paths),
            "derived": [d.name for d in derived],
        }
        if nullable:
            ident["nullable"] = sorted(nullable)
        name = f"{VIEW_NAMESPACE}.{short_name(schema)}_{_hash8(ident)}"
    fields, plan = _build(schema_tree(schema), paths, set(), nullable, name if family is not None else None)
    fields += [d.field() for d in derived]
    avro = {
        "type": "record",
        "name": name,
        "doc": f"View of {schema} produced by the access policy: withheld fields do not exist"
        + ("; an optional field may be null when a rule withholds its value." if nullable else "."),
        "fields": fields,
    }
    codec = AvroCodec.from_schema(avro, name)
    classes = tuple(sorted({leaf_classes[p] for p in paths if p in leaf_classes}))
    still = tuple(sorted({leaf_classes[p] for p in paths - nullable if p in leaf_classes}))
    shape = (schema, paths, tuple(d.name for d in derived), nullable)
    return View(
        schema, name, paths, derived, avro, codec, classes, plan, nullable, _withheld_plan(plan), still, shape
    )


def schema_leaf_paths(avro: Mapping[str, Any]) -> set[str]:
    """Leaf paths that exist in a (self-contained) view schema: what a recipient can ever receive."""
    records: dict[str, Mapping[str, Any]] = {}
    out: set[str] = set()

    def record_of(t: Any) -> tuple[Mapping[str, Any] | None, bool]:
        if isinstance(t, list):
            branches = [b for b in t if b != "null"]
            return record_of(branches[0]) if len(branches) == 1 else (None, False)
        if isinstance(t, dict) and t.get("type") == "array":
            rec, _ = record_of(t["items"])
            return rec, True
        if isinstance(t, dict) and t.get("type") == "record":
            records[str(t["name"])] = t
            return t, False
        if isinstance(t, str) and t in records:
            return records[t], False
        return None, False

    def walk(rec: Mapping[str, Any], prefix: str, seen: frozenset[str]) -> None:
        for f in rec["fields"]:
            sub, array = record_of(f["type"])
            path = f"{prefix}{f['name']}"
            if sub is None or sub["name"] in seen:
                out.add(path)
            else:
                walk(sub, path + ("[]." if array else "."), seen | {sub["name"]})

    records[str(avro["name"])] = avro
    walk(avro, "", frozenset({str(avro["name"])}))
    return out


def view_leaf_paths(record: Mapping[str, Any], prefix: str = "") -> set[str]:
    """Leaf paths holding a value in a decoded view record (empty lists and nulls stop the walk)."""
    out: set[str] = set()
    for key, value in record.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= view_leaf_paths(value, path + ".")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for v in value:
                out |= view_leaf_paths(v, path + "[].")
        else:
            out.add(path)
    return out
