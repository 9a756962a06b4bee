"""The cotation worker's state and decisions, without Kafka (pure, unit-tested).

It keeps, per application of the grid's territory, the latest fr.gp.Demande and the decisions that
matter to the cotation (labels, attributions for the indicative wait, designations for adequacy),
and says what to publish: the cotation of an application that changed, every cotation when the day
changes (seniority grows, labels expire), an adequacy record at each designation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from gateway.cotation.adequacy import AdequacyRules, assess
from gateway.cotation.adequacy import to_record as adequacy_record
from gateway.cotation.batch import attributions_of, covers, dwelling_type, score_all
from gateway.cotation.grid import Grid
from gateway.cotation.score import active_labels, mean_wait_months, score, to_record

__all__ = ["ADEQUATION", "COTATION", "CotationState"]

COTATION = "fr.gp.Cotation"
ADEQUATION = "fr.gp.Adequation"
_KEPT = ("label", "labelSante", "labelViolences")


@dataclass
class CotationState:
    grid: Grid
    rules: AdequacyRules | None = None
    demandes: dict[str, dict[str, Any]] = field(default_factory=dict)
    decisions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    day: date | None = None
    totals: dict[str, tuple[str | None, float, date]] = field(default_factory=dict)  # for positions
    live: bool = True  # False while the worker catches up: keep state, score nothing

    def _keep(self, decision: Mapping[str, Any]) -> bool:
        att = (decision.get("radiation") or {}).get("attribution")
        return any(decision.get(k) for k in _KEPT) or bool(att)

    def _score(self, keys: list[str], now: date) -> list[tuple[str, dict[str, Any]]]:
        """Cotations of `keys`, each positioned among every application held (cached totals)."""
        out = []
        attributions = attributions_of(self.demandes, (d for ds in self.decisions.values() for d in ds))
        for key in keys:
            demande = self.demandes[key]
            labels = active_labels(self.decisions.get(key, ()), now)
            scored = score(self.grid, demande, now, labels)
            kind = dwelling_type(demande)
            self.totals[key] = (kind, scored.total, demande["dateCreationDemande"])
            position = None
            if kind is not None:
                me = (-scored.total, demande["dateCreationDemande"], key)
                group = [(-t, c, k) for k, (g, t, c) in self.totals.items() if g == kind]
                position = (1 + sum(1 for other in group if other < me), len(group))
            wait = mean_wait_months(attributions, kind, now) if kind else None
            record = to_record(self.grid, scored, now, type_logement=kind, position=position, attente=wait)
            out.append((COTATION, record))
        return out

    def on_demande(self, demande: dict[str, Any], now: date) -> list[tuple[str, dict[str, Any]]]:
        key = demande.get("numUnique")
        if not key:
            return []
        if not covers(self.grid, demande):
            self.totals.pop(key, None)
            attributed = (demande.get("radiation") or {}).get("motif") == "RADATT"
            if key not in self.decisions and not attributed:
                self.demandes.pop(key, None)  # left the territory, or radiated without attribution
                return []
        self.demandes[key] = demande
        return self._score([key], now) if self.live and covers(self.grid, demande) else []

    def on_decision(self, decision: dict[str, Any], now: date) -> list[tuple[str, dict[str, Any]]]:
        key = decision.get("numUnique") or ""
        out: list[tuple[str, dict[str, Any]]] = []
        designation = decision.get("designation")
        demande = self.demandes.get(key)
        if designation and self.rules is not None and demande is not None and self.live:
            overall, verdicts = assess(self.rules, demande, designation.get("logement") or {}, now)
            out.append((ADEQUATION, adequacy_record(self.rules, decision, overall, verdicts, now)))
        if self._keep(decision):
            self.decisions.setdefault(key, []).append(decision)
            labelled = any(decision.get(k) for k in _KEPT)
            if self.live and demande is not None and covers(self.grid, demande) and labelled:
                out += self._score([key], now)
        return out

    def erase(self, key: str) -> bool:
        """Forget application `key` (an erasure): its Demande, decisions and position; True when
        anything was held. Other applications' positions are computed without it from now on."""
        held = key in self.demandes or key in self.decisions or key in self.totals
        self.demandes.pop(key, None)
        self.decisions.pop(key, None)
        self.totals.pop(key, None)
        return held

    def daily(self, now: date) -> list[tuple[str, dict[str, Any]]]:
        """Every cotation, once per day (the first call of a day); [] on later calls that day."""
        if self.day == now:
            return []
        self.day = now
        decisions = [d for ds in self.decisions.values() for d in ds]
        records = score_all(self.grid, self.demandes, decisions, now)
        self.totals = {
            r["numUnique"]: (
                r["typeLogement"],
                r["total"],
                self.demandes[r["numUnique"]]["dateCreationDemande"],
            )
            for r in records
        }
        return [(COTATION, r) for r in records]
