"""Scoring a set of applications (pure): the offline command, the worker and the demo share it.

Input: the latest fr.gp.Demande of each application and every fr.gp.Decision seen, in order.
Output: one fr.gp.Cotation record per active application the grid covers, with its position among
the similar applications (same grid territory, same first wanted dwelling type) and the indicative
wait (mean months from creation to lease of those attributed in the last 12 months).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from gateway.cotation.grid import Grid
from gateway.cotation.score import Scored, active_labels, mean_wait_months, rank, score, to_record

__all__ = ["attributions_of", "covers", "dwelling_type", "score_all"]

_RPLS_TO_TYPE = {"T1": "T1", "T2": "T2", "T3": "T3", "T4": "T4", "T5": "T5"}


def dwelling_type(demande: Mapping[str, Any]) -> str | None:
    types = (demande.get("logementRecherche") or {}).get("typesLogement") or []
    return types[0] if types else None


def covers(grid: Grid, demande: Mapping[str, Any]) -> bool:
    """An active application with a numéro unique that wants a commune of the grid (any, without
    `communes`)."""
    if demande.get("statut") != "ACTIVE" or not demande.get("numUnique"):
        return False
    if not grid.communes:
        return True
    wanted = (demande.get("logementRecherche") or {}).get("communes") or []
    return any(c in grid.communes for c in wanted)


def attributions_of(
    demandes: Mapping[str, Mapping[str, Any]], decisions: Iterable[Mapping[str, Any]]
) -> list[tuple[Any, date, date]]:
    out = []
    for d in decisions:
        att = (d.get("radiation") or {}).get("attribution")
        demande = demandes.get(d.get("numUnique") or "")
        if not att or demande is None or demande.get("dateCreationDemande") is None:
            continue
        rpls_type = (att.get("logement") or {}).get("typeLogement")
        kind = _RPLS_TO_TYPE.get(rpls_type or "", "T6P" if rpls_type else None)
        out.append((kind, demande["dateCreationDemande"], att["dateSignatureBail"]))
    return out


def score_all(
    grid: Grid,
    demandes: Mapping[str, Mapping[str, Any]],
    decisions: Iterable[Mapping[str, Any]],
    now: date,
    signaux: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """`demandes`: numéro unique -> latest Demande (radiated ones included: their attributions give
    the indicative wait). Records in the order of `demandes`."""
    decisions = list(decisions)
    per_app: dict[str, list[Mapping[str, Any]]] = {}
    for d in decisions:
        per_app.setdefault(d.get("numUnique") or "", []).append(d)
    scored: list[tuple[Mapping[str, Any], Scored]] = []
    for key, demande in demandes.items():
        if covers(grid, demande):
            labels = active_labels(per_app.get(key, ()), now)
            scored.append((demande, score(grid, demande, now, labels, (signaux or {}).get(key))))
    positions = rank(
        (s.key, dwelling_type(d), s.total, d["dateCreationDemande"]) for d, s in scored if dwelling_type(d)
    )
    attributions = attributions_of(demandes, decisions)
    out = []
    for demande, s in scored:
        kind = dwelling_type(demande)
        out.append(
            to_record(
                grid,
                s,
                now,
                type_logement=kind,
                position=positions.get(s.key),
                attente=mean_wait_months(attributions, kind, now) if kind else None,
            )
        )
    return out
