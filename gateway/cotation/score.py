"""Scoring (pure): one application under a compiled grid -> its fr.gp.Cotation record.

A criterion whose data is missing for the application (a null field, an unknown derived value)
scores 0 with the reason naming the missing field paths; reasons never carry a value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from gateway.codec.avro import load_schemas
from gateway.cotation.bindings import CALCUL, LABEL_KINDS, ROOTS
from gateway.cotation.expr import activation, to_cel, to_cel_fields
from gateway.cotation.grid import GROUPS_RECORD, Criterion, Grid
from gateway.cotation.household import months_between

__all__ = ["Scored", "active_labels", "rank", "score", "to_record"]


@dataclass(frozen=True)
class Scored:
    key: str
    total: float
    criteria: tuple[tuple[Criterion, float, str, bool | None], ...]  # criterion, points, reason, met


def active_labels(decisions: Iterable[Mapping[str, Any]], now: date) -> dict[str, list[dict[str, Any]]]:
    """labels.<kind> of an application from its fr.gp.Decision records: labels given on or before
    `now` and not ended."""
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in LABEL_KINDS}
    for decision in decisions:
        for kind, (fieldname, _cls) in LABEL_KINDS.items():
            label = decision.get(fieldname)
            if not label or label.get("dateLabel") is None or label["dateLabel"] > now:
                continue
            end = label.get("dateFin")
            if end is not None and end < now:
                continue
            out[kind].append(dict(label))
    return out


def _missing(data: Mapping[str, Any], steps: Sequence[str]) -> str | None:
    """The path (from the root) of the first null step of `steps`, None when all are present."""
    value: Any = data
    for i, step in enumerate(steps):
        value = value.get(step) if isinstance(value, Mapping) else None
        if value is None:
            return ".".join(steps[1 : i + 1] if steps[0] == "demande" else steps[: i + 1])
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def score(
    grid: Grid,
    demande: Mapping[str, Any],
    now: date,
    labels: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    signaux: Mapping[str, Any] | None = None,
) -> Scored:
    calcul = {name: CALCUL[name][2](demande, now) for name in grid.calcul}
    data = {
        "demande": to_cel_fields(demande, grid.demande_fields),
        "calcul": to_cel(calcul),
        "labels": to_cel({k: list((labels or {}).get(k, ())) for k in LABEL_KINDS}),
        "signaux": to_cel(dict(signaux or {})),
        "now": now.isoformat(),
    }
    # Fast path: one evaluation of every condition, each guarded by "its data is present"; a
    # criterion whose data is missing, or every criterion when the list fails, is evaluated alone.
    missing = {p: _missing(data, p) for p in grid.prechecks}
    oks = [not any(missing[p] for p in c.precheck) for c in grid.criteria]
    data["gp_ok"] = oks
    act = activation(ROOTS, data)
    fast = grid.combined.evaluate_plain(act) if grid.combined is not None else None
    if not isinstance(fast, list):
        fast = None
    results: list[tuple[Criterion, float, str, bool | None]] = []
    total = 0.0
    for i, c in enumerate(grid.criteria):
        if fast is not None and oks[i]:
            met = fast[i]
        elif c.condition is not None:
            met = c.condition.evaluate(act)
        else:
            met = True
        if met is not True:
            if met is False:
                results.append((c, 0.0, "condition not met", False))
            else:  # a runtime error (a null or missing value): never its text
                results.append((c, 0.0, _unreadable(c, data), None))
            continue
        if isinstance(c.points, float):
            pts: float | None = c.points
        else:
            pts = _number(c.points.evaluate(act))
        if pts is None:
            results.append((c, 0.0, _unreadable(c, data), None))
            continue
        total += pts
        results.append((c, pts, "condition met", True))
    return Scored(str(demande.get("numUnique") or ""), round(total, 4), tuple(results))


def _missing_paths(c: Criterion, data: Mapping[str, Any]) -> str:
    found = (_missing(data, p) for p in c.precheck)
    return ", ".join(dict.fromkeys(m for m in found if m))


def _unreadable(c: Criterion, data: Mapping[str, Any]) -> str:
    missing = _missing_paths(c, data)
    if missing:
        return f"missing: {missing}"
    named = ", ".join(p.removeprefix("demande.") for p in c.reads if p != "now") or "its data"
    return f"missing or unusable data in: {named}"


def rank(entries: Iterable[tuple[str, Any, float, date]]) -> dict[str, tuple[int, int]]:
    """Position among similar applications: entries (key, group, total, creation date) -> key ->
    (rank, group size); 1 is the highest total, ties to the older application."""
    groups: dict[Any, list[tuple[str, float, date]]] = {}
    for key, group, total, created in entries:
        groups.setdefault(group, []).append((key, total, created))
    out: dict[str, tuple[int, int]] = {}
    for members in groups.values():
        members.sort(key=lambda m: (-m[1], m[2], m[0]))
        for i, (key, _t, _c) in enumerate(members, 1):
            out[key] = (i, len(members))
    return out


def mean_wait_months(attributions: Iterable[tuple[Any, date, date]], group: Any, now: date) -> int | None:
    """Indicative wait: mean months from creation to lease of the (group, created, lease) attributions
    of the group whose lease is in the 12 months before `now`; None when there is none."""
    waits = [
        months_between(created, lease)
        for g, created, lease in attributions
        if g == group and 0 <= months_between(lease, now) < 12 and lease <= now
    ]
    return round(sum(waits) / len(waits)) if waits else None


@cache
def _group_names() -> tuple[str, ...]:
    return tuple(f["name"] for f in load_schemas().raw(GROUPS_RECORD)["fields"])


def to_record(
    grid: Grid,
    scored: Scored,
    now: date,
    *,
    type_logement: str | None = None,
    position: tuple[int, int] | None = None,
    attente: int | None = None,
) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {name: [] for name in _group_names()}
    for c, pts, reason, met in scored.criteria:
        groups[c.group].append(
            {"id": c.id, "libelle": c.label, "points": pts, "raison": reason, "rempli": met}
        )
    stamp = datetime(now.year, now.month, now.day, tzinfo=UTC)
    who = grid.epci or "gateway"
    return {
        "numUnique": scored.key,
        "grille": grid.id,
        "versionGrille": grid.version,
        "epci": grid.epci,
        "dateCalcul": now,
        "total": scored.total,
        "criteres": groups,
        "typeLogement": type_logement,
        "rang": position[0] if position else None,
        "demandesSimilaires": position[1] if position else None,
        "attenteIndicativeMois": attente,
        "provenance": {
            "origine": who,
            "saisie": who,
            "dateEvenement": stamp,
            "dateSaisie": stamp,
            "systemeSource": "cotation",
            "referenceSource": f"{grid.id}@{grid.version or '-'}",
            "operation": "MODIFICATION",
        },
    }
