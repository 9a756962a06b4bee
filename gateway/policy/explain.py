"""Operator views of a policy (pure): what an actor may receive, every possible view, and diffs."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.policy.fields import CANONICAL_SCHEMAS
from gateway.policy.model import ConditionalGrant, Policy
from gateway.policy.router import Router
from gateway.policy.views import View

__all__ = [
    "ActorExplanation",
    "DryRunStats",
    "ViewInfo",
    "all_views",
    "diff_policies",
    "dry_run",
    "explain_actor",
    "reachable_paths",
]


@dataclass(frozen=True)
class ViewInfo:
    view: View
    role: str
    conditions: tuple[str, ...]  # conditional classes granted in this variant


def _variants(policy: Policy, role_name: str) -> list[tuple[frozenset[str], tuple[str, ...]]]:
    role = policy.roles[role_name]
    fixed = frozenset(c for c, g in role.grants.items() if g is True)
    conditional = sorted(c for c, g in role.grants.items() if isinstance(g, ConditionalGrant))
    out = []
    for n in range(len(conditional) + 1):
        for combo in itertools.combinations(conditional, n):
            out.append((fixed | set(combo), combo))
    return out


def all_views(router: Router) -> list[ViewInfo]:
    """Every view the policy can produce: role x schema x conditional grants (one view serves
    protected and unprotected households alike: the views are not labelled by protection)."""
    policy = router.policy
    out: list[ViewInfo] = []
    roles_in_use = {a.role for a in policy.actors.values()} or set(policy.roles)
    for role_name in sorted(roles_in_use):
        for schema in CANONICAL_SCHEMAS:
            for classes, combo in _variants(policy, role_name):
                view = router.view_for_classes(role_name, schema, classes)
                if view is not None:
                    out.append(ViewInfo(view, role_name, combo))
    return out


def reachable_paths(policy: Policy, role_name: str, schema: str) -> dict[str, str]:
    """leaf path -> 'yes' or 'if <condition>' for every field the role can ever receive."""
    role = policy.roles[role_name]
    withheld = policy.expand_paths(schema, role.withhold_paths.get(schema, []))
    out: dict[str, str] = {}
    for path, cls in policy.leaf_classes[schema].items():
        grant = role.grants.get(cls, False)
        if not grant or path in withheld:
            continue
        if isinstance(grant, ConditionalGrant):
            cond: str = grant.when or ""
            if grant.event_types:
                cond = (cond + " and " if cond else "") + "event in " + ",".join(grant.event_types)
            out[path] = f"if {cond}"
        else:
            out[path] = "yes"
    return out


@dataclass(frozen=True)
class ActorExplanation:
    actor: dict[str, Any]
    scope: str
    nominative: bool
    grants: dict[str, str]  # class -> yes / condition
    withheld_classes: list[str]
    protected_rule: str
    derived: list[str]
    views: list[dict[str, Any]]


def explain_actor(router: Router, actor_id: str) -> ActorExplanation | None:
    policy = router.policy
    actor = policy.actors.get(actor_id)
    if actor is None:
        return None
    role = policy.roles[actor.role]
    grants: dict[str, str] = {}
    for cls in policy.file.classes:
        grant = role.grants.get(cls, False)
        if isinstance(grant, ConditionalGrant):
            parts: list[str] = [grant.when] if grant.when else []
            if grant.event_types:
                parts.append("event in " + ",".join(grant.event_types))
            grants[cls] = "if " + " and ".join(p for p in parts if p)
        elif grant:
            grants[cls] = "yes"
    ph = policy.file.protected_households
    protected = (
        "exempt"
        if actor.role in ph.exempt_roles
        else f"withholds {', '.join(ph.withhold_classes)} and the current address of protected households"
    )
    views = [
        {
            "schema": info.view.schema,
            "view": info.view.name,
            "fingerprint": info.view.fingerprint_hex,
            "conditions": list(info.conditions),
            "nullable": sorted(info.view.nullable),
            "fields": sorted(info.view.paths) + [d.name for d in info.view.derived],
        }
        for info in all_views(router)
        if info.role == actor.role
    ]
    return ActorExplanation(
        actor=actor.model_dump(exclude_none=True),
        scope=role.scope,
        nominative=role.nominative,
        grants=grants,
        withheld_classes=[c for c in policy.file.classes if c not in grants],
        protected_rule=protected,
        derived=list(role.derive),
        views=views,
    )


def diff_policies(old: Policy, new: Policy) -> list[dict[str, Any]]:
    """Per actor and schema: fields gained and lost (and actors added, removed or changed role)."""
    out: list[dict[str, Any]] = []
    for actor_id in sorted(set(old.actors) | set(new.actors)):
        a_old, a_new = old.actors.get(actor_id), new.actors.get(actor_id)
        entry: dict[str, Any] = {"actor": actor_id}
        if a_old is None or a_new is None:
            entry["change"] = "added" if a_old is None else "removed"
        elif a_old != a_new:
            entry["change"] = "changed" + (
                f" role {a_old.role} -> {a_new.role}" if a_old.role != a_new.role else ""
            )
        for schema in CANONICAL_SCHEMAS:
            before = reachable_paths(old, a_old.role, schema) if a_old else {}
            after = reachable_paths(new, a_new.role, schema) if a_new else {}
            gained = sorted(p for p in after if before.get(p) != after[p])
            lost = sorted(p for p in before if p not in after)
            if gained or lost:
                entry.setdefault("fields", {})[schema] = {
                    "gained": [f"{p} ({after[p]})" for p in gained],
                    "lost": lost,
                }
        if len(entry) > 1:
            out.append(entry)
    return out


@dataclass
class DryRunStats:
    """What one actor receives from the same traffic under the old and the new policy."""

    before: int = 0
    after: int = 0
    gained_records: int = 0  # records only the new policy sends
    lost_records: int = 0  # records only the old policy sends
    fields_gained: set[str] = field(default_factory=set)  # "<Schema>:<path>" newly present
    fields_lost: set[str] = field(default_factory=set)


def dry_run(
    old: Router,
    new: Router,
    records: Iterable[
        tuple[str, bytes | None, Mapping[str, Any]]
        | tuple[str, bytes | None, Mapping[str, Any], Sequence[tuple[str, bytes]]]
    ],
) -> dict[str, DryRunStats]:
    """Route the same records (in order) under two policies; per actor, what changes (pure). A
    record may come with its headers (`gp.source`: who entered it, for the named-party rule)."""
    from gateway.policy.scope import ScopeState  # noqa: PLC0415
    from gateway.policy.views import schema_leaf_paths  # noqa: PLC0415

    states: dict[bytes | None, tuple[ScopeState | None, ScopeState | None]] = {}
    stats: dict[str, DryRunStats] = {}
    paths_cache: dict[int, set[str]] = {}

    def paths(view: View) -> set[str]:
        got = paths_cache.get(id(view))
        if got is None:
            got = paths_cache[id(view)] = schema_leaf_paths(view.avro)
        return got

    for schema, key, record, *rest in records:
        headers: Sequence[tuple[str, bytes]] = rest[0] if rest else ()
        s_old, s_new = states.get(key, (None, None))
        r_old = old.route(schema, key, record, s_old, headers)
        r_new = new.route(schema, key, record, s_new, headers)
        states[key] = (r_old.state, r_new.state)
        before = {a: d for d in r_old.deliveries for a in d.actors}
        after = {a: d for d in r_new.deliveries for a in d.actors}
        short = schema.rsplit(".", 1)[-1]
        for actor in before.keys() | after.keys():
            st = stats.setdefault(actor, DryRunStats())
            b, a = before.get(actor), after.get(actor)
            st.before += b is not None
            st.after += a is not None
            if b is None:
                st.gained_records += 1
            elif a is None:
                st.lost_records += 1
            pb = paths(b.view) if b is not None else set()
            pa = paths(a.view) if a is not None else set()
            if b is not None and a is not None:
                st.fields_gained |= {f"{short}:{p}" for p in pa - pb}
                st.fields_lost |= {f"{short}:{p}" for p in pb - pa}
    return stats
