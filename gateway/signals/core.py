"""The signal processors (pure): canonical records and the clock in, fr.gp.Signal records out.

- `apply(state, num, schema, record, now, ctx) -> Step`: one canonical record of an application
  (its Demande or one of its Decisions). Returns the new state, the signals that became true, the
  dwelling facts to hand to the dwelling's processor (`apply_logement`), the Decisions kept pending
  to replay once the Demande is known, or a rejection (dead letter, with the reason).
- `tick(state, num, today, ctx) -> (state, signals)`: the time-driven rules (délai anormalement
  long, labels expiring, à radier) on the day `today`; `next_due(state, ctx)` is the day the next
  one is due, for the `DueIndex`.
- `apply_logement(state, fact, now, ctx) -> (state, signals)`: the dwelling side of
  ATTRIBUE_NON_LOGE (ranked CAL decisions, designators, the lease or a RADATT radiation).

Every signal is computed from dated facts only, so the same inputs give the same signals whatever
the order they arrive in and whenever the clock looks (a lease before the CAL decision waits for
it; a signal id is a hash of its facts, so a replayed input yields the same id).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from gateway.signals.logement import apply_logement
from gateway.signals.records import (
    DECISION,
    DEMANDE,
    SIGNAL,
    Context,
    departement_of,
    iso,
    label_signal,
    signal_record,
)
from gateway.signals.state import MAX_PENDING, AppState, Label, day_of, from_ordinal
from gateway.signals.timed import next_due, tick

__all__ = [
    "DECISION",
    "DEMANDE",
    "SIGNAL",
    "Context",
    "Step",
    "apply",
    "apply_logement",
    "dwelling_key",
    "next_due",
    "tick",
]

_LABEL_FIELDS = ("label", "labelSante", "labelViolences")
_ATTRIBUTIONS = frozenset({"ATTRIBUTION", "ATTRIBUTION_RANG", "ATTRIBUTION_CONDITION_SUSPENSIVE"})
_MAX_EVENT_IDS = 8


@dataclass
class Step:
    state: AppState
    signals: list[dict[str, Any]] = field(default_factory=list)
    facts: list[dict[str, Any]] = field(default_factory=list)  # for the dwelling processor, JSON-safe
    replay: list[str] = field(default_factory=list)  # pending Decisions to apply now (base64 Avro)
    rejected: str | None = None  # why the record is dead-lettered (no signal from it)


# ---- application side -------------------------------------------------------------------------
def _own(state: AppState, event_id: str | None) -> AppState:
    if not event_id or event_id in state.event_ids:
        return state
    return replace(state, event_ids=(*state.event_ids, event_id)[-_MAX_EVENT_IDS:])


def _on_demande(state: AppState, record: Mapping[str, Any]) -> AppState:
    lr = record.get("logementRecherche") or {}
    communes = lr.get("communes") or []
    types = lr.get("typesLogement") or []
    commune = communes[0] if communes else ""
    num = record.get("numUnique") or ""
    dept = departement_of(commune) if commune else (num[1:3] if num[:1] == "0" else num[:3])
    created = day_of(record.get("dateCreationDemande"))
    renewed = max(created, day_of(record.get("dateDernierRenouvellement")), state.renewed)
    return replace(
        state,
        known=True,
        active=record.get("statut") == "ACTIVE",
        dept=dept,
        commune=commune,
        type_logement=types[0] if types else "",
        origin=str(record.get("numGuichet") or state.origin),
        created=created,
        renewed=renewed,
    )


def dwelling_key(logement: Mapping[str, Any] | None) -> str | None:
    """RPLS id, else bailleur SIREN + the bailleur's reference; None when neither identifies it."""
    if not logement:
        return None
    if logement.get("rpls"):
        return f"rpls:{logement['rpls']}"
    if logement.get("sirenBailleur") and logement.get("referenceBailleur"):
        return f"bail:{logement['sirenBailleur']}:{logement['referenceBailleur']}"
    return None


def _small_logement(logement: Mapping[str, Any]) -> dict[str, Any]:
    """The identifying fields of a dwelling (no address, rent or surface: JSON-safe, and enough)."""
    return {
        k: logement.get(k) for k in ("rpls", "referenceBailleur", "sirenBailleur", "commune", "typeLogement")
    }


def _fact(kind: str, logement: Mapping[str, Any] | None, num: str, **data: Any) -> list[dict[str, Any]]:
    key = dwelling_key(logement)
    if key is None or logement is None:
        return []
    return [{"kind": kind, "key": key, "num": num, "logement": _small_logement(logement), **data}]


def _on_label(
    state: AppState,
    num: str,
    record: Mapping[str, Any],
    *,
    name: str,
    ctx: Context,
    now: datetime,
    step: Step,
) -> AppState:
    raw = record[name]
    prov = record.get("provenance") or {}
    label = Label(
        name,
        str(raw.get("categorie")),
        str(raw.get("organismeLabellisant")),
        day_of(raw.get("dateLabel")),
        day_of(raw.get("dateFin")),
        tuple(raw.get("contingentsEligibles") or ()),
        False,
        str(record.get("eventId") or ""),
    )
    others = tuple(x for x in state.labels if x.ident != label.ident)
    old = next((x for x in state.labels if x.ident == label.ident), None)
    origine = str(prov.get("origine") or label.body)
    if prov.get("operation") == "SUPPRESSION":
        if old is not None and "LABEL_PRIORITAIRE" in ctx.rules.enabled:
            day = max(day_of(prov.get("dateEvenement")), old.date_label)
            step.signals.append(
                label_signal(num, old, statut="RETIRE", day=day, ctx=ctx, now=now, origine=origine)
            )
        return replace(state, labels=others)
    if old is not None and (old.date_label, old.date_fin, old.contingents) == (
        label.date_label,
        label.date_fin,
        label.contingents,
    ):
        return state  # the same label again (a replayed input): nothing new
    if "LABEL_PRIORITAIRE" in ctx.rules.enabled:
        step.signals.append(
            label_signal(num, label, statut="DONNE", day=label.date_label, ctx=ctx, now=now, origine=origine)
        )
    return replace(state, labels=(*others, label))


def _on_refus(
    state: AppState, num: str, record: Mapping[str, Any], *, ctx: Context, now: datetime, step: Step
) -> AppState:
    eid = str(record.get("eventId") or "")
    if any(e == eid for e, _ in state.refusals):
        return state  # counted already
    refus = record["refus"]
    refusals = (*state.refusals, (eid, bool(refus.get("motif"))))
    state = replace(state, refusals=refusals)
    if "REFUS_OFFRE" not in ctx.rules.enabled:
        return state
    rule = ctx.rules.refus(state.dept)
    total = len(refusals)
    sans_motif = sum(1 for _, motif in refusals if not motif)
    counted = total if rule.compter == "tous" else sans_motif
    consequence = rule.consequence if rule.consequence and counted >= rule.seuil else None
    day = day_of(refus.get("dateRefus"))
    text = f"Refus d'une offre le {iso(day)} : {total} refus en tout, dont {sans_motif} sans motif. "
    text += (
        f"Conséquence selon la règle locale : {consequence}."
        if consequence
        else "Ce refus n'a pas de conséquence selon la règle locale."
    )
    sub = {
        "dateRefus": from_ordinal(day),
        "nombreRefus": total,
        "nombreRefusSansMotif": sans_motif,
        "consequence": consequence,
        "explication": text,
    }
    step.signals.append(
        signal_record(
            num=num,
            type_="REFUS_OFFRE",
            day=day,
            sub_field="refus",
            sub=sub,
            ctx=ctx,
            now=now,
            origine=str((record.get("provenance") or {}).get("origine") or ""),
            entrees=[eid],
            discriminator=eid,
            summary=f"Un refus d'offre a été enregistré le {iso(day)}.",
        )
    )
    return state


def _on_saisine(
    state: AppState, num: str, record: Mapping[str, Any], *, ctx: Context, now: datetime, step: Step
) -> AppState:
    saisine = record["saisine"]
    by = str((record.get("provenance") or {}).get("origine") or "")
    commission = str(saisine.get("commission") or "")
    role = ctx.actor_roles.get(by)
    if role is None:
        step.rejected = "saisine.provenance.origine: not an actor of the actors file"
        return state
    if role not in ctx.rules.file.saisine.roles_autorises:
        step.rejected = f"saisine: role {role!r} may not submit an application to a commission (rules file)"
        return state
    if ctx.actor_roles.get(commission) != "commission":
        step.rejected = "saisine.commission: not a commission of the actors file"
        return state
    if "SAISINE_COMMISSION" not in ctx.rules.enabled:
        return state
    day = day_of(saisine.get("dateSaisine"))
    sub = {
        "typeCommission": saisine.get("typeCommission"),
        "commission": commission,
        "dateSaisine": from_ordinal(day),
        "saisiPar": by,
        "explication": f"La demande a été soumise à la commission {commission} par {by} le {iso(day)}.",
    }
    eid = str(record.get("eventId") or "")
    step.signals.append(
        signal_record(
            num=num,
            type_="SAISINE_COMMISSION",
            day=day,
            sub_field="saisine",
            sub=sub,
            ctx=ctx,
            now=now,
            origine=by,
            entrees=[eid],
            discriminator=eid or f"{commission}|{day}",
            summary=f"La demande a été soumise à une commission le {iso(day)}.",
        )
    )
    return state


def _on_decision(
    state: AppState, num: str, record: Mapping[str, Any], *, ctx: Context, now: datetime, step: Step
) -> AppState:
    kind = record.get("typeEvenement")
    prov = record.get("provenance") or {}
    when = day_of(prov.get("dateEvenement"))
    eid = str(record.get("eventId") or "")
    if kind == "DESIGNATION" and record.get("designation"):
        d = record["designation"]
        first = min(state.first_proposal, when) if state.first_proposal else when
        state = _own(replace(state, first_proposal=first), eid)
        step.facts += _fact(
            "designation", d.get("logement"), num, designataire=str(d.get("designataire") or "")
        )
    elif kind == "DECISION_CAL" and record.get("decisionCal"):
        cal = record["decisionCal"]
        day = day_of(cal.get("dateCommission"))
        if cal.get("decision") == "IRRECEVABILITE":
            state = replace(state, irrecevable=day, irrecevable_fired=False)
        elif cal.get("decision") in _ATTRIBUTIONS:
            step.facts += _fact(
                "cal",
                cal.get("logement"),
                num,
                rang=cal.get("rang"),
                date=day,
                commission=str(cal.get("commission") or ""),
                eventId=eid,
            )
        state = _own(state, eid)
    elif kind == "REFUS_DEMANDEUR" and record.get("refus"):
        state = _own(_on_refus(state, num, record, ctx=ctx, now=now, step=step), eid)
    elif kind == "BAIL_SIGNE" and record.get("bail"):
        bail = record["bail"]
        step.facts += _fact(
            "bail",
            bail.get("logement"),
            num,
            date=day_of(bail.get("dateSignature")),
            origine=str(prov.get("origine") or ""),
        )
    elif kind == "RADIATION" and record.get("radiation"):
        rad = record["radiation"]
        state = replace(state, active=False)
        att = rad.get("attribution")
        if rad.get("motif") == "RADATT" and att:
            step.facts += _fact(
                "bail",
                att.get("logement"),
                num,
                date=day_of(att.get("dateSignatureBail")),
                origine=str(att.get("siren") or prov.get("origine") or ""),
            )
    elif kind == "DERADIATION":
        state = replace(state, active=True)
    elif kind == "RENOUVELLEMENT":
        state = replace(state, renewed=max(state.renewed, when))
    elif kind == "LABEL_PRIORITAIRE":
        for name in _LABEL_FIELDS:
            if record.get(name):
                state = _on_label(state, num, record, name=name, ctx=ctx, now=now, step=step)
    elif kind == "SAISINE_COMMISSION" and record.get("saisine"):
        state = _on_saisine(state, num, record, ctx=ctx, now=now, step=step)
    return state


def apply(  # noqa: PLR0917 - the documented signature apply(state, num, schema, record, now, ctx)
    state: AppState | None,
    num: str,
    schema: str,
    record: Mapping[str, Any],
    now: datetime,
    ctx: Context,
    *,
    packed: str | None = None,
) -> Step:
    """The state after `record` and what it makes true. `packed`: the record's own bytes (base64
    Avro), kept in the state when it is a Decision of an application whose Demande is not known yet."""
    state = state or AppState()
    if schema == DEMANDE:
        new = _on_demande(state, record)
        step = Step(replace(new, pending=()))
        step.replay = list(state.pending)
        return step
    if schema != DECISION:
        return Step(state)
    if not state.known:
        if packed is None:
            return Step(state, rejected="decision for an application whose Demande is unknown")
        if len(state.pending) >= MAX_PENDING:
            return Step(state, rejected=f"more than {MAX_PENDING} events before their application's Demande")
        if packed in state.pending:
            return Step(state)
        return Step(replace(state, pending=(*state.pending, packed)))
    step = Step(state)
    step.state = _on_decision(state, num, record, ctx=ctx, now=now, step=step)
    if step.rejected:
        step.state = state
        step.signals.clear()
        step.facts.clear()
    return step
