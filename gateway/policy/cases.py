"""Declarative policy test cases (in the style of `rpk connect test`): input + actor in, output asserted.

```yaml
cases:
  - name: Rennes Métropole sees a Rennes demand without health data
    actor: "243500139"
    history:                      # earlier records of the same application (build the scope state)
      - {schema: fr.gp.Demande, sample: demande}
    input:
      schema: fr.gp.Decision
      sample: decision            # a built-in fictitious record (demande | decision) ...
      args: {kind: DESIGNATION, origine: "824541148"}
      set: {designation.contingent: COLACT}   # ... with dotted overrides; or `record:` in full
    expect:                       # or `expect: not_delivered`
      rule: territory:commune
      present: [designation.designataire]
      absent: [handicap]
      fields: {typeEvenement: DESIGNATION}
```
Failures name the case, the path and what was expected; actual values are never printed.

Meaning of the expectations (issue 10): paths are field paths of the canonical schema or of the
view schema, `[]` and list indexes optional (`cotitulaires.mel` = `cotitulaires[].mel`); a path that
names no field, or an unknown class, is an error (a case that checks nothing), not a pass.
`present` = disclosed in this record (a value, not null); `absent` = not disclosed in this record:
the path is missing from the view, or its value is null (withheld) or an empty list; an `absent`
on a field the input itself holds no value in is reported as checking nothing.
`classes_include` / `classes_exclude` = the classes of the leaves that hold a value in this record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.codec.avro import decode_single_object, load_schemas
from gateway.errors import ConfigError, GatewayError, Problem
from gateway.policy.fields import leaf_paths
from gateway.policy.router import Router
from gateway.policy.samples import sample_decision, sample_demande
from gateway.policy.scope import ScopeState
from gateway.policy.views import schema_leaf_paths

__all__ = [
    "CaseResult",
    "coerce_record",
    "disclosed",
    "disclosed_classes",
    "known_paths",
    "load_cases",
    "run_cases",
    "values_at",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaseInput(_Strict):
    schema_: str = Field(alias="schema")
    sample: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    set: dict[str, Any] = Field(default_factory=dict)
    record: dict[str, Any] | None = None


class Expect(_Strict):
    delivered: bool = True
    rule: str | None = None
    present: list[str] = Field(default_factory=list)
    absent: list[str] = Field(default_factory=list)
    fields: dict[str, Any] = Field(default_factory=dict)
    classes_include: list[str] = Field(default_factory=list)
    classes_exclude: list[str] = Field(default_factory=list)
    audited: bool | None = None


class Case(_Strict):
    name: str
    actor: str
    history: list[CaseInput] = Field(default_factory=list)
    input: CaseInput
    expect: Expect | str


class CaseFile(_Strict):
    cases: list[Case]


@dataclass(frozen=True)
class CaseResult:
    name: str
    actor: str
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def _coerce(value: Any, type_: Any) -> Any:
    schemas = load_schemas()
    if value is None:
        return None
    if isinstance(type_, list):
        for branch in type_:
            if branch == "null":
                continue
            return _coerce(value, branch)
        return value
    if isinstance(type_, dict):
        logical = type_.get("logicalType")
        if logical == "decimal":
            return Decimal(str(value))
        if logical == "date" and isinstance(value, str):
            return date.fromisoformat(value)
        if logical == "timestamp-millis" and isinstance(value, str):
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        if type_.get("type") == "array" and isinstance(value, list):
            return [_coerce(v, type_["items"]) for v in value]
        return value
    if isinstance(type_, str) and "." in type_ and isinstance(value, dict):
        raw = schemas.raw(type_)
        if raw.get("type") == "record":
            return coerce_record(value, raw)
    return value


def coerce_record(record: Mapping[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    """YAML/JSON record -> canonical Python values (decimals, ISO dates and timestamps)."""
    out = dict(record)
    for f in raw["fields"]:
        if f["name"] in out:
            out[f["name"]] = _coerce(out[f["name"]], f["type"])
    return out


def _set_path(record: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node: Any = record
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value


def _get_path(record: Any, path: str) -> Any:
    node = record
    for part in path.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def build_input(spec: CaseInput) -> tuple[str, dict[str, Any]]:
    schema = spec.schema_ if "." in spec.schema_ else f"fr.gp.{spec.schema_}"
    if spec.record is not None:
        record = dict(spec.record)
    elif spec.sample == "demande":
        args = dict(spec.args)
        if "communes" in args:
            args["communes"] = tuple(args["communes"])
        record = sample_demande(**args)
    elif spec.sample == "decision":
        record = sample_decision(**spec.args)
    else:
        raise ConfigError("case input needs `record` or `sample: demande|decision`")
    for path, value in spec.set.items():
        _set_path(record, path, value)
    record = coerce_record(record, load_schemas().raw(schema))
    problems = load_schemas().codec(schema).problems(record)
    if problems:
        raise ConfigError(f"case input is not a valid {schema}", problems)
    return schema, record


def _same(expected: Any, actual: Any) -> bool:
    if expected == actual:
        return True
    return isinstance(actual, Decimal | date | datetime) and str(expected) == str(actual)


def _bare(path: str) -> str:
    """A case path without list markers and indexes: `cotitulaires[].mel`, `cotitulaires.0.mel` and
    `cotitulaires.mel` name the same field."""
    return ".".join(p for p in path.replace("[]", "").split(".") if not p.isdigit())


def _prefixes(paths: set[str]) -> set[str]:
    return {p.rsplit(".", i)[0] for p in paths for i in range(p.count(".") + 1)}


def known_paths(schema: str, view_avro: Mapping[str, Any]) -> set[str]:
    """Every field path (records and leaves, bare) of the canonical schema and of the view schema."""
    canonical = {_bare(p) for p in leaf_paths(schema)}
    return _prefixes(canonical | {_bare(p) for p in schema_leaf_paths(view_avro)})


def values_at(record: Any, path: str) -> list[Any]:
    """The values at a bare `path` of a decoded record (one per element of the lists on the way);
    [] when the path is missing."""
    nodes = [record]
    for part in path.split("."):
        nxt: list[Any] = []
        for node in nodes:  # lists are flattened below: nodes are records or scalars
            if isinstance(node, Mapping) and part in node:
                nxt.append(node[part])
        nodes = [v for n in nxt for v in (n if isinstance(n, list) else [n])]
    return nodes


def disclosed(record: Any, path: str) -> bool:
    """A field is disclosed in a record when it holds a value: missing from the view, null
    (withheld) and an empty list are all *not disclosed*."""
    return any(v is not None and v != [] for v in values_at(record, path))


def disclosed_classes(record: Mapping[str, Any], leaf_classes: Mapping[str, str]) -> set[str]:
    """The classes of the leaves that hold a value in this (decoded view) record."""
    return {cls for leaf, cls in leaf_classes.items() if disclosed(record, _bare(leaf))}


def _check(case: Case, router: Router) -> list[str]:
    state: ScopeState | None = None
    for past in case.history:
        schema, record = build_input(past)
        state = router.route(schema, None, record, state).state
    schema, record = build_input(case.input)
    key = (record.get("numUnique") or "").encode() or None
    result = router.route(schema, key, record, state)
    delivery = result.for_actor(case.actor)
    expect = case.expect
    if isinstance(expect, str):
        if expect != "not_delivered":
            return [f"unknown expectation {expect!r} (use not_delivered or a mapping)"]
        return [] if delivery is None else ["delivered, expected not_delivered"]
    if not expect.delivered:
        return [] if delivery is None else ["delivered, expected not_delivered"]
    if delivery is None:
        return ["not delivered"]
    failures = []
    known = known_paths(schema, delivery.view.avro)
    for p in [*expect.present, *expect.absent, *expect.fields]:
        if _bare(p) not in known:
            failures.append(f"{p}: names no field of the canonical or view schemas (checks nothing)")
    classes = set(router.policy.file.classes)
    for c in [*expect.classes_include, *expect.classes_exclude]:
        if c not in classes:
            failures.append(f"class {c}: not a class of the policy (checks nothing)")
    if failures:
        return failures
    if expect.rule is not None and result.rules.get(case.actor) != expect.rule:
        failures.append(f"rule: expected {expect.rule}, got {result.rules.get(case.actor)}")
    codec = delivery.view.codec
    _, out = decode_single_object(delivery.value, {codec.fingerprint: codec})
    for p in expect.present:
        if not disclosed(out, _bare(p)):
            failures.append(f"{p}: expected present (disclosed in this record), not disclosed")
    for p in expect.absent:
        if not disclosed(record, _bare(p)):
            failures.append(f"{p}: the input holds no value there, so `absent` checks nothing")
        elif disclosed(out, _bare(p)):
            failures.append(f"{p}: expected absent (not disclosed in this record), disclosed")
    for p, want in expect.fields.items():
        try:
            got = _get_path(out, p)
        except (KeyError, IndexError, TypeError, ValueError):
            failures.append(f"{p}: expected {want!r}, field missing from the output")
            continue
        if not _same(want, got):
            failures.append(f"{p}: expected {want!r}, got a different value ({type(got).__name__})")
    shown = disclosed_classes(out, router.policy.leaf_classes.get(schema, {}))
    for c in expect.classes_include:
        if c not in shown:
            failures.append(f"class {c}: expected disclosed in this record, not disclosed")
    for c in expect.classes_exclude:
        if c in shown:
            failures.append(f"class {c}: expected not disclosed in this record, disclosed")
    if expect.audited is not None:
        audited = case.actor in {e["actor"] for e in result.audit_entries()}
        if audited != expect.audited:
            failures.append(f"audit: expected {'an' if expect.audited else 'no'} entry")
    return failures


def load_cases(path: Path) -> list[Case]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, RecursionError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read cases {path}: {type(exc).__name__}") from exc
    try:
        return CaseFile.model_validate(raw).cases
    except ValidationError as exc:
        problems = [Problem(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        raise ConfigError(f"bad cases file {path}", problems) from exc


def run_cases(cases: list[Case], router: Router) -> list[CaseResult]:
    results = []
    for case in cases:
        try:
            failures = _check(case, router)
        except GatewayError as exc:
            failures = [f"error: {exc}"]
        except (TypeError, KeyError, IndexError, ValueError) as exc:
            failures = [f"error: bad case input or history ({type(exc).__name__})"]
        results.append(CaseResult(case.name, case.actor, failures))
    return results
