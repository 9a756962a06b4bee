"""Issue 10 item 4: protection is not readable from the schema or headers of what a recipient gets.

For every role and every canonical event type, a protected and an unprotected household produce,
for every actor without the `violences` grant, records with the same view (schema, name,
fingerprint) and the same headers; only the values the rule withholds differ (they are null).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from gateway.codec.avro import decode_single_object, load_schemas
from gateway.policy import Router, ScopeState, load_policy
from gateway.policy.explain import all_views, explain_actor
from gateway.policy.router import RouteResult
from gateway.policy.samples import sample_decision, sample_demande
from hypothesis import given, settings
from hypothesis import strategies as st

POLICY = load_policy()
DEMANDE, DECISION = "fr.gp.Demande", "fr.gp.Decision"
EVENT_TYPES = load_schemas().enum_symbols("fr.gp.TypeEvenement")
NOW = datetime(2026, 3, 1, tzinfo=UTC)
ETAT, BAILLEUR_35, RM = "130000035", "200000001", "243500139"
EXEMPT = set(POLICY.file.protected_households.exempt_roles)


def _history(router: Router, how: str, communes: tuple[str, ...]) -> ScopeState:
    """The state of an application: unprotected, protected by its Demande, or by a violence label."""
    state = router.route(
        DEMANDE, b"k", sample_demande(communes=communes, violences=how == "demande"), None
    ).state
    field = "labelViolences" if how == "label" else "label"
    label = sample_decision("LABEL_PRIORITAIRE", origine=ETAT, _field=field, event_id="evt-label")
    return router.route(DECISION, b"k", label, state).state


def _decoded(delivery: Any) -> dict[str, Any]:
    codec = delivery.view.codec
    return decode_single_object(delivery.value, {codec.fingerprint: codec})[1]


def _blind_actors(router: Router, schema: str, record: dict[str, Any], *results: RouteResult) -> set[str]:
    """Actors that got the record in every result and whose grants do not include `violences`."""
    common = set.intersection(*(r.recipients for r in results))
    return {
        a
        for a in common
        if all(
            "violences" not in router.granted_classes(POLICY.actors[a], schema, record, r.state)
            for r in results
        )
    }


def _same_for_blind(
    router: Router, schema: str, record: dict[str, Any], plain: RouteResult, prot: RouteResult
) -> int:
    assert plain.recipients == prot.recipients  # scope does not depend on protection
    checked = 0
    for actor in _blind_actors(router, schema, record, plain, prot):
        a, b = plain.for_actor(actor), prot.for_actor(actor)
        assert a is not None and b is not None
        assert a.view.name == b.view.name, actor
        assert a.view.avro == b.view.avro, actor
        assert a.headers == b.headers, actor
        assert a.value[:10] == b.value[:10]  # the frame names the same schema
        entries = [
            sorted((e["actor"], e["rule"], tuple(e["classes"]), e["viewSchema"], e["viewFingerprint"])
                   for e in r.audit_entries() if e["actor"] == actor)
            for r in (plain, prot)
        ]  # fmt: skip
        assert entries[0] == entries[1], actor
        checked += 1
    return checked


@pytest.mark.parametrize("how", ["demande", "label"])
@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_decisions_of_every_type_look_the_same_for_a_protected_household(how: str, event_type: str) -> None:
    router = Router(POLICY)
    plain_state = _history(router, "none", ("35238",))
    prot_state = _history(router, how, ("35238",))
    assert prot_state.protected and not plain_state.protected
    record = sample_decision(event_type, origine=BAILLEUR_35)
    plain = router.route(DECISION, b"k", record, plain_state, [("ce_id", b"c1")], NOW)
    prot = router.route(DECISION, b"k", record, prot_state, [("ce_id", b"c1")], NOW)
    assert _same_for_blind(router, DECISION, record, plain, prot) > 0


@settings(max_examples=25, deadline=None)
@given(
    how=st.sampled_from(["demande", "label"]),
    communes=st.sampled_from([("35238",), ("35288",), ("44109",), ("35238", "44109")]),
    elargie=st.booleans(),
)
def test_demandes_look_the_same_for_a_protected_household(
    how: str, communes: tuple[str, ...], elargie: bool
) -> None:
    router = Router(POLICY)
    plain_state = _history(router, "none", communes)
    prot_state = _history(router, how, communes)
    plain_rec = sample_demande(communes=communes, elargie=elargie)
    prot_rec = sample_demande(communes=communes, elargie=elargie, violences=how == "demande")
    plain = router.route(DEMANDE, b"k", plain_rec, plain_state, [("ce_id", b"c1")], NOW)
    prot = router.route(DEMANDE, b"k", prot_rec, prot_state, [("ce_id", b"c1")], NOW)
    assert _same_for_blind(router, DEMANDE, plain_rec, plain, prot) > 0


def test_withheld_values_are_null_and_exempt_roles_see_them() -> None:
    router = Router(POLICY)
    prot = router.route(DEMANDE, b"k", sample_demande(violences=True), None)
    rm = prot.for_actor(RM)
    assert rm is not None and "demandeur.mel" in rm.withheld
    out = _decoded(rm)
    assert out["demandeur"]["mel"] is None and out["logementActuel"]["proprietaire"] is None
    assert out["demandeur"]["nom"] == "DEMO"  # only the withheld values differ
    assert "contact" not in rm.classes and "contact" in rm.view.classes
    plain = router.route(DEMANDE, b"k", sample_demande(), None).for_actor(RM)
    assert plain is not None and not plain.withheld
    assert _decoded(plain)["demandeur"]["mel"] is not None
    bailleur = prot.for_actor(BAILLEUR_35)
    assert bailleur is not None and not bailleur.view.nullable
    assert _decoded(bailleur)["demandeur"]["mel"] is not None


def test_policy_commands_do_not_label_views_by_protection() -> None:
    router = Router(POLICY)
    names = [(i.role, i.view.schema, i.conditions, i.view.name) for i in all_views(router)]
    assert len(names) == len(set(names))  # one view per role, schema and grant set
    info = explain_actor(router, RM)
    assert info is not None
    assert all("protected" not in v for v in info.views)
