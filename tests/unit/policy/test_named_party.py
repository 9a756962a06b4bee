"""The named-party rule, SIAO scope that ends, own designations and applicant ids (docs/policy.md),
on the demo cast, with the entering source given as the ingest gives it (header gp.source)."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

import pytest
from gateway.codec.avro import decode_single_object
from gateway.policy import Router, ScopeState, load_policy
from gateway.policy.model import Actor, Source
from gateway.policy.router import H_SOURCE, MASKED, RouteResult
from gateway.policy.samples import sample_decision, sample_demande
from gateway.policy.scope import Entry, NamedParties
from gateway.policy.views import schema_leaf_paths

POLICY = load_policy()
DEMANDE, DECISION = "fr.gp.Demande", "fr.gp.Decision"
RENNES_HABITAT, NANTES_LOGEMENT, DDETS, ALS = "200000001", "200000002", "130000035", "824541148"
SIAO_35, SIAO_44, CIA, STAT, APPLICANT = "300000035", "300000044", "CIA-243500139", "STAT-35", "DEM-7K2Q9X4M"
SOURCE_OF = {  # the demo sources that speak for each organisation
    RENNES_HABITAT: "rennes-habitat-erp",
    NANTES_LOGEMENT: "nantes-logement-erp",
    ALS: "action-logement",
    SIAO_35: "siao-35",
    DDETS: "ddets-35",
    CIA: "cia-rennes",
}


def _entered(record: dict[str, Any], saisie: str) -> dict[str, Any]:
    record["provenance"]["saisie"] = saisie
    return record


def _decision(kind: str, *, saisie: str, origine: str | None = None, **sub: Any) -> dict[str, Any]:
    return _entered(sample_decision(kind, origine=origine or saisie, **sub), saisie)


def _inscription_cal(*, saisie: str, commission: str) -> dict[str, Any]:
    record = _decision("PIECES_DEMANDEES", saisie=saisie)
    record["typeEvenement"] = "INSCRIPTION_CAL"
    record["inscriptionCal"] = {
        "dateCommission": date(2026, 3, 1),
        "commission": commission,
        "logement": None,
    }
    return record


def _orientation(siao: str, departement: str, *, en_hebergement: bool = True, day: int = 1) -> dict[str, Any]:
    return _decision(
        "ORIENTATION_SIAO",
        saisie=siao,
        departement=departement,
        enHebergement=en_hebergement,
        dateOrientation=date(2026, 2, day),
    )


class App:
    """One application routed event by event, each entered through the source of its saisie."""

    def __init__(self, router: Router | None = None, demande: dict[str, Any] | None = None) -> None:
        self.router = router or Router(POLICY)
        self.demande = demande or sample_demande()
        self.state: ScopeState | None = None
        self.route(DEMANDE, self.demande)

    def route(self, schema: str, record: dict[str, Any], source: str | None = "") -> RouteResult:
        if source == "":
            source = SOURCE_OF.get(record["provenance"]["saisie"])
        headers = [(H_SOURCE, source.encode())] if source else []
        result = self.router.route(schema, b"k", record, self.state, headers)
        self.state = result.state
        return result

    def demand_again(self) -> RouteResult:
        return self.route(DEMANDE, self.demande)


def _paths(result: RouteResult, actor: str) -> set[str]:
    delivery = result.for_actor(actor)
    assert delivery is not None, f"{actor} got nothing"
    return schema_leaf_paths(delivery.view.avro)


# ---- the named-party rule ---------------------------------------------------------------------


def test_a_nantes_landlords_event_naming_the_rennes_commission_grants_it_nothing() -> None:
    app = App()
    avis = app.route(DECISION, _decision("AVIS_COMMISSION", saisie=NANTES_LOGEMENT, commission=CIA))
    assert CIA not in avis.recipients
    assert app.state is not None and CIA not in app.state.commissions
    assert f"commission|{CIA}" in app.state.unconfirmed  # recorded, grants nothing
    again = app.demand_again()
    assert CIA not in again.recipients  # the whole file (health, violence) stays with it


def test_a_rennes_landlords_cal_inscription_at_the_rennes_cia_gives_it_the_application() -> None:
    app = App()
    app.route(DECISION, _inscription_cal(saisie=RENNES_HABITAT, commission=CIA))
    again = app.demand_again()
    assert again.rules[CIA] == "commission:linked"
    assert "handicap.etat" in _paths(again, CIA)


def test_the_named_party_confirming_the_link_makes_it_effective() -> None:
    app = App()
    app.route(DECISION, _decision("AVIS_COMMISSION", saisie=NANTES_LOGEMENT, commission=CIA))
    assert CIA not in app.demand_again().recipients
    # the commission's own secretariat enters an event on the application: the link is confirmed
    app.route(DECISION, _decision("PIECES_DEMANDEES", saisie=CIA))
    assert app.state is not None and app.state.unconfirmed == ()
    assert app.demand_again().rules[CIA] == "commission:linked"


def test_an_event_of_another_application_does_not_confirm_a_link() -> None:
    app = App()
    app.route(DECISION, _decision("AVIS_COMMISSION", saisie=NANTES_LOGEMENT, commission=CIA))
    other = App(demande=sample_demande(num_unique="035260100000000002"))
    other.route(DECISION, _decision("PIECES_DEMANDEES", saisie=CIA))
    assert CIA not in app.demand_again().recipients


def test_a_trusted_relation_admits_the_named_party() -> None:
    trusted = dataclasses.replace(POLICY, trusted=frozenset({(NANTES_LOGEMENT, CIA)}))
    app = App(Router(trusted))
    app.route(DECISION, _decision("AVIS_COMMISSION", saisie=NANTES_LOGEMENT, commission=CIA))
    assert app.demand_again().rules[CIA] == "commission:linked"


def test_a_source_that_speaks_for_the_named_party_admits_it() -> None:
    spta = Source(id="spta-ouest", formats=["cdc-json"], speaks_for=[NANTES_LOGEMENT, CIA])
    policy = dataclasses.replace(POLICY, sources={**POLICY.sources, spta.id: spta})
    app = App(Router(policy))
    avis = _decision("AVIS_COMMISSION", saisie=NANTES_LOGEMENT, commission=CIA)
    app.route(DECISION, avis, source="spta-ouest")
    assert app.demand_again().rules[CIA] == "commission:linked"
    # the same event from the landlord's own ERP (which does not speak for the CIA) would not
    plain = App(Router(policy))
    plain.route(DECISION, avis, source="nantes-logement-erp")
    assert CIA not in plain.demand_again().recipients


def test_a_causer_outside_the_entering_organisations_territory_does_not_see_the_event() -> None:
    app = App()
    # Rennes Habitat's ERP names Nantes Logement as the organisation that caused a CAL decision
    cal = app.route(DECISION, _decision("DECISION_CAL", saisie=RENNES_HABITAT, origine=NANTES_LOGEMENT))
    assert NANTES_LOGEMENT not in cal.recipients
    # Nantes Logement entering its own decision is its causer
    own = app.route(DECISION, _decision("DECISION_CAL", saisie=NANTES_LOGEMENT, origine=NANTES_LOGEMENT))
    assert own.rules[NANTES_LOGEMENT] == "causer"


def test_an_event_naming_an_applicant_as_origine_gives_the_applicant_nothing() -> None:
    # another household's application (Nantes): the demo applicant is not its applicant
    app = App(demande=sample_demande(num_unique="044260100000000001", communes=("44109",)))
    decision = _decision("DECISION_CAL", saisie=NANTES_LOGEMENT, origine=APPLICANT)
    decision["numUnique"] = "044260100000000001"
    result = app.route(DECISION, decision)
    assert APPLICANT not in result.recipients
    # not even when the source claims to speak for the applicant
    rogue = Source(id="rogue-erp", formats=["cdc-json"], speaks_for=[NANTES_LOGEMENT, APPLICANT])
    policy = dataclasses.replace(POLICY, sources={**POLICY.sources, rogue.id: rogue})
    app2 = App(Router(policy), demande=sample_demande(num_unique="044260100000000001", communes=("44109",)))
    assert APPLICANT not in app2.route(DECISION, decision, source="rogue-erp").recipients


def test_the_applicant_still_receives_its_own_application() -> None:
    app = App()
    result = app.route(DECISION, _decision("DECISION_CAL", saisie=RENNES_HABITAT))
    assert result.rules[APPLICANT] == "own_application"


def test_guichet_codes_resolve_to_their_organisation() -> None:
    parties = NamedParties(POLICY)
    assert parties.entering(Entry("rennes-habitat-erp", "G3501")) == RENNES_HABITAT
    assert parties.admits(Entry(None, "G3501"), CIA)  # Rennes Habitat (35) and the CIA (35238) overlap
    assert not parties.admits(Entry(None, "G4401"), CIA)
    assert not parties.admits(Entry(None, "unknown"), CIA)


# ---- SIAO scope that ends -----------------------------------------------------------------------


def test_siao_hebergement_scope_ends_when_the_household_moves_to_another_departement() -> None:
    app = App()
    app.route(DECISION, _orientation(SIAO_44, "35", day=1))  # SIAO 44 orients a household housed in 35
    assert app.demand_again().rules[SIAO_35] == "siao:hebergement"
    app.route(DECISION, _orientation(SIAO_44, "44", day=2))  # now in hébergement in 44
    again = app.demand_again()
    assert SIAO_35 not in again.recipients
    assert again.rules[SIAO_44] == "siao:linked"


def test_siao_hebergement_scope_ends_when_the_household_leaves_hebergement() -> None:
    app = App()
    app.route(DECISION, _orientation(SIAO_44, "35", day=1))
    app.route(DECISION, _orientation(SIAO_44, "35", en_hebergement=False, day=2))
    assert SIAO_35 not in app.demand_again().recipients


def test_an_older_orientation_routed_late_does_not_say_where_the_household_is_now() -> None:
    app = App()
    app.route(DECISION, _orientation(SIAO_44, "44", day=5))
    app.route(DECISION, _orientation(SIAO_44, "35", day=1))  # older, arrives late
    assert SIAO_35 not in app.demand_again().recipients


def test_the_siao_that_referred_the_application_stays_linked() -> None:
    app = App()
    app.route(DECISION, _orientation(SIAO_35, "35", day=1))
    app.route(DECISION, _orientation(SIAO_44, "44", day=2))
    assert app.demand_again().rules[SIAO_35] == "siao:linked"


# ---- own designations ---------------------------------------------------------------------------


def _logement(rpls: str) -> dict[str, Any]:
    return {**sample_decision("DESIGNATION")["designation"]["logement"], "rpls": rpls}


def test_another_reservataires_designation_is_delivered_without_its_designation_block() -> None:
    app = App()
    app.route(DECISION, _decision("DESIGNATION", saisie=ALS, logement=_logement("RPLS-ALS")))
    prefet = _decision("DESIGNATION", saisie=DDETS, contingent="PPRIOR", logement=_logement("RPLS-PREF"))
    result = app.route(DECISION, prefet)
    paths = _paths(result, ALS)
    assert "typeEvenement" in paths
    assert not any(p.startswith("designation") for p in paths)  # contingent, dwelling, rent withheld
    own = app.route(DECISION, _decision("DESIGNATION", saisie=ALS, logement=_logement("RPLS-ALS")))
    assert "designation.contingent" in _paths(own, ALS)


def test_cal_events_on_a_dwelling_another_reservataire_designated_are_not_its_own() -> None:
    app = App()
    app.route(DECISION, _decision("DESIGNATION", saisie=ALS, logement=_logement("RPLS-ALS")))
    app.route(DECISION, _decision("DESIGNATION", saisie=DDETS, logement=_logement("RPLS-PREF")))
    theirs = app.route(
        DECISION, _decision("DECISION_CAL", saisie=RENNES_HABITAT, logement=_logement("RPLS-PREF"))
    )
    assert not any(p.startswith("decisionCal") for p in _paths(theirs, ALS))
    mine = app.route(
        DECISION, _decision("DECISION_CAL", saisie=RENNES_HABITAT, logement=_logement("RPLS-ALS"))
    )
    assert "decisionCal.rang" in _paths(mine, ALS)


def test_an_unadmitted_designation_gives_the_reservataire_no_traitement() -> None:
    # a Rennes landlord naming a réservataire whose reservations are elsewhere: recorded, not granted
    far = Actor(
        id="999000001", role="reservataire", name="Far", contingent="COLACT", reservations={"13055": 5}
    )
    policy = dataclasses.replace(POLICY, actors={**POLICY.actors, far.id: far})
    app = App(Router(policy))
    app.route(
        DECISION, _decision("DESIGNATION", saisie=RENNES_HABITAT, origine=RENNES_HABITAT, designataire=far.id)
    )
    assert app.state is not None and far.id not in app.state.designataires
    assert f"designataire|{far.id}" in app.state.unconfirmed


# ---- applicant ids and statistique ----------------------------------------------------------------


def test_an_applicant_id_that_carries_the_numero_unique_is_refused() -> None:
    with pytest.raises(ValueError, match="opaque"):
        Actor(id="DEMO-035260100000000001", role="demandeur", name="x", numUnique="035260100000000001")
    Actor(id="DEM-7K2Q9X4M", role="demandeur", name="x", numUnique="035260100000000001")


def test_statistique_gets_no_applicant_id_as_origine() -> None:
    app = App()
    result = app.route(DECISION, _decision("DECISION_CAL", saisie=APPLICANT, origine=APPLICANT), source=None)
    stat = result.for_actor(STAT)
    assert stat is not None
    codec = stat.view.codec
    _, out = decode_single_object(stat.value, {codec.fingerprint: codec})
    assert out["provenance"]["origine"] == MASKED and out["provenance"]["saisie"] == MASKED
    bailleur = app.route(DECISION, _decision("DECISION_CAL", saisie=RENNES_HABITAT)).for_actor(STAT)
    assert bailleur is not None
    _, out = decode_single_object(bailleur.value, {codec.fingerprint: codec})
    assert out["provenance"]["origine"] == RENNES_HABITAT  # an organisation's code is not personal


def test_an_orientation_whose_siao_is_not_admitted_gives_no_hebergement_scope() -> None:
    app = App()
    # Nantes Logement's ERP (44) enters an orientation naming SIAO 35 and hébergement in 35
    spoof = _orientation(SIAO_35, "35")
    spoof["provenance"]["saisie"] = NANTES_LOGEMENT
    app.route(DECISION, spoof)
    assert SIAO_35 not in app.demand_again().recipients


def _pieces_with_orientation(
    *, saisie: str, siao: str, day: int, en_hebergement: bool, departement: str = "35"
) -> dict[str, Any]:
    """A PIECES_DEMANDEES carrying an orientation block, as a property test generated it."""
    record = _decision("PIECES_DEMANDEES", saisie=saisie, origine=RENNES_HABITAT)
    record["orientation"] = {
        "siao": siao,
        "dateOrientation": date(2020, 1, day),
        "enHebergement": en_hebergement,
        "departement": departement,
        "structure": None,
    }
    return record


def test_a_later_orientation_not_admitted_still_ends_hebergement_scope() -> None:
    # the property test's falsifying example: the later orientation (entered by no known
    # organisation) says the household left hébergement; an older one, entered by Rennes Habitat
    # and naming it, said it was in hébergement in 35 and is routed after it
    app = App()
    app.route(DECISION, _pieces_with_orientation(saisie="", siao=RENNES_HABITAT, day=2, en_hebergement=False))
    late = app.route(
        DECISION, _pieces_with_orientation(saisie="G3501", siao=RENNES_HABITAT, day=1, en_hebergement=True)
    )
    assert SIAO_35 not in late.recipients
    assert SIAO_35 not in app.demand_again().recipients


def test_a_later_orientation_not_admitted_ends_hebergement_scope_but_opens_none() -> None:
    app = App()
    app.route(DECISION, _orientation(SIAO_44, "35", day=1))  # SIAO 44 orients a household housed in 35
    assert app.demand_again().rules[SIAO_35] == "siao:hebergement"
    # Nantes Logement (44) enters a later orientation naming SIAO 35, in 44: not admitted
    moved = _orientation(SIAO_35, "44", day=2)
    moved["provenance"]["saisie"] = NANTES_LOGEMENT
    app.route(DECISION, moved)
    assert app.state is not None and app.state.hebergement_depts == ()
    again = app.demand_again()
    assert SIAO_35 not in again.recipients  # the household is no longer known to be housed in 35
    assert again.rules[SIAO_44] == "siao:linked"  # it referred the application, not by hébergement


def test_an_orientation_naming_no_siao_gives_no_hebergement_scope() -> None:
    # Rennes Habitat (a landlord of 35) enters an orientation naming itself as the SIAO: it is
    # admitted (entered for it), but a landlord is no SIAO: the SIAO of 35 learns nothing from it
    app = App()
    named_itself = app.route(
        DECISION, _pieces_with_orientation(saisie="G3501", siao=RENNES_HABITAT, day=1, en_hebergement=True)
    )
    assert SIAO_35 not in named_itself.recipients
    assert app.state is not None and app.state.hebergement_depts == ()
    assert SIAO_35 not in app.demand_again().recipients
    # the same orientation entered by the SIAO of 35 for itself puts it in scope
    app = App()
    app.route(DECISION, _orientation(SIAO_35, "35", day=1))
    assert app.demand_again().rules[SIAO_35] in ("siao:hebergement", "siao:linked")
    assert app.state is not None and app.state.hebergement_depts == ("35",)
