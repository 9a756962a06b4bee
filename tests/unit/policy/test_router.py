"""Router scenarios on the demo cast: scope, conditional grants, protected households, views, audit."""

from __future__ import annotations

from typing import Any

from gateway.codec.avro import decode_single_object, load_schemas
from gateway.policy import Router, ScopeState, load_policy
from gateway.policy.derive import pseudonym
from gateway.policy.router import H_POLICY_VERSION, H_SOURCE_CE_ID, H_VIEW_FINGERPRINT
from gateway.policy.samples import sample_decision, sample_demande
from gateway.policy.views import schema_leaf_paths

POLICY = load_policy()
DEMANDE, DECISION = "fr.gp.Demande", "fr.gp.Decision"
BAILLEUR_35, BAILLEUR_44, ETAT, RM, ALS, SIAO, CIA, GEST, STAT = (
    "200000001", "200000002", "130000035", "243500139", "824541148", "300000035", "CIA-243500139",
    "300000099", "STAT-35",
)  # fmt: skip
DEMO = "DEM-7K2Q9X4M"  # the demo applicant of 035260100000000001


def _decode(delivery: Any) -> dict[str, Any]:
    codec = delivery.view.codec
    _, rec = decode_single_object(delivery.value, {codec.fingerprint: codec})
    return rec


def _paths(router: Router, result: Any, actor: str) -> set[str]:
    delivery = result.for_actor(actor)
    assert delivery is not None, f"{actor} got nothing"
    return schema_leaf_paths(delivery.view.avro) - delivery.withheld


def test_rennes_demand_reaches_dept_35_actors_only() -> None:
    router = Router(POLICY)
    result = router.route(DEMANDE, b"035260100000000001", sample_demande(), None, [("ce_id", b"src-1")])
    assert result.recipients == {BAILLEUR_35, ETAT, RM, ALS, GEST, STAT, DEMO}
    assert result.rules[RM] == "territory:commune" and result.rules[BAILLEUR_35] == "territory:departement"
    # bailleur, etat and the applicant have the same grants on a demand: views of their own roles
    # (stable names for their registry subjects) of one shape, projected and encoded once.
    shared = result.for_actor(BAILLEUR_35)
    assert shared is not None and set(shared.actors) == {BAILLEUR_35}
    same = [result.for_actor(a) for a in (BAILLEUR_35, ETAT, DEMO)]
    assert len({d.view.name for d in same if d}) == 3 and len({d.view.shape for d in same if d}) == 1
    bodies = {d.value[10:] for d in same if d}
    assert len(bodies) == 1
    assert len(result.deliveries) == 7
    headers = dict(shared.headers)
    assert headers[H_POLICY_VERSION] == POLICY.version.encode()
    assert headers[H_VIEW_FINGERPRINT] == shared.view.fingerprint_hex.encode()
    assert headers[H_SOURCE_CE_ID] == b"src-1"
    assert headers["ce_type"] == shared.view.name.encode()


def test_views_of_one_shape_are_encoded_once_per_record(monkeypatch: Any) -> None:
    from gateway.policy.views import View  # noqa: PLC0415

    calls: list[str] = []
    original = View.encode_body

    def counting(self: View, *args: Any, **kwargs: Any) -> bytes:
        calls.append(self.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(View, "encode_body", counting)
    result = Router(POLICY).route(DEMANDE, b"k", sample_demande(), None)
    assert len(result.deliveries) == 7
    assert len(calls) == len({d.view.shape for d in result.deliveries}) == 5


def test_withheld_fields_do_not_exist_in_the_view_and_kept_values_are_exact() -> None:
    router = Router(POLICY)
    demande = sample_demande()
    result = router.route(DEMANDE, b"k", demande, None)
    rm = result.for_actor(RM)
    assert rm is not None
    fields = {f["name"] for f in rm.view.avro["fields"]}
    assert "handicap" not in fields and "motifsSante" not in fields and "violencesFamiliales" not in fields
    assert "besoinLogementAdapte" in fields
    out = _decode(rm)
    assert out["besoinLogementAdapte"] is True
    assert "ressourcesSante" not in out["demandeur"]
    assert out["demandeur"]["nom"] == demande["demandeur"]["nom"]
    assert out["logementRecherche"] == demande["logementRecherche"]
    # A required field kept stays required (logementRecherche is not turned into an optional).
    lr = next(f for f in rm.view.avro["fields"] if f["name"] == "logementRecherche")
    assert isinstance(lr["type"], dict) and lr["type"]["type"] == "record"
    assert rm.view.codec.fingerprint != load_schemas().codec(DEMANDE).fingerprint


def test_nantes_demand_elargie_reaches_rennes_metropole_only_through_its_departement() -> None:
    router = Router(POLICY)
    nantes = router.route(
        DEMANDE, b"k", sample_demande("044260100000000001", ("44162",), origine=BAILLEUR_44), None
    )
    assert nantes.recipients == {BAILLEUR_44, STAT}
    st_malo = sample_demande(communes=("35288",), elargie=True)
    result = router.route(DEMANDE, b"k", st_malo, None)
    assert RM in result.recipients and result.rules[RM] == "territory:elargie"
    assert ALS in result.recipients  # reservations in 35238 lie in the same département
    not_elargie = router.route(DEMANDE, b"k", sample_demande(communes=("35288",)), None)
    assert RM not in not_elargie.recipients and ALS not in not_elargie.recipients


def test_reservataire_sees_traitement_only_after_its_own_designation() -> None:
    router = Router(POLICY)
    state = router.route(DEMANDE, b"k", sample_demande(), None).state
    other = router.route(DECISION, b"k", sample_decision("DESIGNATION", origine=ETAT), state)
    assert not any(p.startswith("designation") for p in _paths(router, other, ALS))
    own = router.route(DECISION, b"k", sample_decision("DESIGNATION", origine=ALS), other.state)
    assert any(p.startswith("designation") for p in _paths(router, own, ALS))
    cal = router.route(DECISION, b"k", sample_decision("DECISION_CAL"), own.state)
    assert "decisionCal.rang" in _paths(router, cal, ALS)
    rad = router.route(DECISION, b"k", sample_decision("RADIATION"), cal.state)
    assert "radiation.attribution.contingent" in _paths(router, rad, ALS)  # its contingent COLACT


def test_siao_and_commission_follow_their_links_and_violences_only_if_labelled_by_the_siao() -> None:
    router = Router(POLICY)
    state = router.route(DEMANDE, b"k", sample_demande(communes=("35288",)), None).state
    first = router.route(DEMANDE, b"k", sample_demande(communes=("35288",)), state)
    assert SIAO not in first.recipients and CIA not in first.recipients
    orient = router.route(DECISION, b"k", sample_decision("ORIENTATION_SIAO", origine=SIAO), state)
    avis = router.route(DECISION, b"k", sample_decision("AVIS_COMMISSION", origine=CIA), orient.state)
    assert {SIAO, CIA} <= avis.recipients and avis.rules[CIA] == "commission:linked"
    label = router.route(
        DECISION,
        b"k",
        sample_decision("LABEL_PRIORITAIRE", origine=SIAO, _field="labelViolences"),
        avis.state,
    )
    assert "labelViolences.categorie" in _paths(router, label, SIAO)
    assert "labelViolences.categorie" not in _paths(router, label, GEST)
    demande_again = router.route(
        DEMANDE, b"k", sample_demande(communes=("35288",), violences=True), label.state
    )
    siao_paths = _paths(router, demande_again, SIAO)
    assert "violencesFamiliales" in siao_paths
    assert not any(p.startswith("demandeur.revenuFiscal") for p in siao_paths)  # ressources: no


def test_protected_household_withholds_contact_except_for_exempt_roles() -> None:
    router = Router(POLICY)
    result = router.route(DEMANDE, b"k", sample_demande(violences=True), None)
    for actor in (RM, ALS, GEST):
        paths = _paths(router, result, actor)
        assert not any(".telPortable" in p or ".mel" in p or ".adressePostale" in p for p in paths), actor
        assert "logementActuel.proprietaire" not in paths
    for actor in (BAILLEUR_35, ETAT):
        assert "demandeur.adressePostale.voie" in _paths(router, result, actor)
    # A violence label on a later event protects the household from then on.
    state = router.route(DEMANDE, b"k", sample_demande(), None).state
    labelled = router.route(
        DECISION, b"k", sample_decision("LABEL_PRIORITAIRE", origine=ETAT, _field="labelViolences"), state
    )
    assert labelled.state.protected
    again = router.route(DEMANDE, b"k", sample_demande(), labelled.state)
    assert "demandeur.mel" not in _paths(router, again, RM)


def test_statistique_gets_a_pseudonymised_non_nominative_view_and_no_audit() -> None:
    router = Router(POLICY)
    num = "035260100000000001"
    result = router.route(DEMANDE, num.encode(), sample_demande(num), None)
    stat = result.for_actor(STAT)
    assert stat is not None and not stat.nominative
    out = _decode(stat)
    assert out["pseudoId"] == pseudonym(num, POLICY.secret) != num
    assert stat.key == out["pseudoId"].encode()
    assert "numUnique" not in out and "demandeur" not in out and "cotitulaires" not in out
    assert (
        out["nbCotitulaires"] == 1
        and out["nbPersonnesACharge"] == 1
        and out["trancheRevenuFiscal"] == "30-45k"
    )
    assert out["logementActuel"] == {  # type and mode only (with their unknown-code siblings, issue 17)
        "modelesLogement": ["LP"],
        "modelesLogementCodesInconnus": [],
        "typeLogementActuel": None,
        "typeLogementActuelCodeInconnu": None,
    }
    assert STAT not in {e["actor"] for e in result.audit_entries()}
    rad = router.route(DECISION, b"k", sample_decision("RADIATION"), result.state)
    assert "radiation.attribution.logement.rpls" not in _paths(router, rad, STAT)


def test_one_audit_entry_per_nominative_disclosure_encoded_as_audit_entry() -> None:
    router = Router(POLICY)
    result = router.route(DEMANDE, b"k", sample_demande(), None, [("ce_id", b"src-9")])
    entries = result.audit_entries()
    assert sorted(e["actor"] for e in entries) == sorted([BAILLEUR_35, ETAT, RM, ALS, GEST, DEMO])
    codec = load_schemas().codec("fr.gp.AuditEntry")
    decoded = []
    for batch in result.audit:
        for actor, value in batch.records():
            _, rec = decode_single_object(value, {codec.fingerprint: codec})
            assert rec["actor"] == actor
            decoded.append(rec)
    assert len(decoded) == 6
    rm = next(r for r in decoded if r["actor"] == RM)
    assert rm["numUnique"] == "035260100000000001" and rm["rule"] == "territory:commune"
    assert rm["sourceEventId"] == "src-9" and rm["policyVersion"] == POLICY.version
    assert "contact" in rm["classes"] and "sante_handicap" not in rm["classes"]


def test_unknown_actor_and_out_of_scope_events_get_nothing() -> None:
    router = Router(POLICY)
    orphan = router.route(DECISION, b"k", sample_decision("DECISION_CAL", "044260100000000009"), ScopeState())
    assert orphan.recipients == {BAILLEUR_35, STAT}  # the bailleur that caused it, and statistics
    assert orphan.for_actor("999999999") is None


def test_scope_state_round_trips_as_bytes() -> None:
    router = Router(POLICY)
    state = router.route(DEMANDE, b"k", sample_demande(violences=True), None).state
    state = router.route(DECISION, b"k", sample_decision("DESIGNATION", origine=ALS), state).state
    assert ScopeState.from_bytes(state.to_bytes()) == state
    assert ScopeState.from_bytes(None) == ScopeState()


def test_every_possible_view_keeps_the_canonical_type_of_each_kept_field() -> None:
    from gateway.policy.explain import all_views  # noqa: PLC0415
    from gateway.policy.fields import schema_tree  # noqa: PLC0415

    router = Router(POLICY)
    infos = all_views(router)
    assert len({i.view.name for i in infos}) >= 10
    for info in infos:
        view = info.view
        canonical = {n.name: n for n in schema_tree(view.schema)}
        for f in view.avro["fields"]:
            node = canonical.get(f["name"])
            if node is None:
                assert f["name"] in {d.name for d in view.derived}
                continue
            # required stays required, optional stays optional, arrays stay arrays, defaults kept
            assert isinstance(f["type"], list) == isinstance(node.field["type"], list), (view.name, f["name"])
            assert ("default" in f) == ("default" in node.field), (view.name, f["name"])
            t = node.field["type"]
            if node.is_leaf and isinstance(t, str):
                assert f["type"] == t or (t.startswith("fr.gp.") and f["type"] == load_schemas().raw(t))
        assert not (schema_leaf_paths(view.avro) - view.paths - {d.name for d in view.derived})


def test_statistique_headers_do_not_lead_back_to_the_record() -> None:
    """A polled decision's source id is its eventId (a UUIDv5 of the numéro unique): the non-nominative
    view withholds eventId and numUnique, so no header may carry them or an unkeyed hash of them."""
    router = Router(POLICY)
    num = "035260100000000001"
    state = router.route(DEMANDE, num.encode(), sample_demande(num), None).state
    decision = sample_decision("RADIATION")
    event_id = str(decision["eventId"])
    result = router.route(DECISION, num.encode(), decision, state, [("ce_id", event_id.encode())])
    stat = result.for_actor(STAT)
    assert stat is not None and not stat.nominative
    headers = dict(stat.headers)
    assert H_SOURCE_CE_ID not in headers
    assert not [k for k, v in stat.headers if event_id.encode() in v or num.encode() in v]
    assert headers["ce_id"].endswith(b"/" + stat.view.fingerprint_hex.encode())
    again = router.route(DECISION, num.encode(), decision, state, [("ce_id", event_id.encode())])
    assert dict(again.for_actor(STAT).headers)["ce_id"] == headers["ce_id"]  # type: ignore[union-attr]
    nominative = result.for_actor(BAILLEUR_35)
    assert nominative is not None and dict(nominative.headers)[H_SOURCE_CE_ID] == event_id.encode()


def test_every_view_of_the_demo_records_is_written_by_the_fast_checked_writer() -> None:
    """Projected views are plain dicts the compiled writer takes as they are (no fastavro fallback,
    ~3x its cost): decoded canonical records (as the route flow gets them) of the samples."""
    from gateway.codec.avro_write import compile_writer  # noqa: PLC0415

    router = Router(POLICY)
    codecs = load_schemas()
    seen = 0
    samples = [(DEMANDE, sample_demande())]
    samples += [(DECISION, sample_decision(k)) for k in ("DESIGNATION", "DECISION_CAL", "RADIATION")]
    for schema, record in samples:
        codec = codecs.codec(schema)
        decoded = codec.decode(codec.encode(record))  # the route flow's input is decoded Avro
        result = router.route(schema, b"k", decoded, None)
        for delivery in result.deliveries:
            projected = delivery.view.project(decoded, POLICY.secret)
            body = compile_writer(delivery.view.codec.parsed)(projected)  # FastPathMiss fails the test
            assert body == delivery.view.codec.encode(projected)
            seen += 1
    assert seen >= 5


def test_view_schema_fingerprints_change_only_with_the_policy_or_the_contract() -> None:
    """Recipients decode by writer-schema fingerprint: an internal change (how views are projected or
    encoded) must not rename them. These are the demo policy's views of the samples; update the list
    only for a change of policy or canonical schemas, and say so to the recipients."""
    router = Router(POLICY)
    samples = [(DEMANDE, sample_demande())]
    samples += [(DECISION, sample_decision(k)) for k in ("DESIGNATION", "DECISION_CAL", "RADIATION")]
    got = {
        (d.view.name, d.view.fingerprint_hex)
        for schema, record in samples
        for d in router.route(schema, b"k", record, None).deliveries
    }
    # Changed on purpose by issue 10 item 4 (withholdable fields are optional in the one view of a
    # role) and issue 12 (views named per role and conditional grants, nested records per path, so a
    # grant change is a new version of one registry subject; fingerprints in frame byte order).
    # Then by issues 17 and 14 (canonical contract: dependants' resources, fichierSne,
    # estProprietaire, INCONNU defaults and <field>CodeInconnu siblings; Decision.saisine).
    assert got == {
        ("fr.gp.view.Decision_2896e746", "a6a16aae44c7c119"),
        ("fr.gp.view.Decision_4eb661fb", "49f044077214e003"),
        ("fr.gp.view.Decision_55fced28", "51bcaa0ff8a9828b"),
        ("fr.gp.view.Decision_8d9a3aca", "b2266d8aa4dd0e0e"),
        ("fr.gp.view.Demande_0147eddc", "9e136f671c910182"),
        ("fr.gp.view.Demande_1a909903", "1c4f0fcc40d6179d"),
        ("fr.gp.view.Demande_59c9e39e", "7d85a75ae70b0a10"),
        ("fr.gp.view.Demande_781de2ce", "e2bc5bf1256f8fe1"),
        ("fr.gp.view.Demande_94991410", "fa156dd8e6709be7"),
        ("fr.gp.view.Demande_acf736e5", "edf6dfb7342a42f0"),
        ("fr.gp.view.Demande_d95149f2", "92fd696f2e00e8b5"),
    }


def test_statistique_view_of_an_application_not_numbered_yet_is_keyed_by_a_pseudonym() -> None:
    # actor topics are compacted (docs/retention.md): the broker refuses a record without a key
    router = Router(POLICY)
    record = sample_demande("035260100000000001")
    record["numUnique"] = None
    key = b"G3501/ERP-1"
    stat = router.route(DEMANDE, key, record, None).for_actor(STAT)
    assert stat is not None and not stat.nominative
    assert stat.key == pseudonym("G3501/ERP-1", POLICY.secret).encode()  # type: ignore[union-attr]
    assert b"G3501" not in stat.key
