"""Each signal rule on its boundaries, through the pure processors (no broker)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from gateway.codec.avro import load_schemas
from gateway.signals.core import next_due
from gateway.signals.engine import Engine
from gateway.signals.samples import LOGEMENT, NOW, bail, cal, decision, demande, engine, of_type
from gateway.signals.state import AppState, LogementState, add_months

DEMANDE, DECISION = "fr.gp.Demande", "fr.gp.Decision"
VENDEE_COAST, VENDEE_INLAND = "85194", "85191"


def _refus(num: str, day: date, motif: str | None) -> dict[str, Any]:
    """A REFUS_DEMANDEUR of the applicant on `day` (`motif`: the free text, or none)."""
    return decision(
        "REFUS_DEMANDEUR", num, when=day, refus={"dateRefus": day, "motif": motif, "logement": None}
    )


def _label(num: str, **sub: Any) -> dict[str, Any]:
    """A LABEL_PRIORITAIRE given on 15 January 2026 (`sub`: its other fields)."""
    return decision("LABEL_PRIORITAIRE", num, when=date(2026, 1, 15), dateLabel=date(2026, 1, 15), **sub)


def _known(*nums: str, **demande_args: Any) -> Engine:
    """An engine that knows these applications (one Demande each, `demande_args` for all)."""
    e = engine()
    for num in nums:
        e.feed(DEMANDE, num, demande(num, **demande_args), NOW)
    return e


def _valid(signals: list[dict[str, object]]) -> None:
    codec = load_schemas().codec("fr.gp.Signal")
    for s in signals:
        codec.encode_checked(s)  # every signal fits the contract


# ---- DELAI_ANORMAL_DEPASSE ----------------------------------------------------------------------
@pytest.mark.parametrize(("commune", "months"), [(VENDEE_COAST, 24), (VENDEE_INLAND, 15)])
def test_delai_fires_on_the_day_of_the_delai_not_the_day_before(commune: str, months: int) -> None:
    e = engine()
    created = date(2024, 1, 31)
    e.feed(
        DEMANDE,
        "085240100000000001",
        demande("085240100000000001", commune, created=created, renewed=date(2026, 1, 10)),
        NOW,
    )
    due = add_months(created.toordinal(), months)
    assert of_type(e.advance(due - 1), "DELAI_ANORMAL_DEPASSE") == []
    fired = of_type(e.advance(due), "DELAI_ANORMAL_DEPASSE")
    assert len(fired) == 1
    signal = fired[0]
    assert signal["dateEffet"].toordinal() == due
    assert signal["delai"]["delaiMois"] == months
    assert signal["delai"]["groupe"] == ("littoral" if commune == VENDEE_COAST else None)
    assert e.advance(due + 40) == []  # once
    _valid(fired)


@pytest.mark.parametrize(("proposal", "fired"), [(date(2025, 3, 31), 0), (date(2025, 4, 1), 1)])
def test_a_proposal_within_the_delai_prevents_it_one_on_the_due_day_is_too_late(
    proposal: date, fired: int
) -> None:
    e = engine()
    num = "085240100000000002"  # inland Vendée, filed 1 January 2024: 15 months, due 1 April 2025
    e.feed(DEMANDE, num, demande(num, VENDEE_INLAND, created=date(2024, 1, 1), renewed=date(2026, 1, 1)), NOW)
    e.feed(DECISION, num, decision("DESIGNATION", num, when=proposal), NOW)
    assert len(of_type(e.advance(date(2026, 6, 1).toordinal()), "DELAI_ANORMAL_DEPASSE")) == fired


def test_delai_does_not_fire_where_it_is_not_fixed() -> None:
    num = "044240100000000003"
    e = _known(num, "44109", created=date(2020, 1, 1), renewed=date(2026, 1, 1))
    assert of_type(e.advance(date(2026, 6, 1).toordinal()), "DELAI_ANORMAL_DEPASSE") == []


# ---- ATTRIBUE_NON_LOGE -------------------------------------------------------------------------
def _two_candidates(rank_a: int | None, rank_b: int | None) -> tuple[list[dict[str, object]], object]:
    e = engine()
    out: list[dict[str, object]] = []
    for num in ("044250100000000001", "044250100000000002"):
        e.feed(DEMANDE, num, demande(num), NOW)
    e.feed(
        DECISION,
        "044250100000000002",
        decision(
            "DESIGNATION",
            "044250100000000002",
            when=date(2026, 9, 25),
            origine="824541148",
            designataire="824541148",
            logement=LOGEMENT,
        ),
        NOW,
    )
    out += e.feed(DECISION, "044250100000000001", cal("044250100000000001", rank_a), NOW).signals
    out += e.feed(DECISION, "044250100000000002", cal("044250100000000002", rank_b), NOW).signals
    out += e.feed(DECISION, "044250100000000001", bail("044250100000000001"), NOW).signals
    return out, e


def test_lease_by_the_first_ranked_flags_the_second() -> None:
    signals, _ = _two_candidates(1, 2)
    flagged = of_type(signals, "ATTRIBUE_NON_LOGE")
    assert [s["numUnique"] for s in flagged] == ["044250100000000002"]
    detail = flagged[0]["attribueNonLoge"]
    assert detail["rang"] == 2 and detail["designataire"] == "824541148"
    assert detail["traitement"] and detail["finTraitement"] == date(2027, 4, 20)
    assert "044250100000000001" not in str(flagged[0])  # never names the other household
    assert flagged[0]["provenance"]["origine"] == "200000002"  # the bailleur
    _valid(flagged)


# equal ranks; the signer ranked 2nd (the 1st refused, not "non logé"); a candidate without a rank
@pytest.mark.parametrize(("rank_signer", "rank_other"), [(1, 1), (2, 1), (1, None)])
def test_a_lease_flags_only_a_candidate_ranked_behind_the_signer(
    rank_signer: int | None, rank_other: int | None
) -> None:
    signals, _ = _two_candidates(rank_signer, rank_other)
    assert of_type(signals, "ATTRIBUE_NON_LOGE") == []


def test_lease_before_the_cal_decision_waits_for_it_and_radatt_counts_as_the_lease() -> None:
    a, b = "044250100000000011", "044250100000000012"
    e = _known(a, b)
    radatt = decision("RADIATION", a, when=date(2026, 10, 20))
    radatt["radiation"]["attribution"]["logement"] = {
        **radatt["radiation"]["attribution"]["logement"],
        "rpls": None,
        "sirenBailleur": "200000002",
        "referenceBailleur": "NL-7",
    }
    radatt["radiation"]["attribution"]["dateSignatureBail"] = date(2026, 10, 20)
    logement = {**radatt["radiation"]["attribution"]["logement"]}
    assert e.feed(DECISION, a, radatt, NOW).signals == []  # the lease, before any CAL decision: pending
    assert e.feed(DECISION, b, cal(b, 2, logement=logement), NOW).signals == []  # signer's rank unknown
    got = e.feed(DECISION, a, cal(a, 1, logement=logement), NOW).signals  # now it is known
    assert [s["numUnique"] for s in of_type(got, "ATTRIBUE_NON_LOGE")] == [b]
    # the same lease again (BAIL_SIGNE after the RADATT) does not flag again
    again = e.feed(DECISION, a, bail(a, logement=logement), NOW).signals
    assert of_type(again, "ATTRIBUE_NON_LOGE") == []


def test_a_lease_of_another_round_flags_nobody() -> None:
    a, b = "044250100000000021", "044250100000000022"
    e = _known(a, b)
    e.feed(DECISION, b, cal(b, 2, day=date(2026, 3, 1)), NOW)  # an earlier CAL on the same dwelling
    e.feed(DECISION, a, cal(a, 1, day=date(2026, 10, 8)), NOW)
    assert of_type(e.feed(DECISION, a, bail(a), NOW).signals, "ATTRIBUE_NON_LOGE") == []


# ---- REFUS_OFFRE ----------------------------------------------------------------------------------
def test_refusals_are_counted_and_the_consequence_applies_from_the_threshold() -> None:
    num = "044250100000000031"
    e = _known(num)
    first = e.feed(DECISION, num, _refus(num, date(2026, 5, 4), "trop loin"), NOW).signals
    assert first[0]["refus"]["consequence"] is None and first[0]["refus"]["nombreRefus"] == 1
    assert "pas de conséquence" in first[0]["refus"]["explication"]
    second = e.feed(DECISION, num, _refus(num, date(2026, 9, 10), None), NOW).signals
    detail = second[0]["refus"]
    assert (detail["nombreRefus"], detail["nombreRefusSansMotif"]) == (2, 1)
    assert detail["consequence"] == "perte de 10 points de cotation pendant un an"
    assert "trop loin" not in str(second)  # the free-text motif stays in the Decision
    # the same refusal again (an input replayed) is not counted twice
    assert e.feed(DECISION, num, _refus(num, date(2026, 9, 10), None), NOW).signals == []
    _valid(first + second)


def test_refusals_without_motif_only_when_the_rule_says_so() -> None:
    e = engine(refus_offre={"seuil": 1, "compter": "sans_motif", "consequence": "label retiré"})
    num = "044250100000000032"
    e.feed(DEMANDE, num, demande(num), NOW)
    with_motif = e.feed(DECISION, num, _refus(num, date(2026, 5, 4), "raison"), NOW).signals
    assert with_motif[0]["refus"]["consequence"] is None


# ---- LABEL_PRIORITAIRE ---------------------------------------------------------------------------
def test_label_given_then_expired_on_its_end_date_and_withdrawn() -> None:
    num = "035250100000000041"
    e = _known(num, "35238")
    given = e.feed(
        DECISION,
        num,
        _label(num, origine="300000035", dateFin=date(2026, 7, 15), contingentsEligibles=["PPRIOR"]),
        NOW,
    ).signals
    assert [s["label"]["statut"] for s in given] == ["DONNE"]
    assert e.advance(date(2026, 7, 14).toordinal()) == []
    expired = of_type(e.advance(date(2026, 7, 15).toordinal()), "LABEL_PRIORITAIRE")
    assert [s["label"]["statut"] for s in expired] == ["EXPIRE"]
    withdrawal = decision(
        "LABEL_PRIORITAIRE",
        num,
        when=date(2026, 8, 1),
        origine="300000035",
        dateLabel=date(2026, 1, 15),
        dateFin=date(2026, 7, 15),
        contingentsEligibles=["PPRIOR"],
    )
    withdrawal["provenance"]["operation"] = "SUPPRESSION"
    withdrawn = e.feed(DECISION, num, withdrawal, NOW).signals
    assert [s["label"]["statut"] for s in withdrawn] == ["RETIRE"]
    _valid(given + expired + withdrawn)


def test_a_violence_label_signal_keeps_its_category_in_the_violence_field() -> None:
    num = "035250100000000042"
    e = _known(num, "35238")
    got = e.feed(DECISION, num, _label(num, origine="300000035", _field="labelViolences"), NOW).signals
    assert got[0]["label"] is None and got[0]["labelViolences"]["categorie"] == "VIOLENCES_FAMILIALES"
    assert "VIOLENCES" not in got[0]["explication"]  # the top level (class identifiant) says no more


# ---- SAISINE_COMMISSION --------------------------------------------------------------------------
def _saisine(num: str, by: str, commission: str = "CIA-243500139") -> dict[str, object]:
    record = decision("AVIS_COMMISSION", num, when=date(2026, 10, 12), origine=by)
    record.update(
        typeEvenement="SAISINE_COMMISSION",
        avis=None,
        saisine={
            "typeCommission": "CIA_COORDINATION",
            "commission": commission,
            "dateSaisine": date(2026, 10, 12),
            "motifs": None,
        },
    )
    return record


def test_saisine_by_an_authorised_actor_signals_and_others_are_dead_lettered() -> None:
    num = "035250100000000051"
    e = _known(num, "35238")
    ok = e.feed(DECISION, num, _saisine(num, "130000035"), NOW)
    assert [s["saisine"]["commission"] for s in ok.signals] == ["CIA-243500139"]
    unknown = e.feed(DECISION, num, _saisine(num, "999999999"), NOW)
    assert unknown.signals == [] and "not an actor" in unknown.rejected[0]
    stat = e.feed(DECISION, num, _saisine(num, "STAT-35"), NOW)
    assert stat.signals == [] and "statistique" in stat.rejected[0]
    not_a_commission = e.feed(DECISION, num, _saisine(num, "130000035", commission="200000001"), NOW)
    assert not_a_commission.signals == [] and "not a commission" in not_a_commission.rejected[0]
    _valid(ok.signals)


def test_a_saisine_names_its_commission_for_the_named_party_rule() -> None:
    from gateway.policy.scope import named_links  # noqa: PLC0415

    assert ("commission", "CIA-243500139") in named_links(_saisine("035250100000000052", "130000035"))


# ---- A_RADIER ------------------------------------------------------------------------------------
def test_not_renewed_is_to_be_radiated_after_the_grace_month_never_radiated() -> None:
    num = "044250100000000061"
    e = _known(num, created=date(2025, 6, 2))
    assert e.advance(date(2026, 7, 1).toordinal()) == []
    got = of_type(e.advance(date(2026, 7, 2).toordinal()), "A_RADIER")
    assert [s["aRadier"]["motif"] for s in got] == ["NON_RENOUVELEE"]
    assert got[0]["aRadier"]["dateReference"] == date(2026, 6, 2)
    assert e.apps[num].active  # a signal, not a radiation
    # renewed afterwards: the next cycle is a year later
    e.feed(DEMANDE, num, demande(num, created=date(2025, 6, 2), renewed=date(2026, 7, 10)), NOW)
    assert of_type(e.advance(date(2027, 8, 9).toordinal()), "A_RADIER") == []
    assert len(of_type(e.advance(date(2027, 8, 10).toordinal()), "A_RADIER")) == 1


def test_irrecevable_is_to_be_radiated_a_month_after_the_cal() -> None:
    num = "044250100000000062"
    e = _known(num, renewed=date(2026, 9, 1))
    e.feed(DECISION, num, cal(num, None, day=date(2026, 9, 10), decision_="IRRECEVABILITE"), NOW)
    assert e.advance(date(2026, 10, 9).toordinal()) == []
    got = e.advance(date(2026, 10, 10).toordinal())
    assert [s["aRadier"]["motif"] for s in got] == ["IRRECEVABLE"]


def test_a_radiated_application_gets_no_time_driven_signal() -> None:
    num = "085200100000000063"
    e = _known(num, VENDEE_INLAND, created=date(2020, 1, 1), statut="RADIEE")
    assert e.advance(date(2026, 1, 1).toordinal()) == []


# ---- out of order and state -----------------------------------------------------------------------
def test_events_before_their_demande_wait_for_it() -> None:
    e = engine()
    num = "044250100000000071"
    early = e.feed(DECISION, num, _refus(num, date(2026, 5, 4), None), NOW)
    assert early.signals == [] and e.pending() == {num: 1}
    later = e.feed(DEMANDE, num, demande(num), NOW)
    assert [s["typeSignal"] for s in later.signals] == ["REFUS_OFFRE"]
    assert e.pending() == {}


def test_too_many_events_before_the_demande_are_dead_lettered() -> None:
    e = engine()
    num = "044250100000000072"
    reasons = []
    for i in range(25):
        fed = e.feed(
            DECISION, num, decision("VISITE_PROPOSEE", num, when=date(2026, 5, 4), event_id=f"v{i}"), NOW
        )
        reasons += fed.rejected
    assert len(reasons) == 5 and "before their application" in reasons[0]


def test_states_round_trip_through_bytes() -> None:
    num = "035250100000000081"
    e = _known(num, "35238")
    e.feed(DECISION, num, _label(num, dateFin=date(2026, 7, 15), contingentsEligibles=["PPRIOR"]), NOW)
    state = e.apps[num]
    assert AppState.from_bytes(state.to_bytes()) == state
    assert next_due(AppState.from_bytes(state.to_bytes()), e.ctx) == date(2026, 7, 15).toordinal()
    _, e2 = _two_candidates(1, 2)
    for dwelling in e2.dwellings.values():  # type: ignore[attr-defined]
        assert LogementState.from_bytes(dwelling.to_bytes()) == dwelling
    with pytest.raises((TypeError, ValueError)):
        AppState.from_bytes(b"{}")
    older = json.loads(state.to_bytes())[:-1]  # written before its last field existed
    assert AppState.from_bytes(json.dumps(older).encode()).event_ids == ()


def test_signal_ids_depend_on_the_facts_not_on_the_clock() -> None:
    from datetime import UTC, datetime  # noqa: PLC0415

    ids = []
    for now in (NOW, datetime(2030, 1, 1, tzinfo=UTC)):
        e = engine()
        num = "044250100000000091"
        e.feed(DEMANDE, num, demande(num), now)
        fed = e.feed(
            DECISION,
            num,
            _refus(num, date(2026, 5, 4), None),
            now,
        )
        ids.append(fed.signals[0]["signalId"])
    assert ids[0] == ids[1]
