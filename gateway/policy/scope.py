"""Record scope: which actors may see an application and its events (pure functions).

Decisions arrive without the application's communes, so the flow keeps a `ScopeState` per numéro
unique (in a faust table) and updates it with every record before routing it.

The named-party rule (docs/policy.md): an organisation named in an event (causer, commission, SIAO,
designating réservataire, labelling body) gains scope from it only when the event's entering source
speaks for it, the entering organisation's territory overlaps its own, or the actors file trusts
the pair; otherwise the link is recorded unconfirmed and grants nothing until an event of the
application entered for the named party confirms it. An applicant never gains scope by being named.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.policy.model import Actor, Policy

__all__ = [
    "DECISION_FIELDS",
    "Entry",
    "NamedParties",
    "ScopeIndex",
    "ScopeState",
    "before_decisions",
    "causers",
    "departement_of",
    "dwelling_key",
    "named_links",
    "update_state",
]

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
    # links the named-party rule did not admit: "<kind>|<organisation>", granting nothing until confirmed
    unconfirmed: tuple[str, ...] = ()
    orientation_date: tuple[str, ...] = ()  # ISO date of the latest ORIENTATION_SIAO (at most one)
    designated: tuple[str, ...] = ()  # "<dwelling key>|<designataire>" of each admitted designation
    # actors that received anything about it (retention: each gets the fr.gp.Effacement), whatever
    # the scope became since: keyed by the numéro unique (nominative views) or by its pseudonym
    recipients: tuple[str, ...] = ()
    pseudonymous: tuple[str, ...] = ()

    @property
    def protected(self) -> bool:
        return self.violences or self.violence_label

    @property
    def departements(self) -> frozenset[str]:
        return frozenset(departement_of(c) for c in self.communes)

    def served(self, named: Iterable[str], pseudonymous: Iterable[str]) -> ScopeState:
        """The state with these actors among its recipients: `named` received nominative views (keyed
        by the numéro unique), `pseudonymous` pseudonymised ones (keyed by its pseudonym)."""
        new = [a for a in dict.fromkeys(named) if a not in self.recipients]
        pseudo = [a for a in dict.fromkeys(pseudonymous) if a not in self.pseudonymous]
        if not new and not pseudo:
            return self
        return replace(self, recipients=(*self.recipients, *new), pseudonymous=(*self.pseudonymous, *pseudo))

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


@dataclass(frozen=True)
class Entry:
    """Who entered an event: the authenticated source (header `gp.source`; None when the record did
    not come through the ingest, e.g. the SNE poller's) and the record's `provenance.saisie`."""

    source: str | None = None
    saisie: str | None = None


Admit = Callable[[str], bool]  # named organisation -> does this event give it scope?
LINK_KINDS = ("siao", "commission", "designataire", "label", "violence_label")
_FIELDS = {
    "siao": "siao_links",
    "commission": "commissions",
    "designataire": "designataires",
    "label": "labellers",
    "violence_label": "violence_labellers",
}


def named_links(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(kind, organisation code) of every link a Decision names (see LINK_KINDS)."""
    out: list[tuple[str, str]] = []
    designation = record.get("designation")
    if designation and designation.get("designataire"):
        out.append(("designataire", designation["designataire"]))
    orientation = record.get("orientation")
    if orientation and orientation.get("siao"):
        out.append(("siao", orientation["siao"]))
    for name in ("label", "labelSante", "labelViolences"):
        label = record.get(name)
        if label and label.get("organismeLabellisant"):
            body = label["organismeLabellisant"]
            out.append(("label", body))
            if name == "labelViolences":
                out.append(("violence_label", body))
    for name in ("avis", "inscriptionCal", "decisionDalo", "saisine"):  # saisine: docs/signals.md
        sub = record.get(name)
        if sub and sub.get("commission"):
            out.append(("commission", sub["commission"]))
    return out


def dwelling_key(logement: Mapping[str, Any] | None) -> str | None:
    """A dwelling's identity across events: its RPLS id, else landlord SIREN / landlord reference."""
    if not logement:
        return None
    if logement.get("rpls"):
        return f"rpls:{logement['rpls']}"
    if logement.get("sirenBailleur") and logement.get("referenceBailleur"):
        return f"ref:{logement['sirenBailleur']}/{logement['referenceBailleur']}"
    return None


def _orientation(state: ScopeState, orientation: Mapping[str, Any], admitted: bool) -> ScopeState:
    """The latest orientation (by its date; the later routed one on a tie) sets where the household
    is in hébergement *currently*: one in another département, or with enHebergement false, ends it.
    One whose SIAO the named-party rule did not admit (`admitted` false) is still the latest and can
    end it, but never gives hébergement scope: at most it keeps the département already in scope."""
    when: Any = orientation.get("dateOrientation")
    when_s = str(when.isoformat() if hasattr(when, "isoformat") else when or "")
    if state.orientation_date and when_s < state.orientation_date[0]:
        return state  # an older orientation routed late does not say where the household is now
    dept = orientation.get("departement")
    depts: tuple[str, ...] = (dept,) if orientation.get("enHebergement") and dept else ()
    if not admitted:  # fail closed: it may end or narrow hébergement scope, never open it
        depts = tuple(d for d in depts if d in state.hebergement_depts)
    return replace(state, hebergement_depts=depts, orientation_date=(when_s,))


def update_state(
    state: ScopeState | None,
    schema: str,
    record: Mapping[str, Any],
    admit: Admit | None = None,
    *,
    speakers: Iterable[str] = (),
    resolve: Callable[[str], str] | None = None,
    is_siao: Callable[[str], bool] | None = None,
) -> ScopeState:
    """The state after `record` (pure).

    `admit(organisation)`: whether this event gives a named organisation scope (the named-party rule;
    None admits every one, for tools without a policy); a link not admitted is recorded unconfirmed.
    `speakers`: the organisations the event was entered for (the entering organisation, those its
    source speaks for): their unconfirmed links on the application are confirmed by it.
    `resolve`: organisation code -> actor id (guichet codes to their organisation).
    `is_siao(actor)`: whether the organisation an orientation names as its SIAO is one (an orientation
    naming anyone else gives no hébergement scope; None: not checked, for tools without a policy)."""
    state = state or ScopeState()
    if schema == DEMANDE:
        lr = record.get("logementRecherche") or {}
        new = replace(
            state,
            communes=tuple(lr.get("communes") or ()),
            elargie=bool(lr.get("demandeElargie")),
            violences=bool(record.get("violencesFamiliales")),
            demande_seen=True,
        )
        return _confirm(new, speakers)
    if schema != DECISION:
        return state
    new = state
    orientation = record.get("orientation")
    if orientation:
        # an orientation is its SIAO's act: one the rule does not admit, or naming an organisation that
        # is no SIAO, gives no hébergement scope (it can still end it)
        siao = orientation.get("siao")
        org = (resolve(siao) if resolve else siao) if siao else None
        admitted = admit is None or bool(org and admit(org))
        admitted = admitted and (is_siao is None or bool(org and is_siao(org)))
        new = _orientation(new, orientation, admitted)
    for kind, code in named_links(record):
        org = resolve(code) if resolve is not None else code
        if admit is None or admit(org):
            new = _link(new, kind, org)
            if kind == "designataire":
                dwelling = dwelling_key((record.get("designation") or {}).get("logement"))
                if dwelling:
                    new = replace(new, designated=_add(new.designated, f"{dwelling}|{org}"))
        else:
            new = replace(new, unconfirmed=_add(new.unconfirmed, f"{kind}|{org}"))
    if record.get("labelViolences"):  # protection applies whoever gave the label (fail closed)
        new = replace(new, violence_label=True)
    return _confirm(new, speakers)


# the fields a Decision sets (update_state); a Demande sets communes, elargie, violences, demande_seen
DECISION_FIELDS = (
    "violence_label",
    "siao_links",
    "hebergement_depts",
    "commissions",
    "designataires",
    "violence_labellers",
    "labellers",
    "unconfirmed",
    "orientation_date",
    "designated",
)


def before_decisions(state: ScopeState) -> ScopeState:
    """`state` without what Decisions set in it (links, labels, orientation, designations): the state
    an application's first Demande is routed with when Decisions came before it, so that it is routed
    as if it had come first (docs/policy.md, Ordering). Every other field is kept."""
    blank = ScopeState()
    return replace(state, **{name: getattr(blank, name) for name in DECISION_FIELDS})


def _link(state: ScopeState, kind: str, org: str) -> ScopeState:
    name = _FIELDS[kind]
    linked: tuple[str, ...] = _add(getattr(state, name), org)
    state = replace(state, **{name: linked})  # type: ignore[arg-type]  # a tuple field, by name
    if kind == "violence_label":
        state = replace(state, violence_label=True)
    return state


def _confirm(state: ScopeState, speakers: Iterable[str]) -> ScopeState:
    """Unconfirmed links of the organisations this event was entered for become effective."""
    who = set(speakers)
    if not who or not state.unconfirmed:
        return state
    keep = []
    for item in state.unconfirmed:
        kind, _, org = item.partition("|")
        if org in who and kind in _FIELDS:
            state = _link(state, kind, org)
        else:
            keep.append(item)
    return replace(state, unconfirmed=tuple(keep))


def _logements(record: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    for name in ("designation", "inscriptionCal", "visite", "decisionCal", "refus", "bail"):
        sub = record.get(name)
        if sub and sub.get("logement"):
            yield sub["logement"]
    rad = record.get("radiation")
    if rad and rad.get("attribution"):
        yield rad["attribution"]["logement"]


def causers(schema: str, record: Mapping[str, Any], resolve: Callable[[str], str] | None = None) -> set[str]:
    """Organisations that caused this event (they see it when the named-party rule admits them)."""
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
    return {resolve(c) for c in out} if resolve is not None else out


class NamedParties:
    """The named-party rule over one policy: who an event was entered for, and whom it may name."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._applicants = frozenset(
            a.id for a in policy.actors.values() if policy.roles[a.role].scope == "own_application"
        )
        self._territory = {
            a.id: (frozenset((*a.communes, *a.reservations)), frozenset(a.departements))
            for a in policy.actors.values()
        }

    def resolve(self, code: str) -> str:
        """The actor an organisation code names (a guichet code -> its organisation), else the code."""
        return self.policy.organisation(code) or code

    def is_siao(self, organisation: str) -> bool:
        """Whether `organisation` is an actor whose role has the SIAO's scope."""
        actor = self.policy.actors.get(organisation)
        return actor is not None and self.policy.roles[actor.role].scope == "siao"

    def entering(self, entry: Entry) -> str | None:
        """The organisation that entered the event (its `saisie`, a guichet resolved), if an actor."""
        return self.policy.organisation(entry.saisie)

    def speakers(self, entry: Entry) -> frozenset[str]:
        """The organisations the event was entered for: the entering one and, when the source is
        known, every organisation the source speaks for (never an applicant)."""
        out = set()
        entering = self.entering(entry)
        if entering is not None:
            out.add(entering)
        src = self.policy.sources.get(entry.source) if entry.source else None
        if src is not None:
            out.update(src.speaks_for)
        return frozenset(out - self._applicants)

    def overlap(self, a: str, b: str) -> bool:
        """Whether the territories of actors `a` and `b` share a commune or a département."""
        ta, tb = self._territory.get(a), self._territory.get(b)
        if ta is None or tb is None:
            return False
        (ca, da), (cb, db) = ta, tb
        if not ca.isdisjoint(cb) or not da.isdisjoint(db):
            return True
        return any(departement_of(c) in db for c in ca) or any(departement_of(c) in da for c in cb)

    def admits(self, entry: Entry, named: str) -> bool:
        """Whether an event entered by `entry` gives the named organisation scope."""
        if named not in self.policy.actors or named in self._applicants:
            return False  # an applicant never gains scope from being named (own_application only)
        if named in self.speakers(entry):
            return True
        entering = self.entering(entry)
        if entering is None:
            return False
        return self.overlap(entering, named) or (entering, named) in self.policy.trusted

    def admit(self, entry: Entry) -> Admit:
        """`admits` for one event, memoised (an event names few parties, some twice)."""
        seen: dict[str, bool] = {}

        def check(named: str) -> bool:
            found = seen.get(named)
            if found is None:
                found = seen[named] = self.admits(entry, named)
            return found

        return check


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
    guichets: dict[str, str] = field(default_factory=dict)  # guichet code -> actor id

    def resolve(self, code: str) -> str:
        return code if code in self.by_id else self.guichets.get(code, code)

    @classmethod
    def build(cls, policy: Policy) -> ScopeIndex:
        lists: dict[str, dict[str, list[Actor]]] = {
            k: {} for k in ("by_commune", "by_dept", "by_dept_of_commune", "siao_by_dept", "by_num_unique")
        }
        everything: list[Actor] = []
        idx = cls()
        idx.guichets = dict(policy.guichet_owner)
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

    def in_scope(
        self, schema: str, record: Mapping[str, Any], state: ScopeState, admit: Admit | None = None
    ) -> list[Chunk]:
        """(rule, role, actor ids) chunks: every actor in scope once, with the first rule that applies.
        A causer sees the event only when `admit` (the named-party rule for this event) admits it."""
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
        for actor_id in sorted(causers(schema, record, self.resolve)):
            if admit is None or admit(actor_id):
                add(self._actor_bucket(actor_id), "causer")
        add(self.everything, "statistique")
        return out
