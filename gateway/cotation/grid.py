"""Cotation grids as data (loi ELAN): loading, checking, compiling (once).

A grid is YAML whose only required key is `criteria:`, a list of criteria with `id`, `label`,
`condition` (or `when`: a CEL boolean) and `points` (a number or a CEL expression); every other key
is optional (`id`, `epci`, `version`, `description`, ...). A grid is refused as a whole, with every
problem: YAML errors, duplicate ids, expressions that do not compile, of the wrong type, or that read
a field absent from the canonical schema, and criteria whose data no single policy class covers.

Each criterion is placed in the group (a field of fr.gp.CriteresCotation named by a policy class)
of the class that covers every datum it reads: a role that may see the group may see all of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.codec.avro import load_schemas
from gateway.cotation.bindings import CALCUL, LABEL_KINDS, RESERVED, ROOTS, SIGNAUX_CLASS
from gateway.cotation.expr import CompiledExpr, ExprError, Read, compile_expr, reads
from gateway.errors import ConfigError, Problem
from gateway.policy.fields import Node, schema_tree
from gateway.policy.model import ConditionalGrant, Policy

__all__ = ["Criterion", "Grid", "GridFile", "load_grid", "parse_grid"]

DEMANDE = "fr.gp.Demande"
GROUPS_RECORD = "fr.gp.CriteresCotation"


class CriterionFile(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    id: str = Field(min_length=1, max_length=64)
    label: str = Field(min_length=1)
    condition: str | bool = Field(alias="when")
    points: float | int | str


class GridFile(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    criteria: list[CriterionFile] = Field(min_length=1)
    id: str | None = None
    epci: str | None = None
    version: str | int | None = None
    communes: list[str] | None = Field(
        None, description="INSEE codes of the EPCI: only applications wanting one are scored."
    )


@dataclass(frozen=True)
class Criterion:
    id: str
    label: str
    condition: CompiledExpr | None  # None: always true
    points: CompiledExpr | float
    group: str  # policy class of fr.gp.CriteresCotation
    precheck: tuple[tuple[str, ...], ...]  # paths (keys from the root) that must not be null
    reads: tuple[str, ...]  # every path read (for reasons: names, never values)


@dataclass(frozen=True)
class Grid:
    id: str
    version: str | None
    epci: str | None
    criteria: tuple[Criterion, ...]
    calcul: tuple[str, ...]  # derived values the grid uses
    label_kinds: tuple[str, ...] = field(default=())
    communes: frozenset[str] = frozenset()
    demande_fields: frozenset[str] | None = None  # top-level fields of demande the grid reads
    prechecks: tuple[tuple[str, ...], ...] = ()  # every criterion's paths that must not be null
    combined: CompiledExpr | None = None  # [gp_ok[i] && condition_i, ...]: one evaluation for all


def _node(path: str) -> tuple[Node | None, str]:
    """The fr.gp.Demande node of a dotted path (`[]` = element); (None, reason) when absent."""
    nodes = schema_tree(DEMANDE)
    node: Node | None = None
    steps = [s for s in path.replace("[]", ".[]").split(".") if s]
    for i, step in enumerate(steps):
        if step == "[]":
            if node is None or not (node.array or _is_list_leaf(node)):
                return None, f"{'.'.join(steps[:i])} is not a list"
            if _is_list_leaf(node) and i + 1 < len(steps):
                return None, f"{'.'.join(steps[:i])} holds no records"
            continue
        if node is not None and node.array and (i == 0 or steps[i - 1] != "[]"):
            return None, f"{'.'.join(steps[:i])} is a list: select its elements (exists, all, [i])"
        found = next((n for n in nodes if n.name == step), None)
        if found is None:
            return None, f"no field {step!r} in fr.gp.Demande at {'.'.join(steps[:i]) or 'the top'}"
        node = found
        nodes = found.children
    return node, ""


def _is_list_leaf(node: Node) -> bool:
    """A list of values (enums, strings…), not of records."""
    if not node.is_leaf:
        return False
    t = node.field["type"]
    return isinstance(t, dict) and t.get("type") == "array"


def _prefix_class(policy: Policy, path: str) -> str | None:
    mapping = {k.replace("[]", ""): v for k, v in policy.file.fields.get(DEMANDE, {}).items()}
    parts = path.replace("[]", "").split(".")
    for i in range(len(parts), 0, -1):
        found = mapping.get(".".join(parts[:i]))
        if found is not None:
            return found
    return None


def _demande_classes(policy: Policy, path: str, presence: bool) -> set[str]:
    node, _ = _node(path)
    if node is None:
        return set()
    if node.is_leaf or presence:
        cls = policy.leaf_classes[DEMANDE].get(node.path) if node.is_leaf else None
        return {cls or _prefix_class(policy, node.path) or "unclassified"}
    return {policy.leaf_classes[DEMANDE].get(leaf.path, "unclassified") for leaf in node.leaves()}


def _read_problems(read: Read, where: str) -> tuple[list[Problem], list[str]]:
    """(problems, demande paths) of one read."""
    if read.path.startswith("?"):
        reason = f"cannot tell what {read.path[1:]!r} reads (write list macros on a field: x.exists(v, …))"
        return [Problem(where.split(": ", maxsplit=1)[0], reason)], []
    root, _, rest = read.path.partition(".")
    rest = rest.removeprefix("[]").lstrip(".") if root != "demande" else rest
    if root == "demande":
        if not rest:
            return [Problem(where, "reads the whole demande: select the fields it needs")], []
        node, reason = _node(rest)
        return ([Problem(where, reason)] if node is None else []), [rest]
    if root == "calcul":
        name = rest.split(".")[0].split("[")[0]
        if not name:
            return [Problem(where, "select a derived value: calcul.<name>")], []
        if name not in CALCUL:
            return [
                Problem(where, f"unknown derived value calcul.{name} (known: {', '.join(sorted(CALCUL))})")
            ], []
        return [], list(CALCUL[name][1])
    if root == "labels":
        kind = rest.split(".")[0].split("[")[0]
        if kind and kind not in LABEL_KINDS:
            return [Problem(where, f"unknown label kind labels.{kind} (known: {', '.join(LABEL_KINDS)})")], []
        sub = rest.split("[].", 1)[1] if "[]." in rest else ""
        if sub and sub.split(".")[0] not in {
            f["name"] for f in load_schemas().raw("fr.gp.LabelPrioritaire")["fields"]
        }:
            return [Problem(where, f"no field {sub.split('.')[0]!r} in a label")], []
    return [], []


def _grant(policy: Policy, role: str, cls: str) -> bool | ConditionalGrant | None:
    g = policy.roles[role].grants.get(cls)
    return None if g is None or g is False else g


def _withheld(policy: Policy, role: str, path: str) -> bool:
    bare = path.replace("[]", "")
    prefixes = [p.replace("[]", "") for p in policy.roles[role].withhold_paths.get(DEMANDE, [])]
    return any(bare == p or bare.startswith(p + ".") or p.startswith(bare + ".") for p in prefixes)


def _group(policy: Policy, read_classes: set[str], paths: list[str], groups: Sequence[str]) -> str | None:
    """The first class whose recipients may all see everything the criterion reads (so a role sees
    the points only if it may see their data); None if there is none."""
    ph = policy.file.protected_households
    protected_paths = [p.replace("[]", "") for p in ph.withhold_paths.get(DEMANDE, [])]
    protected = bool(read_classes & set(ph.withhold_classes)) or any(
        p.replace("[]", "").startswith(q) for p in paths for q in protected_paths
    )
    # priorite first, then the classes read, then any other class, widest audience first
    others = sorted(
        (c for c in policy.file.classes if c not in read_classes),
        key=lambda c: -sum(_grant(policy, r, c) is not None for r in policy.roles),
    )
    order = ["priorite", *[c for c in policy.file.classes if c in read_classes], *others]
    for g in order:
        if g not in groups or (protected and g not in ph.withhold_classes):
            continue
        ok = True
        for role in policy.roles:
            gg = _grant(policy, role, g)
            if gg is None:
                continue
            for cls in read_classes:
                gc = _grant(policy, role, cls)
                if gc is None or (gc is not True and gc != gg):
                    ok = False
            if any(_withheld(policy, role, p) for p in paths):
                ok = False
        if ok:
            return g
    return None


def _compile(src: str | bool, where: str, want: str, problems: list[Problem]) -> CompiledExpr | None:
    if src is True:
        return None  # always met
    if src is False:
        src = "false"  # a criterion switched off
    if re.search(rf"\b{RESERVED}\b", src):
        problems.append(Problem(where, f"{RESERVED} is a reserved name"))
        return None
    try:
        expr = compile_expr(src, ROOTS)
    except ExprError as exc:
        problems.append(Problem(where, f"does not compile: {exc}"))
        return None
    if expr.result not in (want, "dyn"):
        problems.append(Problem(where, f"must be a {want} expression, is {expr.result}"))
    return expr


def _precheck(all_reads: list[Read]) -> tuple[tuple[str, ...], ...]:
    out: set[tuple[str, ...]] = set()
    for r in all_reads:
        if r.guarded or r.path.split(".")[0] in ("now", "signaux", "labels"):
            continue
        steps = r.path.split("[]")[0].rstrip(".").split(".")
        if r.presence and "[]" not in r.path:
            steps = steps[:-1]
        if len(steps) > 1:
            out.add(tuple(steps))
    return tuple(sorted(out))


@dataclass
class _Uses:
    """What the criteria of a grid read, gathered while checking them."""

    calcul: set[str] = field(default_factory=set)
    kinds: set[str] = field(default_factory=set)
    top: set[str] = field(default_factory=set)


def _analyse(
    rs: list[Read], policy: Policy, where: str, uses: _Uses, problems: list[Problem]
) -> tuple[set[str], list[str]]:
    """(classes read, fr.gp.Demande paths read) of a criterion's reads; problems appended."""
    paths: list[str] = []
    classes: set[str] = set()
    for r in rs:
        probs, dpaths = _read_problems(r, f"{where}: {r.path}")
        problems += probs
        root = r.path.split(".")[0]
        if probs:
            continue
        if root == "demande":
            uses.top.add(dpaths[0].split(".")[0].split("[")[0])
            classes |= _demande_classes(policy, dpaths[0], r.presence)
        elif root == "calcul":
            uses.calcul.add(r.path.split(".")[1].split("[")[0])
            for p in dpaths:
                classes |= _demande_classes(policy, p, presence=True)
        elif root == "labels":
            kind = r.path.split(".")[1].split("[")[0] if "." in r.path else ""
            uses.kinds |= {kind} if kind else set(LABEL_KINDS)
            classes |= {LABEL_KINDS[k][1] for k in ([kind] if kind else LABEL_KINDS)}
        elif root == "signaux":
            classes.add(SIGNAUX_CLASS)
        paths += dpaths
    return classes, paths


def _criterion(
    c: CriterionFile, where: str, policy: Policy, uses: _Uses, problems: list[Problem]
) -> Criterion | None:
    before = len(problems)
    cond = _compile(c.condition, f"{where}.condition", "bool", problems)
    pts = (
        float(c.points)
        if not isinstance(c.points, str)
        else _compile(c.points, f"{where}.points", "number", problems)
    )
    rs = [r for src in (c.condition, c.points) if isinstance(src, str) for r in reads(src, frozenset(ROOTS))]
    classes, paths = _analyse(rs, policy, where, uses, problems)
    if "unclassified" in classes:
        problems.append(Problem(where, "reads a field the policy does not classify (fail closed)"))
    if len(problems) > before or pts is None:
        return None
    groups = [f["name"] for f in load_schemas().raw(GROUPS_RECORD)["fields"]]
    group = _group(policy, classes, paths, groups)
    if group is None:
        reason = f"reads classes {sorted(classes)} that no single class covers for every role: split it"
        problems.append(Problem(where, reason))
        return None
    return Criterion(c.id, c.label, cond, pts, group, _precheck(rs), tuple(dict.fromkeys(r.path for r in rs)))


def _combined(criteria: list[Criterion]) -> CompiledExpr | None:
    """Every condition in one list expression, each guarded by gp_ok[i] (its data is present), so
    that an application costs one evaluation instead of one per criterion (see score.py)."""
    parts = [
        f"gp_ok[{i}] && ({c.condition.source if c.condition else 'true'})" for i, c in enumerate(criteria)
    ]
    try:
        return compile_expr("[" + ", ".join(parts) + "]", ROOTS)
    except ExprError:
        return None  # each criterion is then evaluated alone


def parse_grid(raw: Any, policy: Policy, name: str = "grid") -> Grid:
    """Check and compile a grid (already parsed YAML); ConfigError listing every problem."""
    try:
        gf = GridFile.model_validate(raw)
    except ValidationError as exc:
        refused = [
            Problem(".".join(str(p) for p in e["loc"]) or name, e["msg"], e["type"]) for e in exc.errors()
        ]
        raise ConfigError(f"cotation grid {name} refused ({len(refused)} problems)", refused) from None
    problems: list[Problem] = []
    seen: set[str] = set()
    criteria: list[Criterion] = []
    uses = _Uses()
    for i, c in enumerate(gf.criteria):
        where = f"criteria[{i}]({c.id})"
        if c.id in seen:
            problems.append(Problem(where, "duplicate criterion id"))
        seen.add(c.id)
        criterion = _criterion(c, where, policy, uses, problems)
        if criterion is not None:
            criteria.append(criterion)
    if problems:
        raise ConfigError(f"cotation grid {name} refused ({len(problems)} problems)", problems)
    return Grid(
        prechecks=tuple(sorted({p for c in criteria for p in c.precheck})),
        combined=_combined(criteria),
        id=gf.id or name,
        version=None if gf.version is None else str(gf.version),
        epci=gf.epci,
        criteria=tuple(criteria),
        calcul=tuple(sorted(uses.calcul)),
        label_kinds=tuple(sorted(uses.kinds)),
        communes=frozenset(gf.communes or ()),
        demande_fields=frozenset(uses.top),
    )


def load_grid(path: Path, policy: Policy) -> Grid:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cotation grid {path} refused", [Problem(str(path), f"unreadable: {type(exc).__name__}")]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"cotation grid {path} refused", [Problem(where, "not valid YAML")]) from None
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"cotation grid {path} refused", [Problem(str(path), "a grid is a mapping with `criteria:`")]
        )
    return parse_grid(raw, policy, path.stem)
