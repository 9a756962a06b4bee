"""The attribution report kept up to date by the worker (pure): the same figures as
`gateway report attributions`, from the canonical records as they arrive.

It keeps per application only what the report reads (resources and birth dates for resources per
UC, the DALO status; labels, designations, leases and radiations with attribution data), and says
which years changed so that only their lines are recomputed and republished.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.reporting.attributions import Fact, Row, facts, rows
from gateway.reporting.config import ReportingConfig

__all__ = ["ReportState", "line_key", "line_record"]

_PERSON = ("dateNaissance", "ressourcesRecues", "ressourcesSante", "ressourcesVersees")
_DECISIONS = ("label", "labelSante", "labelViolences", "designation", "bail")


def _reduced(demande: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a Demande the report reads (resources per UC, DALO status)."""

    def person(p: Mapping[str, Any] | None) -> dict[str, Any] | None:
        return None if p is None else {k: p.get(k) for k in _PERSON}

    return {
        "numUnique": demande.get("numUnique"),
        "demandeur": person(demande.get("demandeur")),
        "cotitulaires": [person(p) for p in demande.get("cotitulaires") or ()],
        "personnesACharge": [
            {"dateNaissance": p.get("dateNaissance")} for p in demande.get("personnesACharge") or ()
        ],
        "personnesEnGarde": [
            {"dateNaissance": p.get("dateNaissance")} for p in demande.get("personnesEnGarde") or ()
        ],
        "personnesANaitre": demande.get("personnesANaitre"),
        "dalo": demande.get("dalo"),
    }


def _lease_year(decision: Mapping[str, Any]) -> int | None:
    att = (decision.get("radiation") or {}).get("attribution")
    if att:
        return int(att["dateSignatureBail"].year)
    bail = decision.get("bail")
    return int(bail["dateSignature"].year) if bail else None


@dataclass
class ReportState:
    config: ReportingConfig
    demandes: dict[str, dict[str, Any]] = field(default_factory=dict)
    decisions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    years: dict[str, set[int]] = field(default_factory=dict)  # application -> years of its leases
    dirty: set[int] = field(default_factory=set)
    # attributions of erased applications: counted still, as facts naming no household
    erased: list[Fact] = field(default_factory=list)

    def erase(self, key: str) -> bool:
        """Forget application `key` (an erasure), keeping its attributions in the figures as
        anonymous facts (lease date, territory, organisations, flags): a year's lines do not change
        because a household of it was erased. True when anything was held."""
        held = key in self.demandes or key in self.decisions
        if key in self.decisions:
            mine = {key: self.demandes[key]} if key in self.demandes else {}
            self.erased += [replace(f, num="") for f in facts(mine, self.decisions[key], self.config)]
        self.demandes.pop(key, None)
        self.decisions.pop(key, None)
        self.years.pop(key, None)
        return held

    def on_demande(self, demande: Mapping[str, Any]) -> None:
        key = demande.get("numUnique")
        if key:
            self.demandes[key] = _reduced(demande)
            self.dirty |= self.years.get(key, set())

    def on_decision(self, decision: Mapping[str, Any]) -> None:
        key = decision.get("numUnique") or ""
        attributed = bool((decision.get("radiation") or {}).get("attribution"))
        if not attributed and not any(decision.get(k) for k in _DECISIONS):
            return
        self.decisions.setdefault(key, []).append(dict(decision))
        year = _lease_year(decision)
        if year is not None:
            self.years.setdefault(key, set()).add(year)
        self.dirty |= self.years.get(key, set())

    def changed(self) -> dict[int, list[Row]]:
        """The lines of every year that changed since the last call."""
        years, self.dirty = sorted(self.dirty), set()
        if not years:
            return {}
        all_facts = facts(self.demandes, [d for ds in self.decisions.values() for d in ds], self.config)
        all_facts += self.erased
        return {y: rows(all_facts, y) for y in years}


def line_key(row: Row) -> str:
    return f"{row.annee};{row.territoire};{row.acteur};{row.role};{row.obligation}"


def line_record(row: Row) -> dict[str, Any]:
    """A fr.gp.LigneAttributions: the CSV line's values, shares as doubles (null when undefined)."""

    def share(n: int, d: int) -> float | None:
        return round(n / d, 4) if d else None

    return {
        "annee": row.annee,
        "territoire": row.territoire,
        "acteur": row.acteur,
        "role": row.role,
        "obligation": row.obligation,
        "attributions": row.attributions,
        "dalo": row.dalo,
        "prioritaires": row.prioritaires,
        "partDalo": share(row.dalo, row.attributions),
        "partPrioritaires": share(row.prioritaires, row.attributions),
        "horsQpv": row.hors_qpv,
        "premierQuartileHorsQpv": row.premier_quartile_hors_qpv,
        "partPremierQuartile": share(row.premier_quartile_hors_qpv, row.hors_qpv),
    }
