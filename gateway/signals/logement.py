"""The dwelling side of ATTRIBUE_NON_LOGE (pure): ranked CAL decisions, designators, the lease.

`apply_logement(state, fact, now, ctx)`: one fact of a dwelling (`designation`, `cal`, `bail`,
from the application side, re-keyed by dwelling) and the signals it makes true. A household is
flagged when the lease (or a RADATT radiation) is signed by a candidate ranked ahead of it in the
same CAL session; equal ranks, candidates ranked ahead of the signer and other sessions never are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from gateway.signals.records import Context, departement_of, iso, signal_record
from gateway.signals.state import MAX_CANDIDATES, Candidate, LogementState, add_months, from_ordinal

__all__ = ["apply_logement"]


def _signer_candidate(state: LogementState) -> Candidate | None:
    """The signer's latest CAL decision on this dwelling dated on or before the lease."""
    if state.lease is None:
        return None
    num, day, _ = state.lease
    mine = [c for c in state.candidates if c.num == num and c.date_cal <= day]
    return max(mine, key=lambda c: c.date_cal) if mine else None


def _resolve(state: LogementState, ctx: Context, now: datetime) -> tuple[LogementState, list[dict[str, Any]]]:
    signer = _signer_candidate(state)
    if signer is None or state.lease is None or "ATTRIBUE_NON_LOGE" not in ctx.rules.enabled:
        return state, []  # a lease whose CAL decision is not known yet waits for it
    rank = signer.rang or 1
    _, lease_day, bailleur = state.lease
    designators = dict(state.designataires)
    commune = str(state.logement.get("commune") or "")
    rule = ctx.rules.attribue_non_loge(departement_of(commune) if commune else "")
    out = []
    fired = list(state.fired)
    for c in state.candidates:
        same_round = (c.date_cal, c.commission) == (signer.date_cal, signer.commission)
        if c.num == signer.num or not same_round or c.rang is None or c.rang <= rank or c.num in fired:
            continue  # equal ranks and candidates ranked ahead of the signer are never flagged
        end = (
            add_months(lease_day, rule.duree_mois)
            if rule.traitement and rule.duree_mois is not None
            else None
        )
        treatment = (
            f" Traitement local : {rule.traitement}" + (f" jusqu'au {iso(end)}." if end else ".")
            if rule.traitement
            else ""
        )
        sub = {
            "commission": c.commission,
            "dateCommission": from_ordinal(c.date_cal),
            "rang": c.rang,
            "logement": {**_empty_logement(), **state.logement},
            "designataire": designators.get(c.num),
            "traitement": rule.traitement,
            "finTraitement": from_ordinal(end) if end else None,
            "explication": (
                f"La CAL {c.commission} du {iso(c.date_cal)} a attribué ce logement à ce ménage au rang "
                f"{c.rang}, sous réserve du refus des candidats classés devant ; le bail a été signé le "
                f"{iso(lease_day)} par un candidat classé devant.{treatment}"
            ),
        }
        out.append(
            signal_record(
                num=c.num,
                type_="ATTRIBUE_NON_LOGE",
                day=lease_day,
                sub_field="attribueNonLoge",
                sub=sub,
                ctx=ctx,
                now=now,
                origine=bailleur or str(state.logement.get("sirenBailleur") or ""),
                entrees=[c.event_id],
                discriminator=f"{c.event_id}|{lease_day}",
                summary=f"Ménage attribué mais non logé : bail du logement signé le {iso(lease_day)}.",
            )
        )
        fired.append(c.num)
    return replace(state, fired=tuple(fired)), out


def _empty_logement() -> dict[str, Any]:
    return {
        "rpls": None,
        "referenceBailleur": None,
        "sirenBailleur": None,
        "adresse": None,
        "commune": None,
        "typeLogement": None,
        "surface": None,
        "loyer": None,
        "zus": None,
    }


def apply_logement(
    state: LogementState | None, fact: Mapping[str, Any], now: datetime, ctx: Context
) -> tuple[LogementState, list[dict[str, Any]]]:
    """The dwelling's state after one fact (designation | cal | bail) and the signals it makes true."""
    state = state or LogementState()
    num = str(fact["num"])
    logement = {**state.logement, **{k: v for k, v in dict(fact.get("logement") or {}).items() if v}}
    state = replace(state, logement=logement)
    kind = fact.get("kind")
    if kind == "designation":
        des = tuple(d for d in state.designataires if d[0] != num)
        designator = (num, str(fact.get("designataire") or ""))
        return replace(state, designataires=(*des, designator)[-MAX_CANDIDATES:]), []
    if kind == "cal":
        rang = fact.get("rang")
        cand = Candidate(
            num,
            int(rang) if rang is not None else None,
            int(fact["date"]),
            str(fact.get("commission") or ""),
            str(fact.get("eventId") or ""),
        )
        others = tuple(c for c in state.candidates if (c.num, c.date_cal) != (cand.num, cand.date_cal))
        state = replace(state, candidates=(*others, cand)[-MAX_CANDIDATES:])
    elif kind == "bail":
        lease = (num, int(fact["date"]), str(fact.get("origine") or ""))
        if state.lease is not None and state.lease[:2] == lease[:2]:
            return state, []  # the same lease again (a lease then its RADATT radiation)
        state = replace(
            state, lease=lease, fired=() if state.lease and state.lease[1] != lease[1] else state.fired
        )
    else:
        return state, []
    return _resolve(state, ctx, now)
