"""The time-driven rules (pure): délai anormalement long, labels reaching their end, à radier.

`tick(state, num, today, ctx)` emits what is due on or before the day `today` and was not emitted
yet; `next_due(state, ctx)` is the day the next one is due (the `DueIndex` of the sweep).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time
from typing import Any

from gateway.signals.records import Context, iso, label_signal, signal_record
from gateway.signals.state import AppState, add_months, from_ordinal

__all__ = ["next_due", "tick"]


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
            f"La demande n'a pas été renouvelée à sa date anniversaire du {iso(ref)} : elle est à radier "
            "pour non-renouvellement (R441-2-8 e). Ceci est un signal au service d'enregistrement, "
            "pas une radiation."
        )
    else:
        text = (
            f"La CAL a déclaré la demande irrecevable le {iso(ref)} : elle est à radier un mois après "
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
        summary=f"La demande est à radier depuis le {iso(day)}.",
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
                f"Aucune proposition de logement depuis le dépôt de la demande le {iso(state.created)} : "
                f"le délai anormalement long fixé par le préfet pour {where} ({months} mois) est dépassé "
                f"depuis le {iso(due)}. Le demandeur peut saisir la commission de médiation DALO."
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
                summary=f"Le délai anormalement long est dépassé depuis le {iso(due)}.",
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
                    label_signal(num, lb, statut="EXPIRE", day=lb.date_fin, ctx=ctx, now=now, origine=lb.body)
                )
                lb = lb._replace(expired=True)  # noqa: PLW2901
            labels.append(lb)
        state = replace(state, labels=tuple(labels))
    return state, out
