"""Record scope: which actors may see an application and its events (pure functions).

Decisions arrive without the application's communes, so the flow keeps a `ScopeState` per numéro
unique (in a faust table) and updates it with every record before routing it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.policy.model import Actor, Policy

__all__ = ["ScopeIndex", "ScopeState", "causers", "departement_of", "update_state"]

DEMANDE = "fr.gp.Demande"
DECISION = "fr.gp.Decision"


def departement_of(commune: str) -> str:
    """INSEE commune code -> département code (97x overseas, 2A/2B Corsica)."""
    return commune[:3] if commune.startswith("97") else commune[:2]


@dataclass(frozen=True)
class ScopeState:
    """What the gateway knows about one application, to scope the events that follow it."""

    communes: tuple[str, ...] = ()
    elargie: bool = False
    violences: bool = False  # violencesFamiliales of the latest Demande
    violence_label: bool = False  # a labelViolences was seen
    siao_links: tuple[str, ...] = ()  # SIAO that referred (oriented) or labelled it
    hebergement_depts: tuple[str, ...] = ()  # départements where the household is in hébergement
    commissions: tuple[str, ...] = ()  # commissions it was submitted to
    designataires: tuple[str, ...] = ()  # organisations that designated it
    violence_labellers: tuple[str, ...] = ()  # bodies that gave a violence label
    labellers: tuple[str, ...] = ()  # bodies that gave any priority label
    demande_seen: bool = False  # a Demande of this application was routed
    pending: tuple[str, ...] = ()  # decisions routed before any Demande (kept by the flow, opaque here)

    @property
    def protected(self) -> bool:
        return self.violences or self.violence_label

    @property
    def departements(self) -> frozenset[str]:
        return frozenset(departement_of(c) for c in self.communes)

    def to_bytes(self) -> bytes:
        return json.dumps({f: getattr(self, f) for f in self.__dataclass_fields__}, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes | None) -> ScopeState:
        """The state written by `to_bytes`; ValueError (not JSON) or TypeError (not its shape) otherwise."""
        if not data:
            return cls()
        raw = json.loads(data)
        if not isinstance(raw, dict):
            raise TypeError("scope state is not a JSON object")
        values: dict[str, Any] = {}
        for name, f in cls.__dataclass_fields__.items():
            if name not in raw:
                continue
            v = raw[name]
            if f.type == "bool":
                if not isinstance(v, bool):
                    raise TypeError(f"scope state field {name} is not a boolean")
                values[name] = v
            else:
                if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                    raise TypeError(f"scope state field {name} is not a list of strings")
                values[name] = tuple(v)
        return cls(**values)


def _add(values: tuple[str, ...], *new: str | None) -> tuple[str, ...]:
    out = list(values)
    for v in new:
        if v and v not in out:
            out.append(v)
    return tuple(out)


def update_state(state: ScopeState | None, schema: str, record: Mapping[str, Any]) -> ScopeState:
    """The state after `record` (pure)."""
    state = state or ScopeState()
    if schema == DEMANDE:
        lr = record.get("logementRecherche") or {}
        return replace(
            state,
            communes=tuple(lr.get("communes") or ()),
            elargie=bool(lr.get("demandeElargie")),
            violences=bool(record.get("violencesFamiliales")),
            demande_seen=True,
        )
    if schema != DECISION:
        return state
    new = state
    designation = record.get("designation")
    if designation:
        new = replace(new, designataires=_add(new.designataires, designation.get("designataire")))
    orientation = record.get("orientation")
    if orientation:
        new = replace(new, siao_links=_add(new.siao_links, orientation.get("siao")))
        if orientation.get("enHebergement") and orientation.get("departement"):
            new = replace(new, hebergement_depts=_add(new.hebergement_depts, orientation["departement"]))
    for name in ("label", "labelSante", "labelViolences"):
        label = record.get(name)
        if label:
            body = label.get("organismeLabellisant")
            new = replace(new, labellers=_add(new.labellers, body))
            if name == "labelViolences":
                new = replace(new, violence_label=True, violence_labellers=_add(new.violence_labellers, body))
    for name in ("avis", "inscriptionCal", "decisionDalo"):
        sub = record.get(name)
        if sub:
            new = replace(new, commissions=_add(new.commissions, sub.get("commission")))
    return new


def _logements(record: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    for name in ("designation", "inscriptionCal", "visite", "decisionCal", "refus", "bail"):
        sub = record.get(name)
        if sub and sub.get("logement"):
            yield sub["logement"]
    rad = record.get("radiation")
    if rad and rad.get("attribution"):
        yield rad["attribution"]["logement"]


def causers(schema: str, record: Mapping[str, Any]) -> set[str]:
    """Organisations that caused this event: they always see it."""
    out = {str((record.get("provenance") or {}).get("origine") or "")}
    if schema == DECISION:
        designation = record.get("designation")
        if designation:
            out.add(designation.get("designataire") or "")
        for logement in _logements(record):
            out.add(logement.get("sirenBailleur") or "")
        rad = record.get("radiation")
        if rad and rad.get("attribution"):
            out.add(rad["attribution"].get("siren") or "")
    out.discard("")
    return out


Chunk = tuple[str, str, tuple[str, ...]]  # (scope rule, role, actor ids of that role)
Bucket = tuple[tuple[str, tuple[str, ...]], ...]  # actors of one index key, grouped by role


def _bucket(actors: Iterable[Actor]) -> Bucket:
    by_role: dict[str, list[str]] = {}
    for a in actors:
        by_role.setdefault(a.role, []).append(a.id)
    return tuple((role, tuple(ids)) for role, ids in by_role.items())


@dataclass
class ScopeIndex:
    """Actors indexed by what puts a record in their scope, grouped by role, so routing costs per
    matching role and bucket rather than per actor."""

    by_commune: dict[str, Bucket] = field(default_factory=dict)
    by_dept: dict[str, Bucket] = field(default_factory=dict)
    by_dept_of_commune: dict[str, Bucket] = field(default_factory=dict)  # élargie
    siao_by_dept: dict[str, Bucket] = field(default_factory=dict)
    by_num_unique: dict[str, Bucket] = field(default_factory=dict)
    everything: Bucket = ()
    by_id: dict[str, Actor] = field(default_factory=dict)
    linked_kinds: dict[str, str] = field(default_factory=dict)  # actor id -> siao|commission

    @classmethod
    def build(cls, policy: Policy) -> ScopeIndex:
        lists: dict[str, dict[str, list[Actor]]] = {
            k: {} for k in ("by_commune", "by_dept", "by_dept_of_commune", "siao_by_dept", "by_num_unique")
        }
        everything: list[Actor] = []
        idx = cls()
        for actor in policy.actors.values():
            idx.by_id[actor.id] = actor
            kind = policy.roles[actor.role].scope
            if kind in ("territory", "reservations"):
                communes = list(actor.communes) if kind == "territory" else list(actor.reservations)
                depts = list(actor.departements) if kind == "territory" else []
                for c in communes:
                    lists["by_commune"].setdefault(c, []).append(actor)
                for d in {*depts, *(departement_of(c) for c in communes)}:
                    lists["by_dept_of_commune"].setdefault(d, []).append(actor)
                for d in depts:
                    lists["by_dept"].setdefault(d, []).append(actor)
            elif kind == "siao":
                idx.linked_kinds[actor.id] = "siao"
                for d in actor.departements:
                    lists["siao_by_dept"].setdefault(d, []).append(actor)
            elif kind == "commission":
                idx.linked_kinds[actor.id] = "commission"
            elif kind == "own_application" and actor.numUnique:
                lists["by_num_unique"].setdefault(actor.numUnique, []).append(actor)
            elif kind == "everything":
                everything.append(actor)
        for name, per_key in lists.items():
            setattr(idx, name, {k: _bucket(v) for k, v in per_key.items()})
        idx.everything = _bucket(everything)
        return idx

    def _actor_bucket(self, actor_id: str) -> Bucket:
        actor = self.by_id.get(actor_id)
        return ((actor.role, (actor_id,)),) if actor is not None else ()

    def in_scope(self, schema: str, record: Mapping[str, Any], state: ScopeState) -> list[Chunk]:
        """(rule, role, actor ids) chunks: every actor in scope once, with the first rule that applies."""
        out: list[Chunk] = []
        seen: set[str] = set()

        def add(bucket: Bucket, rule: str) -> None:
            for role, ids in bucket:
                if not seen.isdisjoint(ids):
                    ids = tuple(a for a in ids if a not in seen)  # noqa: PLW2901 - dedup
                    if not ids:
                        continue
                seen.update(ids)
                out.append((rule, role, ids))

        for commune in state.communes:
            add(self.by_commune.get(commune, ()), "territory:commune")
            add(self.by_dept.get(departement_of(commune), ()), "territory:departement")
        if state.elargie:
            for dept in state.departements:
                add(self.by_dept_of_commune.get(dept, ()), "territory:elargie")
        links = (
            *((a, ("siao",)) for a in state.siao_links),
            *((a, ("commission",)) for a in state.commissions),
            *((a, ("siao", "commission")) for a in state.labellers),
        )
        for actor_id, kinds in links:
            kind = self.linked_kinds.get(actor_id)
            if kind in kinds:
                add(self._actor_bucket(actor_id), f"{kind}:linked")
        for dept in state.hebergement_depts:
            add(self.siao_by_dept.get(dept, ()), "siao:hebergement")
        num = record.get("numUnique")
        if num:
            add(self.by_num_unique.get(num, ()), "own_application")
        for actor_id in sorted(causers(schema, record)):
            add(self._actor_bucket(actor_id), "causer")
        add(self.everything, "statistique")
        return out
