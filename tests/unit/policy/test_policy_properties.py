"""Property tests: random demands and decisions x every actor of the demo cast (every role)."""

from __future__ import annotations

from typing import Any

from gateway.codec.avro import decode_single_object
from gateway.policy import Router, ScopeState, load_policy
from gateway.policy.model import ConditionalGrant
from gateway.policy.scope import departement_of
from gateway.policy.views import schema_leaf_paths, view_leaf_paths
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_strategies import records

POLICY = load_policy()
ROUTER = Router(POLICY)
DEMANDE, DECISION = "fr.gp.Demande", "fr.gp.Decision"
PROTECTED_PATHS = {
    DEMANDE: {p for p, c in POLICY.leaf_classes[DEMANDE].items() if c == "contact"}
    | {"logementActuel.proprietaire"},
    DECISION: {"orientation.structure"},
}
EXEMPT = set(POLICY.file.protected_households.exempt_roles)
_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decoded(delivery: Any) -> dict[str, Any]:
    codec = delivery.view.codec
    _, record = decode_single_object(delivery.value, {codec.fingerprint: codec})
    return record


def _valued_paths(record: Any, prefix: str = "") -> set[str]:
    """Leaf paths holding a non-null value."""
    out: set[str] = set()
    for key, value in record.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= _valued_paths(value, path + ".")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for v in value:
                out |= _valued_paths(v, path + "[].")
        elif value is not None and value != []:
            out.add(path)
    return out


def _history_facts(history: list[dict[str, Any]]) -> dict[str, set[str]]:
    facts: dict[str, set[str]] = {"designataires": set(), "violence_labellers": set()}
    for rec in history:
        if rec.get("designation"):
            facts["designataires"].add(rec["designation"]["designataire"])
        if rec.get("labelViolences"):
            facts["violence_labellers"].add(rec["labelViolences"]["organismeLabellisant"])
    return facts


def _check_fields(schema: str, record: dict[str, Any], history: list[dict[str, Any]], result: Any) -> None:
    facts = _history_facts([*history, record] if schema == DECISION else history)
    protected = any(r.get("labelViolences") for r in [*history, record] if "eventId" in r) or any(
        r.get("violencesFamiliales") for r in [*history, record] if "eventId" not in r
    )
    for delivery in result.deliveries:
        out_paths = schema_leaf_paths(delivery.view.avro)
        for v in view_leaf_paths(_decoded(delivery)):
            assert any(s == v or s.startswith((v + "[]", v + ".")) for s in out_paths), v
        for actor_id in delivery.actors:
            actor = POLICY.actors[actor_id]
            role = POLICY.roles[actor.role]
            derived = set(role.derive)
            for path in out_paths - derived:
                cls = POLICY.leaf_classes[schema][path]
                grant = role.grants.get(cls, False)
                assert grant, f"{actor.role} got {path} ({cls}) without a grant"
                if isinstance(grant, ConditionalGrant) and grant.when == "designated_by_actor":
                    assert actor_id in facts["designataires"], f"{path} without own designation"
                if isinstance(grant, ConditionalGrant) and grant.when == "labelled_by_actor":
                    assert actor_id in facts["violence_labellers"], f"{path} without own label"
                if isinstance(grant, ConditionalGrant) and grant.event_types is not None:
                    assert record.get("typeEvenement") in grant.event_types
            if protected and actor.role not in EXEMPT:
                # the view is the unprotected one; the protected values are withheld (null)
                leaked = (out_paths & PROTECTED_PATHS[schema]) - delivery.withheld
                assert not leaked, f"protected household leaked {sorted(leaked)} to {actor.role}"
                held = _valued_paths(_decoded(delivery)) & PROTECTED_PATHS[schema]
                assert not held, f"protected household leaked values of {sorted(held)} to {actor.role}"
            if not role.nominative:
                assert "numUnique" not in out_paths
                assert delivery.key != (record.get("numUnique") or "").encode() or not record.get("numUnique")


def _in_territory(actor_id: str, demande: dict[str, Any]) -> bool:
    actor = POLICY.actors[actor_id]
    kind = POLICY.roles[actor.role].scope
    wanted = demande["logementRecherche"]["communes"]
    elargie = demande["logementRecherche"]["demandeElargie"]
    if (
        _org(demande["provenance"]["origine"]) == actor_id and _admitted(actor_id, demande)
    ) or kind == "everything":
        return True
    if kind == "own_application":
        return demande["numUnique"] == actor.numUnique
    if kind not in ("territory", "reservations"):
        return False  # siao / commission: nothing links a fresh application to them
    communes = set(actor.communes if kind == "territory" else actor.reservations)
    depts = set(actor.departements if kind == "territory" else [])
    for c in wanted:
        if c in communes or departement_of(c) in depts:
            return True
        if elargie and departement_of(c) in depts | {departement_of(x) for x in communes}:
            return True
    return False


def _org(code: str | None) -> str | None:
    if code in POLICY.actors:
        return code
    return next((a.id for a in POLICY.actors.values() if code in a.guichets), None)


def _territory(actor_id: str) -> tuple[set[str], set[str]]:
    a = POLICY.actors[actor_id]
    return {*a.communes, *a.reservations}, set(a.departements)


def _admitted(actor_id: str, event: dict[str, Any]) -> bool:
    """The named-party rule (docs/policy.md), no source known: the entering organisation itself, one
    whose territory overlaps, or a trusted pair; never an applicant."""
    if POLICY.roles[POLICY.actors[actor_id].role].scope == "own_application":
        return False
    entering = _org(event["provenance"]["saisie"])
    if entering is None:
        return False
    if entering == actor_id or (entering, actor_id) in POLICY.trusted:
        return True
    (ca, da), (cb, db) = _territory(entering), _territory(actor_id)
    return bool(
        ca & cb or da & db or {c[:2] for c in ca} & db or {c[:2] for c in cb} & da
    )  # the demo's départements are metropolitan


def _named(actor_id: str, e: dict[str, Any], kind: str) -> bool:
    if kind == "siao" and (e.get("orientation") or {}).get("siao") == actor_id:
        return True
    if kind in ("siao", "commission"):
        labels = [e.get(n) for n in ("label", "labelSante", "labelViolences")]
        if any(lb and lb["organismeLabellisant"] == actor_id for lb in labels):
            return True
    if kind == "commission":
        subs = [e.get(n) for n in ("avis", "inscriptionCal", "decisionDalo")]
        return any(sub and sub["commission"] == actor_id for sub in subs)
    return False


def _linked(actor_id: str, events: list[dict[str, Any]]) -> bool:
    """The actor is a SIAO / commission that some event links to the application (admitted by the
    named-party rule, or confirmed by a later event it entered), or the SIAO of the département where
    the latest orientation says the household is in hébergement."""
    actor = POLICY.actors[actor_id]
    kind = POLICY.roles[actor.role].scope
    latest = None
    for i, e in enumerate(events):
        o = e.get("orientation")
        if o and (latest is None or o["dateOrientation"] >= latest["dateOrientation"]):
            latest = o
        if _named(actor_id, e, kind) and (
            _admitted(actor_id, e) or any(_org(f["provenance"]["saisie"]) == actor_id for f in events[i:])
        ):
            return True
    return bool(
        kind == "siao" and latest and latest["enHebergement"] and latest["departement"] in actor.departements
    )


def _causes(actor_id: str, event: dict[str, Any]) -> bool:
    if not _admitted(actor_id, event):
        return False
    if _org(event["provenance"]["origine"]) == actor_id:
        return True
    if event.get("designation") and event["designation"]["designataire"] == actor_id:
        return True
    subs = [event.get(n) for n in ("designation", "inscriptionCal", "visite", "decisionCal", "refus", "bail")]
    if any(sub and sub.get("logement") and sub["logement"]["sirenBailleur"] == actor_id for sub in subs):
        return True
    attribution = (event.get("radiation") or {}).get("attribution")
    return bool(attribution and actor_id in (attribution["siren"], attribution["logement"]["sirenBailleur"]))


@_SETTINGS
@given(records(DEMANDE))
def test_fresh_demand_reaches_only_actors_in_territory_with_granted_fields(demande: dict[str, Any]) -> None:
    result = ROUTER.route(DEMANDE, (demande["numUnique"] or "").encode(), demande, None)
    expected = {a for a in POLICY.actors if _in_territory(a, demande)}
    assert result.recipients == expected
    _check_fields(DEMANDE, demande, [], result)
    nominative = {a for a in expected if POLICY.roles[POLICY.actors[a].role].nominative}
    assert sorted(e["actor"] for e in result.audit_entries()) == sorted(nominative)


@_SETTINGS
@given(records(DEMANDE), st.lists(records(DECISION), max_size=4))
def test_decisions_follow_their_application(demande: dict[str, Any], decisions: list[dict[str, Any]]) -> None:
    state: ScopeState | None = None
    history: list[dict[str, Any]] = []
    first = ROUTER.route(DEMANDE, b"k", demande, state)
    state = first.state
    history.append(demande)
    for raw in decisions:
        decision = {**raw, "numUnique": demande["numUnique"] or raw["numUnique"]}
        result = ROUTER.route(DECISION, b"k", decision, state)
        _check_fields(DECISION, decision, history, result)
        # An actor that sees the application sees its events.
        by_scope = {a for a in first.recipients if first.rules[a] != "causer"}
        assert by_scope <= result.recipients
        # ... and nobody else: no delivery outside the territory, links and causers.
        for actor_id in result.recipients:
            allowed = (
                _in_territory(actor_id, {**demande, "provenance": {"origine": ""}})
                or _causes(actor_id, decision)
                or _linked(actor_id, [*history[1:], decision])
            )
            assert allowed, f"{POLICY.actors[actor_id].role} {actor_id} got an event outside its scope"
        state = result.state
        history.append(decision)
    # A demand re-sent after its events keeps the protected-household and field rules.
    again = ROUTER.route(DEMANDE, b"k", demande, state)
    _check_fields(DEMANDE, demande, history, again)
