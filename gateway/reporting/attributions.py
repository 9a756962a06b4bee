"""Attributions and the 25 % obligations (L441-1, loi Égalité et Citoyenneté), pure.

An attribution is a radiation for attribution (RADATT) carrying its attribution data (bailleur
SIREN, lease date, dwelling with RPLS id and commune, contingent charged, DALO flag), as the SNE
monitors them; a lease (BAIL_SIGNE) of an application with no such radiation counts too, its
contingent taken from the application's designation on that dwelling (AUCUN without one). The same
attribution sent twice counts once (application, dwelling, lease date).

Per year (of the lease), territory (the EPCI whose communes hold the dwelling, else the
département) and obligated actor:
- `dalo_25`: each réservataire's contingent (COLACT Action Logement, COLTER collectivités, AUTRES;
  the actor is the designating organisation when a designation names it, else the contingent code)
  and each bailleur's non-reserved stock (contingent AUCUN): share to DALO households, and to
  priority households (DALO or a priority label in force at the lease date);
- `premier_quartile_hors_qpv_25`: each EPCI and each bailleur in it: among attributions outside QPV,
  the share to first-quartile applicants (yearly resources per consumption unit, as the SNE computes
  them, below the territory's threshold; unknown resources are never counted as first quartile).
The State's contingents (PPRIOR, PFONCT) have their own rule and are not reported here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from gateway.cotation.household import resources_per_uc
from gateway.reporting.config import ReportingConfig

__all__ = ["COLUMNS", "Fact", "Row", "facts", "rows", "to_csv"]

COLUMNS = [
    "annee", "territoire", "acteur", "role", "obligation", "attributions", "dalo", "prioritaires",
    "part_dalo", "part_prioritaires", "hors_qpv", "premier_quartile_hors_qpv", "part_premier_quartile",
]  # fmt: skip
RESERVATAIRES = ("COLACT", "COLTER", "AUTRES")
DALO_25 = "dalo_25"
QUARTILE_25 = "premier_quartile_hors_qpv_25"


@dataclass(frozen=True)
class Fact:
    num: str
    lease: date
    territory: str
    bailleur: str
    contingent: str
    designataire: str | None
    dalo: bool
    prioritaire: bool
    qpv: bool
    premier_quartile: bool  # False when unknown


def _labelled(decisions: Iterable[Mapping[str, Any]], when: date) -> bool:
    for d in decisions:
        for name in ("label", "labelSante", "labelViolences"):
            label = d.get(name)
            if (
                label
                and label["dateLabel"] <= when
                and (label.get("dateFin") is None or label["dateFin"] >= when)
            ):
                return True
    return False


def _same_dwelling(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if a.get("rpls") and b.get("rpls"):
        return bool(a["rpls"] == b["rpls"])
    return bool(a.get("referenceBailleur")) and a.get("referenceBailleur") == b.get("referenceBailleur")


def facts(
    demandes: Mapping[str, Mapping[str, Any]], decisions: Iterable[Mapping[str, Any]], config: ReportingConfig
) -> list[Fact]:
    """Attribution facts of canonical records (demandes: numéro unique -> latest Demande)."""
    per_app: dict[str, list[Mapping[str, Any]]] = {}
    ordered = list(decisions)
    for d in ordered:
        per_app.setdefault(d.get("numUnique") or "", []).append(d)
    raw: list[tuple[str, Mapping[str, Any], date, str, str, bool | None]] = []
    radiated: set[str] = set()
    for d in ordered:
        rad = d.get("radiation") or {}
        att = rad.get("attribution")
        if rad.get("motif") == "RADATT" and att:
            raw.append(
                (
                    d["numUnique"],
                    att["logement"],
                    att["dateSignatureBail"],
                    att["siren"],
                    att["contingent"],
                    att.get("daloPrioritaireUrgent"),
                )
            )
            radiated.add(d["numUnique"])
    for d in ordered:
        bail = d.get("bail")
        if bail and d["numUnique"] not in radiated:
            logement = bail["logement"]
            designation = next(
                (
                    x["designation"]
                    for x in reversed(per_app[d["numUnique"]])
                    if x.get("designation") and _same_dwelling(x["designation"]["logement"], logement)
                ),
                None,
            )
            contingent = designation["contingent"] if designation else "AUCUN"
            raw.append(
                (
                    d["numUnique"],
                    logement,
                    bail["dateSignature"],
                    logement.get("sirenBailleur") or "",
                    contingent,
                    None,
                )
            )
    out: list[Fact] = []
    seen: set[tuple[str, str, date]] = set()
    for num, logement, lease, siren, contingent, dalo_flag in raw:
        dwelling = logement.get("rpls") or logement.get("referenceBailleur") or logement.get("commune") or ""
        if (num, dwelling, lease) in seen:
            continue
        seen.add((num, dwelling, lease))
        demande = demandes.get(num) or {}
        statut = (demande.get("dalo") or {}).get("statut")
        dalo = bool(dalo_flag) if dalo_flag is not None else statut in ("ACTIF", "ACTREL")
        commune = logement.get("commune")
        territory = (
            config.territory_of(commune)
            or (commune[:3] if commune and commune.startswith("97") else (commune or "")[:2])
            or "inconnu"
        )
        terr = config.territories.get(territory)
        ruc = resources_per_uc(demande, lease) if demande else None
        designation = next(
            (
                x["designation"]
                for x in reversed(per_app.get(num, []))
                if x.get("designation") and _same_dwelling(x["designation"]["logement"], logement)
            ),
            None,
        )
        out.append(
            Fact(
                num=num,
                lease=lease,
                territory=territory,
                bailleur=siren or logement.get("sirenBailleur") or "inconnu",
                contingent=contingent,
                designataire=designation["designataire"] if designation else None,
                dalo=dalo,
                prioritaire=dalo or _labelled(per_app.get(num, ()), lease),
                qpv=bool(logement.get("rpls")) and logement["rpls"] in config.qpv,
                premier_quartile=bool(terr and ruc is not None and ruc < terr.premier_quartile),
            )
        )
    return out


@dataclass
class Row:
    annee: int
    territoire: str
    acteur: str
    role: str
    obligation: str
    attributions: int = 0
    dalo: int = 0
    prioritaires: int = 0
    hors_qpv: int = 0
    premier_quartile_hors_qpv: int = 0

    def add(self, f: Fact) -> None:
        self.attributions += 1
        self.dalo += f.dalo
        self.prioritaires += f.prioritaire
        if not f.qpv:
            self.hors_qpv += 1
            self.premier_quartile_hors_qpv += f.premier_quartile

    def cells(self) -> list[str]:
        def share(n: int, d: int) -> str:
            return f"{n / d:.4f}" if d else ""

        return [
            str(self.annee), self.territoire, self.acteur, self.role, self.obligation,
            str(self.attributions), str(self.dalo), str(self.prioritaires),
            share(self.dalo, self.attributions), share(self.prioritaires, self.attributions),
            str(self.hors_qpv), str(self.premier_quartile_hors_qpv),
            share(self.premier_quartile_hors_qpv, self.hors_qpv),
        ]  # fmt: skip


def rows(all_facts: Iterable[Fact], year: int, territory: str | None = None) -> list[Row]:
    out: dict[tuple[str, str, str, str], Row] = {}

    def put(f: Fact, actor: str, role: str, obligation: str) -> None:
        key = (f.territory, actor, role, obligation)
        row = out.get(key)
        if row is None:
            row = out[key] = Row(year, f.territory, actor, role, obligation)
        row.add(f)

    for f in all_facts:
        if f.lease.year != year or (territory is not None and f.territory != territory):
            continue
        if f.contingent in RESERVATAIRES:
            put(f, f.designataire or f.contingent, "reservataire", DALO_25)
        elif f.contingent == "AUCUN":
            put(f, f.bailleur, "bailleur", DALO_25)
        put(f, f.territory, "epci", QUARTILE_25)
        put(f, f.bailleur, "bailleur", QUARTILE_25)
    return sorted(out.values(), key=lambda r: (r.territoire, r.role, r.acteur, r.obligation))


def to_csv(report: Iterable[Row]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in report:
        writer.writerow(r.cells())
    return buf.getvalue()
