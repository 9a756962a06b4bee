"""The router (pure): a canonical record in, one encoded view per distinct grant set out.

`Router.route(schema, key, record, state, source_headers)` updates the scope state, finds the
actors in scope, picks each actor's view (role grants, conditions, protected households), projects
and encodes once per view, and builds one audit entry per actor disclosure of nominative data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from gateway.codec.avro import SINGLE_OBJECT_MAGIC, load_schemas
from gateway.model.envelope import cloudevent_headers
from gateway.policy.derive import DERIVATIONS, pseudonym
from gateway.policy.model import Actor, ConditionalGrant, Policy, Role
from gateway.policy.scope import (
    DECISION,
    Entry,
    NamedParties,
    ScopeIndex,
    ScopeState,
    dwelling_key,
    update_state,
)
from gateway.policy.views import View, build_view

__all__ = [
    "AUDIT_SCHEMA",
    "H_POLICY_VERSION",
    "H_SOURCE",
    "H_SOURCE_CE_ID",
    "H_VIEW_FINGERPRINT",
    "H_VIEW_SCHEMA",
    "AuditBatch",
    "Delivery",
    "RouteResult",
    "Router",
]

AUDIT_SCHEMA = "fr.gp.AuditEntry"
H_POLICY_VERSION = "gp.policy.version"
H_VIEW_FINGERPRINT = "gp.view.fingerprint"
H_VIEW_SCHEMA = "gp.view.schema"
H_SOURCE_CE_ID = "gp.source.ce_id"
H_SOURCE = "gp.source"  # the authenticated source of a canonical record (set by the ingest)
CE_SOURCE = "gp-gateway/policy"
MASKED = "MASQUE"  # non-nominative views: an origine / saisie that is not an organisation's
_DWELLING_EVENTS = ("inscriptionCal", "visite", "decisionCal", "refus", "bail")


def _avro_string(value: str) -> bytes:
    data = value.encode()
    n = len(data) << 1  # zigzag of a non-negative long
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + data


@dataclass(frozen=True)
class Delivery:
    """One encoded view and every actor that receives it."""

    view: View
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    actors: tuple[str, ...]
    nominative: bool
    withheld: frozenset[str] = frozenset()  # paths of the view whose values were withheld (null)

    @property
    def classes(self) -> tuple[str, ...]:
        """Classes holding a value in this record (the audit records the view's classes instead)."""
        return self.view.disclosed_classes(withhold=bool(self.withheld))


@dataclass(frozen=True)
class AuditBatch:
    """Audit entries of the actors of one view and rule: encoded once, actor spliced in first."""

    actors: tuple[str, ...]
    entry: Mapping[str, Any]  # the entry without its actor
    key: bytes | None
    _prefix: bytes = field(repr=False)  # magic + fingerprint
    _rest: bytes = field(repr=False)  # Avro body after the actor field
    # magic + fingerprint + Avro string of each actor (precomputed per policy)
    _encoded_actors: tuple[bytes, ...] = field(repr=False, default=())

    def _heads(self) -> tuple[bytes, ...]:
        return self._encoded_actors or tuple(self._prefix + _avro_string(a) for a in self.actors)

    def values(self) -> list[bytes]:
        """The framed fr.gp.AuditEntry of each actor, in `actors` order."""
        rest = self._rest
        return [head + rest for head in self._heads()]

    def records(self) -> Iterator[tuple[str, bytes]]:
        """(actor, framed fr.gp.AuditEntry) for each actor."""
        return zip(self.actors, self.values(), strict=True)

    def entries(self) -> list[dict[str, Any]]:
        return [{**self.entry, "actor": a} for a in self.actors]


@dataclass(frozen=True)
class RouteResult:
    state: ScopeState
    deliveries: tuple[Delivery, ...]
    audit: tuple[AuditBatch, ...]
    chunks: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (rule, role, actor ids) in scope

    @property
    def rules(self) -> dict[str, str]:
        """actor id -> the scope rule that put the record in its scope."""
        return {a: rule for rule, _, ids in self.chunks for a in ids}

    def for_actor(self, actor_id: str) -> Delivery | None:
        for d in self.deliveries:
            if actor_id in d.actors:
                return d
        return None

    @property
    def recipients(self) -> set[str]:
        return {a for d in self.deliveries for a in d.actors}

    def audit_entries(self) -> list[dict[str, Any]]:
        return [e for b in self.audit for e in b.entries()]

    def without(self, served: set[str]) -> RouteResult:
        """The same result minus the actors in `served` (who already received the record)."""
        deliveries = []
        for d in self.deliveries:
            actors = tuple(a for a in d.actors if a not in served)
            if actors:
                deliveries.append(replace(d, actors=actors))
        audit = []
        for b in self.audit:
            keep = [i for i, a in enumerate(b.actors) if a not in served]
            if keep:
                encoded = tuple(b._encoded_actors[i] for i in keep) if b._encoded_actors else ()
                audit.append(replace(b, actors=tuple(b.actors[i] for i in keep), _encoded_actors=encoded))
        chunks = tuple(
            (rule, role, kept)
            for rule, role, ids in self.chunks
            if (kept := tuple(a for a in ids if a not in served))
        )
        return RouteResult(self.state, tuple(deliveries), tuple(audit), chunks)


class Router:
    """Routes canonical records under one policy (build a new Router when the policy changes)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.index = ScopeIndex.build(policy)
        self.parties = NamedParties(policy)
        self._views: dict[tuple[Any, ...], View] = {}
        self._by_grant: dict[tuple[Any, ...], View | None] = {}
        self._audit_codec = load_schemas().codec(AUDIT_SCHEMA)
        ph = policy.file.protected_households
        self._protected_paths = {
            schema: frozenset().union(
                *(policy.class_paths[schema].get(c, frozenset()) for c in ph.withhold_classes),
                policy.expand_paths(schema, ph.withhold_paths.get(schema, [])),
            )
            for schema in policy.leaf_classes
        }
        self._nominative = {name: role.nominative for name, role in policy.roles.items()}
        self._applicants = frozenset(
            a.id for a in policy.actors.values() if policy.roles[a.role].scope == "own_application"
        )
        head = SINGLE_OBJECT_MAGIC + self._audit_codec.fingerprint
        self._audit_heads = {a: head + _avro_string(a) for a in policy.actors}
        self._static: dict[str, frozenset[str] | None] = {}
        for name, role in policy.roles.items():
            conditional = any(isinstance(g, ConditionalGrant) for g in role.grants.values())
            self._static[name] = None if conditional else frozenset(c for c, g in role.grants.items() if g)

    # ---- grants and views -------------------------------------------------------------------
    def _condition(
        self,
        cls: str,
        grant: ConditionalGrant,
        actor: Actor,
        *,
        schema: str,
        record: Mapping[str, Any],
        state: ScopeState,
    ) -> bool:
        if grant.event_types is not None and (
            schema != DECISION or record.get("typeEvenement") not in grant.event_types
        ):
            return False
        if grant.when == "designated_by_actor":
            return actor.id in state.designataires and self._own_designation(actor.id, schema, record, state)
        if grant.when == "own_contingent":
            if actor.id not in state.designataires or not self._own_designation(
                actor.id, schema, record, state
            ):
                return False
            attribution = (record.get("radiation") or {}).get("attribution") if schema == DECISION else None
            if attribution is None or actor.contingent is None:
                return True
            return actor.contingent in (
                attribution.get("contingent"),
                attribution.get("contingentDesignataire"),
            )
        if grant.when == "labelled_by_actor":
            bodies = state.violence_labellers if cls == "violences" else state.labellers
            return actor.id in bodies
        return True

    def _own_designation(
        self, actor_id: str, schema: str, record: Mapping[str, Any], state: ScopeState
    ) -> bool:
        """False when the event is another organisation's designation, or concerns a dwelling that
        only other organisations designated ("own designations", docs/policy.md)."""
        if schema != DECISION:
            return True
        designation = record.get("designation")
        if designation:
            return self.index.resolve(designation.get("designataire") or "") == actor_id
        logements = [(record.get(n) or {}).get("logement") for n in _DWELLING_EVENTS]
        attribution = (record.get("radiation") or {}).get("attribution")
        if attribution:
            logements.append(attribution.get("logement"))
        for logement in logements:
            key = dwelling_key(logement)
            if key is None:
                continue
            owners = {d.rpartition("|")[2] for d in state.designated if d.rpartition("|")[0] == key}
            if owners and actor_id not in owners:
                return False
        return True

    def granted_classes(
        self, actor: Actor, schema: str, record: Mapping[str, Any], state: ScopeState
    ) -> frozenset[str]:
        static = self._static.get(actor.role)
        if static is not None:
            return static
        out = set()
        for cls, grant in self.policy.roles[actor.role].grants.items():
            if grant is True or (
                isinstance(grant, ConditionalGrant)
                and self._condition(cls, grant, actor, schema=schema, record=record, state=state)
            ):
                out.add(cls)
        return frozenset(out)

    def view_for_classes(self, role_name: str, schema: str, classes: frozenset[str]) -> View | None:
        """The view a role gets for these granted classes (None when nothing at all is granted).

        The same view serves protected and unprotected households: for a role the protected-household
        rule applies to, the fields it withholds are optional in the view (`View.nullable`) and
        encoded as null for a protected household, so schema and headers never tell the two apart."""
        role: Role = self.policy.roles[role_name]
        applies = role_name not in self.policy.file.protected_households.exempt_roles
        gkey = (schema, role_name, classes)
        if gkey in self._by_grant:
            return self._by_grant[gkey]
        per_class = self.policy.class_paths[schema]
        paths = frozenset().union(*(per_class.get(c, frozenset()) for c in classes))
        paths -= self.policy.expand_paths(schema, role.withhold_paths.get(schema, []))
        nullable = paths & self._protected_paths[schema] if applies else frozenset()
        derive = tuple(d for d in role.derive if schema in DERIVATIONS[d].schemas)
        # A view is named after its role and the conditional grants that hold (stable across policy
        # versions: a grant change is a new version of the same record for the recipients).
        family = {
            "role": role_name,
            "conditions": sorted(c for c in classes if role.grants.get(c) is not True),
        }
        view: View | None = None
        if paths or derive:
            vkey = (schema, paths, derive, nullable, role_name, tuple(family["conditions"]))
            view = self._views.get(vkey)
            if view is None:
                leaf_classes = self.policy.leaf_classes[schema]
                view = build_view(schema, paths, derive, leaf_classes, nullable=nullable, family=family)
                self._views[vkey] = view
        self._by_grant[gkey] = view
        return view

    def view_for(
        self, actor: Actor, schema: str, record: Mapping[str, Any], state: ScopeState
    ) -> View | None:
        classes = self.granted_classes(actor, schema, record, state)
        return self.view_for_classes(actor.role, schema, classes)

    def views(self) -> list[View]:
        return list(self._views.values())

    # ---- routing ----------------------------------------------------------------------------
    def route(  # noqa: PLR0917 - the documented signature route(schema, key, record, state, headers)
        self,
        schema: str,
        key: bytes | None,
        record: Mapping[str, Any],
        state: ScopeState | None,
        source_headers: Sequence[tuple[str, bytes]] = (),
        now: datetime | None = None,
    ) -> RouteResult:
        schema = schema if "." in schema else f"fr.gp.{schema}"
        new_state, chunks = self._scope(schema, record, state, source_headers)
        # Conditions depend on the actor only through these ids: every other actor of a role gets
        # the role's view, computed once per event.
        special = {*new_state.designataires, *new_state.labellers, *new_state.violence_labellers}
        per_role: dict[str, View | None] = {}
        # (view id, nominative) -> (view, [(rule, actor ids)])
        groups: dict[tuple[int, bool], tuple[View, list[tuple[str, Sequence[str]]]]] = {}
        by_id = self.index.by_id
        nominative_roles = self._nominative

        def put(view: View | None, role: str, rule: str, ids: Sequence[str]) -> None:
            if view is None:
                return
            gk = (id(view), nominative_roles[role])
            group = groups.get(gk)
            if group is None:
                group = groups[gk] = (view, [])
            group[1].append((rule, ids))

        for rule, role, ids in chunks:
            common: Sequence[str] = ids
            if special and not special.isdisjoint(ids):
                common = [a for a in ids if a not in special]
                for actor_id in ids:
                    if actor_id in special:
                        view = self.view_for(by_id[actor_id], schema, record, new_state)
                        put(view, role, rule, (actor_id,))
            if not common:
                continue
            if role not in per_role:
                per_role[role] = self.view_for(by_id[common[0]], schema, record, new_state)
            put(per_role[role], role, rule, common)
        now = now or datetime.now(UTC)
        source_id = next((v.decode(errors="replace") for k, v in source_headers if k == "ce_id"), None)
        num_unique = record.get("numUnique")
        deliveries = []
        audit = []
        bodies: dict[tuple[Any, bool, bool], bytes] = {}
        for (_, nominative), (view, members) in groups.items():
            deliveries.append(
                self._delivery(
                    view,
                    members,
                    nominative=nominative,
                    schema=schema,
                    key=key,
                    record=record,
                    source_id=source_id,
                    now=now,
                    protected=new_state.protected,
                    bodies=bodies,
                )
            )
            if nominative:
                audit += self._audit(
                    view,
                    members,
                    schema=schema,
                    num_unique=num_unique,
                    source_id=source_id,
                    now=now,
                    key=key,
                )
        # every recipient is recorded (retention: each gets the erasure), by the key it received
        served = new_state.served(
            [a for d in deliveries if d.nominative for a in d.actors],
            [a for d in deliveries if not d.nominative for a in d.actors],
        )
        return RouteResult(served, tuple(deliveries), tuple(audit), tuple(chunks))

    def _delivery(
        self,
        view: View,
        members: list[tuple[str, Sequence[str]]],
        *,
        nominative: bool,
        schema: str,
        key: bytes | None,
        record: Mapping[str, Any],
        source_id: str | None,
        now: datetime,
        protected: bool,
        bodies: dict[tuple[Any, bool, bool], bytes],
    ) -> Delivery:
        num_unique = record.get("numUnique")
        secret = self.policy.secret
        subject = num_unique if nominative else pseudonym(num_unique, secret)
        if nominative:
            out_key = key
        else:  # keyed even before numbering (actor topics are compacted: a record needs a key)
            anonymous = subject or pseudonym((key or b"").decode("utf-8", "replace"), secret)
            out_key = anonymous.encode() if anonymous else None
        seed = repr((schema, key, record.get("eventId"))).encode()
        source_header: list[tuple[str, bytes]] = []
        if nominative:
            event_id = source_id or hashlib.sha256(seed).hexdigest()
            if source_id is not None:
                source_header.append((H_SOURCE_CE_ID, source_id.encode()))
        else:
            # The source id (a poller's is the eventId) and an unkeyed hash of the numéro unique
            # would undo the pseudonymisation: keyed like pseudoId, and no source id header.
            event_id = pseudonym(repr((source_id, seed)), secret) or ""
        headers = self._headers(view, subject, f"{event_id}/{view.fingerprint_hex}", source_header, now)
        actors = tuple(a for _, ids in members for a in ids)
        # Only exempt roles' views have no withholdable field: the rule applies to every other.
        withheld = view.nullable if protected else frozenset()
        bkey = (view.shape, bool(withheld), nominative)
        body = bodies.get(bkey)  # roles with the same grants: projected and encoded once
        if body is None:
            shown = record if nominative else self._masked(record)
            body = bodies[bkey] = view.encode_body(shown, secret, withhold=bool(withheld))
        value = view.frame_prefix + body
        return Delivery(view, out_key, value, headers, actors, nominative, withheld)

    def _headers(
        self,
        view: View,
        subject: str | None,
        ce_id: str,
        source_header: list[tuple[str, bytes]],
        now: datetime,
    ) -> tuple[tuple[str, bytes], ...]:
        return (
            (H_POLICY_VERSION, self.policy.version.encode()),
            (H_VIEW_FINGERPRINT, view.fingerprint_hex.encode()),
            (H_VIEW_SCHEMA, view.name.encode()),
            *source_header,
            *cloudevent_headers(
                source=CE_SOURCE,
                type_=view.name,
                subject=subject or "",
                time=now,
                id_=ce_id,
                dataschema=view.name,
            ),
        )

    def _scope(
        self,
        schema: str,
        record: Mapping[str, Any],
        state: ScopeState | None,
        source_headers: Sequence[tuple[str, bytes]],
    ) -> tuple[ScopeState, list[tuple[str, str, tuple[str, ...]]]]:
        """The new state and the actors in scope, under the named-party rule for who entered it."""
        source = next((v.decode(errors="replace") for k, v in source_headers if k == H_SOURCE), None)
        entry = Entry(source, (record.get("provenance") or {}).get("saisie"))
        admit = self.parties.admit(entry)
        new_state = update_state(
            state,
            schema,
            record,
            admit,
            speakers=self.parties.speakers(entry),
            resolve=self.parties.resolve,
            is_siao=self.parties.is_siao,
        )
        return new_state, self.index.in_scope(schema, record, new_state, admit)

    def _masked(self, record: Mapping[str, Any]) -> Mapping[str, Any]:
        """The record for a non-nominative view: a provenance `origine` / `saisie` that does not name
        an organisation of the policy (an applicant's own id, an unknown code) becomes MASKED, so an
        applicant-originated event leads back to nobody."""
        prov = record.get("provenance")
        if not prov:
            return record
        changed = {}
        for name in ("origine", "saisie"):
            org = self.policy.organisation(prov.get(name))
            if org is None or org in self._applicants:
                changed[name] = MASKED
        if not changed:
            return record
        return {**record, "provenance": {**prov, **changed}}

    def _audit(
        self,
        view: View,
        members: list[tuple[str, Sequence[str]]],
        *,
        schema: str,
        num_unique: str | None,
        source_id: str | None,
        now: datetime,
        key: bytes | None,
    ) -> list[AuditBatch]:
        by_rule: dict[str, list[str]] = {}
        for rule, ids in members:
            by_rule.setdefault(rule, []).extend(ids)
        out = []
        for rule, actors in by_rule.items():
            entry = {
                "numUnique": num_unique,
                "schema": schema,
                # the view's classes, whatever a per-record rule withheld: the entry reads the same
                # for a protected and an unprotected household (its readers may not know which)
                "classes": list(view.classes),
                "rule": rule,
                "policyVersion": self.policy.version,
                "viewSchema": view.name,
                "viewFingerprint": view.fingerprint_hex,
                "sourceEventId": source_id,
                "time": now,
                "reference": key.decode("utf-8", "replace") if key else None,
            }
            body = self._audit_codec.encode_checked({"actor": "", **entry})
            prefix = SINGLE_OBJECT_MAGIC + self._audit_codec.fingerprint
            heads = self._audit_heads
            out.append(
                AuditBatch(tuple(actors), entry, key, prefix, body[1:], tuple(heads[a] for a in actors))
            )
        return out
