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

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time
from typing import Any

from gateway.signals.rules import Rules
from gateway.signals.state import (
    MAX_CANDIDATES,
    MAX_PENDING,
    AppState,
    Candidate,
    Label,
    LogementState,
    add_months,
    day_of,
    from_ordinal,
)

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

DEMANDE = "fr.gp.Demande"
DECISION = "fr.gp.Decision"
SIGNAL = "fr.gp.Signal"
SYSTEM = "signals"
_NAMESPACE = uuid.UUID("6b1f5d0e-3c1a-4f0e-9a57-5e0c5a9d1a14")
_SUBS = ("delai", "attribueNonLoge", "refus", "saisine", "label", "labelSante", "labelViolences", "aRadier")
_LABEL_FIELDS = ("label", "labelSante", "labelViolences")
_ATTRIBUTIONS = frozenset({"ATTRIBUTION", "ATTRIBUTION_RANG", "ATTRIBUTION_CONDITION_SUSPENSIVE"})
_MAX_EVENT_IDS = 8


@dataclass(frozen=True)
class Context:
    """What the processors read besides the state: the rules, and the actors file's roles."""

    rules: Rules
    actor_roles: Mapping[str, str] = field(default_factory=dict)  # actor id -> role


@dataclass
class Step:
    state: AppState
    signals: list[dict[str, Any]] = field(default_factory=list)
    facts: list[dict[str, Any]] = field(default_factory=list)  # for the dwelling processor, JSON-safe
    replay: list[str] = field(default_factory=list)  # pending Decisions to apply now (base64 Avro)
    rejected: str | None = None  # why the record is dead-lettered (no signal from it)


# ---- signal records -------------------------------------------------------------------------
def _iso(day: int) -> str:
    return from_ordinal(day).isoformat()


def signal_record(
    *,
    num: str,
    type_: str,
    day: int,
    sub_field: str,
    sub: dict[str, Any],
    ctx: Context,
    now: datetime,
    origine: str,
    entrees: tuple[str, ...] | list[str],
    discriminator: str,
    summary: str,
) -> dict[str, Any]:
    """A fr.gp.Signal with its one sub-record set; `signalId` hashes the facts, not the clock."""
    record: dict[str, Any] = {
        "signalId": str(uuid.uuid5(_NAMESPACE, f"{type_}|{num}|{discriminator}")),
        "numUnique": num,
        "typeSignal": type_,
        "dateEffet": from_ordinal(day),
        "provenance": {
            "origine": origine or ctx.rules.file.emetteur,
            "saisie": ctx.rules.file.emetteur,
            "dateEvenement": datetime.combine(from_ordinal(day), time(), UTC),
            "dateSaisie": now,
            "systemeSource": SYSTEM,
            "referenceSource": None,
            "operation": "CREATION",
        },
        "entrees": list(entrees),
        "explication": summary,
    }
    for name in _SUBS:
        record[name] = None
    record[sub_field] = sub
    return record


# ---- application side -------------------------------------------------------------------------
def _departement(commune: str) -> str:
    return commune[:3] if commune.startswith("97") else commune[:2]


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
    dept = _departement(commune) if commune else (num[1:3] if num[:1] == "0" else num[:3])
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


def _label_signal(
    num: str, label: Label, *, statut: str, day: int, ctx: Context, now: datetime, origine: str
) -> dict[str, Any]:
    words = {"DONNE": "donné", "EXPIRE": "arrivé à échéance", "RETIRE": "retiré"}[statut]
    sub = {
        "statut": statut,
        "categorie": label.categorie,
        "organismeLabellisant": label.body,
        "dateLabel": from_ordinal(label.date_label),
        "dateFin": from_ordinal(label.date_fin) if label.date_fin else None,
        "contingentsEligibles": list(label.contingents),
        "explication": (
            f"Label prioritaire ({label.categorie}) de l'organisme {label.body} {words} le {_iso(day)}."
        ),
    }
    return signal_record(
        num=num,
        type_="LABEL_PRIORITAIRE",
        day=day,
        sub_field=label.field,
        sub=sub,
        ctx=ctx,
        now=now,
        origine=origine,
        entrees=[label.event_id] if label.event_id else [],
        discriminator=f"{statut}|{label.ident}|{label.date_label}|{label.date_fin}",
        summary=f"Un label prioritaire de cette demande a changé ({words}) le {_iso(day)}.",
    )


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
                _label_signal(num, old, statut="RETIRE", day=day, ctx=ctx, now=now, origine=origine)
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
            _label_signal(num, label, statut="DONNE", day=label.date_label, ctx=ctx, now=now, origine=origine)
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
    text = f"Refus d'une offre le {_iso(day)} : {total} refus en tout, dont {sans_motif} sans motif. "
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
            summary=f"Un refus d'offre a été enregistré le {_iso(day)}.",
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
        "explication": f"La demande a été soumise à la commission {commission} par {by} le {_iso(day)}.",
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
            summary=f"La demande a été soumise à une commission le {_iso(day)}.",
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


# ---- time-driven rules ------------------------------------------------------------------------
def _delai_due(state: AppState, ctx: Context) -> tuple[int, int, str | None] | None:
    """(due day, months, group) of the délai, or None when it does not apply or is prevented."""
    if "DELAI_ANORMAL_DEPASSE" not in ctx.rules.enabled or not state.created:
        return None
    found = ctx.rules.delai(state.dept, state.commune, state.type_logement)
    if found is None:
        return None
    due = add_months(state.created, found[0])
    if state.first_proposal and state.first_proposal < due:
        return None  # a proposal within the délai
    return due, found[0], found[1]


def _radier_due(state: AppState, ctx: Context) -> tuple[int, int] | None:
    """(due day, renewal date) of the non-renewal rule."""
    if "A_RADIER" not in ctx.rules.enabled or not state.renewed:
        return None
    rule = ctx.rules.file.a_radier
    renewal = add_months(state.renewed, rule.validite_mois)
    return add_months(renewal, rule.tolerance_mois), renewal


def next_due(state: AppState, ctx: Context) -> int | None:
    """The day the next time-driven signal of this application is due (None: none pending)."""
    if not state.known or not state.active:
        return None
    days = []
    delai = _delai_due(state, ctx)
    if delai and state.delai_fired != delai[0]:
        days.append(delai[0])
    radier = _radier_due(state, ctx)
    if radier and state.radier_fired != radier[1]:
        days.append(radier[0])
    if state.irrecevable and not state.irrecevable_fired and "A_RADIER" in ctx.rules.enabled:
        days.append(state.irrecevable + ctx.rules.file.a_radier.irrecevabilite_jours)
    if "LABEL_PRIORITAIRE" in ctx.rules.enabled:
        days += [lb.date_fin for lb in state.labels if lb.date_fin and not lb.expired]
    return min(days) if days else None


def _radier_signal(
    num: str, motif: str, *, ref: int, day: int, state: AppState, ctx: Context, now: datetime
) -> dict[str, Any]:
    if motif == "NON_RENOUVELEE":
        text = (
            f"La demande n'a pas été renouvelée à sa date anniversaire du {_iso(ref)} : elle est à radier "
            "pour non-renouvellement (R441-2-8 e). Ceci est un signal au service d'enregistrement, "
            "pas une radiation."
        )
    else:
        text = (
            f"La CAL a déclaré la demande irrecevable le {_iso(ref)} : elle est à radier un mois après "
            "l'avertissement (R441-2-8 d). Ceci est un signal au service d'enregistrement, pas une radiation."
        )
    return signal_record(
        num=num,
        type_="A_RADIER",
        day=day,
        sub_field="aRadier",
        sub={"motif": motif, "dateReference": from_ordinal(ref), "explication": text},
        ctx=ctx,
        now=now,
        origine=state.origin,
        entrees=state.event_ids[-1:] if motif == "IRRECEVABLE" else [],
        discriminator=f"{motif}|{ref}",
        summary=f"La demande est à radier depuis le {_iso(day)}.",
    )


def tick(
    state: AppState, num: str, today: int, ctx: Context, now: datetime | None = None
) -> tuple[AppState, list[dict[str, Any]]]:
    """Signals due on or before the day `today` (an ordinal) that were not emitted yet."""
    if not state.known or not state.active:
        return state, []
    now = now or datetime.combine(from_ordinal(today), time(), UTC)
    out: list[dict[str, Any]] = []
    delai = _delai_due(state, ctx)
    if delai and today >= delai[0] and state.delai_fired != delai[0]:
        due, months, group = delai
        where = f"le groupe « {group} »" if group else f"le département {state.dept}"
        sub = {
            "departement": state.dept,
            "groupe": group,
            "delaiMois": months,
            "dateDepart": from_ordinal(state.created),
            "explication": (
                f"Aucune proposition de logement depuis le dépôt de la demande le {_iso(state.created)} : "
                f"le délai anormalement long fixé par le préfet pour {where} ({months} mois) est dépassé "
                f"depuis le {_iso(due)}. Le demandeur peut saisir la commission de médiation DALO."
            ),
        }
        out.append(
            signal_record(
                num=num,
                type_="DELAI_ANORMAL_DEPASSE",
                day=due,
                sub_field="delai",
                sub=sub,
                ctx=ctx,
                now=now,
                origine=state.origin,
                entrees=[],
                discriminator=str(due),
                summary=f"Le délai anormalement long est dépassé depuis le {_iso(due)}.",
            )
        )
        state = replace(state, delai_fired=due)
    radier = _radier_due(state, ctx)
    if radier and today >= radier[0] and state.radier_fired != radier[1]:
        out.append(
            _radier_signal(num, "NON_RENOUVELEE", ref=radier[1], day=radier[0], state=state, ctx=ctx, now=now)
        )
        state = replace(state, radier_fired=radier[1])
    if state.irrecevable and not state.irrecevable_fired and "A_RADIER" in ctx.rules.enabled:
        due = state.irrecevable + ctx.rules.file.a_radier.irrecevabilite_jours
        if today >= due:
            out.append(
                _radier_signal(
                    num, "IRRECEVABLE", ref=state.irrecevable, day=due, state=state, ctx=ctx, now=now
                )
            )
            state = replace(state, irrecevable_fired=True)
    if "LABEL_PRIORITAIRE" in ctx.rules.enabled and any(
        lb.date_fin and not lb.expired and today >= lb.date_fin for lb in state.labels
    ):
        labels = []
        for lb in state.labels:
            if lb.date_fin and not lb.expired and today >= lb.date_fin:
                out.append(
                    _label_signal(
                        num, lb, statut="EXPIRE", day=lb.date_fin, ctx=ctx, now=now, origine=lb.body
                    )
                )
                lb = lb._replace(expired=True)  # noqa: PLW2901
            labels.append(lb)
        state = replace(state, labels=tuple(labels))
    return state, out


# ---- dwelling side (ATTRIBUE_NON_LOGE) --------------------------------------------------------
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
    rule = ctx.rules.attribue_non_loge(_departement(commune) if commune else "")
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
            f" Traitement local : {rule.traitement}" + (f" jusqu'au {_iso(end)}." if end else ".")
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
                f"La CAL {c.commission} du {_iso(c.date_cal)} a attribué ce logement à ce ménage au rang "
                f"{c.rang}, sous réserve du refus des candidats classés devant ; le bail a été signé le "
                f"{_iso(lease_day)} par un candidat classé devant.{treatment}"
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
                summary=f"Ménage attribué mais non logé : bail du logement signé le {_iso(lease_day)}.",
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
