"""Adequacy and solvency at designation (pure), with the method and thresholds as data per territory.

Three rules, each passed, failed or unknown (a datum the applicant or the bailleur did not give is
unknown, never zero):
- `taille_typologie`: the household's size against the dwelling's type: persons per room within
  [min, max] (a T3 has 3 rooms), or the explicit persons band of that type when the rules give one;
- `taux_effort`: (rent + charges − housing allowance) / monthly resources <= the maximum;
- `reste_a_vivre`: (monthly resources − (rent + charges − allowance)) / consumption units >= the
  minimum (€ per month per UC).
A missing allowance makes the burden an upper bound (the allowance is never negative): the rule
passes if the bound does, and is unknown otherwise; missing charges make it a lower bound (fails
if the bound fails). Rent, charges and allowance are monthly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.cotation.household import consumption_units, household_size, monthly_resources
from gateway.errors import ConfigError, Problem

__all__ = ["AdequacyRules", "Verdict", "assess", "load_rules", "parse_rules", "to_record"]

ROOMS = {"T1": 1, "T2": 2, "T3": 3, "T4": 4, "T5": 5, "T6": 6, "T7": 7, "T8": 8, "T9P": 9}


class Band(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    min: float = Field(ge=0)
    max: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Band:
        if self.min > self.max:
            raise ValueError("min is above max")
        return self


class AdequacyRules(BaseModel):
    """A territory's rules (YAML). Every problem is reported at load."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = "regles"
    version: str = "1"
    territoire: str | None = None
    personnes_par_piece: Band = Field(description="Persons per room of the dwelling type.")
    typologies: dict[str, Band] = Field(
        default_factory=dict, description="Persons per dwelling type (overrides)."
    )
    taux_effort_max: float = Field(gt=0, le=1, description="Maximum rent burden, e.g. 0.33.")
    reste_a_vivre_min_par_uc: float = Field(ge=0, description="Minimum € per month per consumption unit.")

    @field_validator("typologies")
    @classmethod
    def _types(cls, v: dict[str, Band]) -> dict[str, Band]:
        bad = sorted(set(v) - set(ROOMS))
        if bad:
            raise ValueError(f"unknown dwelling types {bad} (RPLS types: {', '.join(ROOMS)})")
        return v


def parse_rules(raw: Any, name: str = "rules") -> AdequacyRules:
    try:
        return AdequacyRules.model_validate(raw)
    except ValidationError as exc:
        problems = [
            Problem(".".join(str(p) for p in e["loc"]) or name, e["msg"], e["type"]) for e in exc.errors()
        ]
        raise ConfigError(f"adequacy rules {name} refused ({len(problems)} problems)", problems) from None


def load_rules(path: Path) -> AdequacyRules:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"adequacy rules {path} refused", [Problem(str(path), f"unreadable: {type(exc).__name__}")]
        ) from None
    return parse_rules(raw, path.name)


@dataclass(frozen=True)
class Verdict:
    id: str
    result: str  # PASSE / ECHEC / INCONNU
    value: float | None
    bound: str | None  # "max" / "min" when value is only a bound
    threshold: str
    why: str


def _f(v: Any) -> float | None:
    return None if v is None else float(Decimal(v)) if not isinstance(v, float) else v


def _size_rule(rules: AdequacyRules, demande: Mapping[str, Any], kind: str | None) -> Verdict:
    size = household_size(demande)
    band = rules.typologies.get(kind or "")
    rooms = ROOMS.get(kind or "")
    if band is not None:
        lo, hi, unit = band.min, band.max, "persons"
    elif rooms is not None:
        lo, hi, unit = rules.personnes_par_piece.min * rooms, rules.personnes_par_piece.max * rooms, "persons"
    else:
        lo = hi = 0.0
        unit = ""
    threshold = f"{lo:g}-{hi:g} {unit} for {kind}" if unit else "dwelling type unknown"
    if size is None or not unit:
        missing = "household (no applicant)" if size is None else "logement.typeLogement"
        return Verdict(
            "taille_typologie",
            "INCONNU",
            None if size is None else float(size),
            None,
            threshold,
            f"unknown: {missing}",
        )
    ok = lo <= size <= hi
    why = f"{size} persons {'within' if ok else 'outside'} {lo:g}-{hi:g} for {kind}"
    return Verdict("taille_typologie", "PASSE" if ok else "ECHEC", float(size), None, threshold, why)


def _cost(
    logement: Mapping[str, Any], charges: Any, aide: Any
) -> tuple[float | None, float | None, list[str]]:
    """(lower, upper) bounds of the monthly cost rent + charges − allowance, and what is missing.
    Charges and allowance are never negative: without the allowance the cost is at most rent +
    charges; without the charges it is at least rent − allowance."""
    rent = _f(logement.get("loyer"))
    ch = _f(charges if charges is not None else logement.get("charges"))
    al = _f(aide if aide is not None else logement.get("aideLogement"))
    missing = [n for n, v in (("loyer", rent), ("charges", ch), ("aideLogement", al)) if v is None]
    if rent is None:
        return None, None, missing
    upper = rent + ch - (al or 0.0) if ch is not None else None
    lower = rent + (ch or 0.0) - al if al is not None else None
    return lower, upper, missing


def assess(
    rules: AdequacyRules,
    demande: Mapping[str, Any],
    logement: Mapping[str, Any],
    now: date,
    *,
    charges: Any = None,
    aide: Any = None,
) -> tuple[str, list[Verdict]]:
    """(overall result, verdicts). `logement` is a fr.gp.Logement; charges and allowance (monthly)
    are given by the caller or read from the logement's `charges` / `aideLogement` when present."""
    kind = logement.get("typeLogement")
    verdicts = [_size_rule(rules, demande, kind)]
    res = monthly_resources(demande)
    resources = None if res is None else float(res)
    lower, upper, missing = _cost(logement, charges, aide)
    units = consumption_units(demande, now)
    te_max = rules.taux_effort_max
    rav_min = rules.reste_a_vivre_min_par_uc
    gaps = ", ".join(missing)
    if resources is None or resources <= 0 or (lower is None and upper is None):
        why = "unknown: " + ", ".join(([] if resources else ["ressources"]) + missing)
        verdicts.append(Verdict("taux_effort", "INCONNU", None, None, f"<= {te_max:g}", why))
    elif lower is not None and lower == upper:
        te = round(lower / resources, 4)
        verdicts.append(
            Verdict(
                "taux_effort",
                "PASSE" if te <= te_max else "ECHEC",
                te,
                None,
                f"<= {te_max:g}",
                f"{te:.4f} of resources",
            )
        )
    elif upper is not None and upper / resources <= te_max:
        te = round(upper / resources, 4)
        verdicts.append(
            Verdict(
                "taux_effort",
                "PASSE",
                te,
                "max",
                f"<= {te_max:g}",
                f"at most {te:.4f} whatever the missing {gaps}",
            )
        )
    elif lower is not None and lower / resources > te_max:
        te = round(lower / resources, 4)
        verdicts.append(
            Verdict(
                "taux_effort",
                "ECHEC",
                te,
                "min",
                f"<= {te_max:g}",
                f"at least {te:.4f} whatever the missing {gaps}",
            )
        )
    else:
        verdicts.append(Verdict("taux_effort", "INCONNU", None, None, f"<= {te_max:g}", f"unknown: {gaps}"))
    rav_threshold = f">= {rav_min:g} per UC"
    if resources is None or units is None or (lower is None and upper is None):
        why = "unknown: " + ", ".join(
            ([] if resources is not None else ["ressources"])
            + ([] if units else ["dates de naissance du ménage"])
            + missing
        )
        verdicts.append(Verdict("reste_a_vivre", "INCONNU", None, None, rav_threshold, why))
    elif lower is not None and lower == upper:
        rav = round((resources - lower) / units, 2)
        verdicts.append(
            Verdict(
                "reste_a_vivre",
                "PASSE" if rav >= rav_min else "ECHEC",
                rav,
                None,
                rav_threshold,
                f"{rav:.2f} per UC per month",
            )
        )
    elif upper is not None and (resources - upper) / units >= rav_min:
        rav = round((resources - upper) / units, 2)
        verdicts.append(
            Verdict(
                "reste_a_vivre",
                "PASSE",
                rav,
                "min",
                rav_threshold,
                f"at least {rav:.2f} per UC whatever the missing {gaps}",
            )
        )
    elif lower is not None and (resources - lower) / units < rav_min:
        rav = round((resources - lower) / units, 2)
        verdicts.append(
            Verdict(
                "reste_a_vivre",
                "ECHEC",
                rav,
                "max",
                rav_threshold,
                f"at most {rav:.2f} per UC whatever the missing {gaps}",
            )
        )
    else:
        verdicts.append(Verdict("reste_a_vivre", "INCONNU", None, None, rav_threshold, f"unknown: {gaps}"))
    results = {v.result for v in verdicts}
    overall = "ECHEC" if "ECHEC" in results else "INCONNU" if "INCONNU" in results else "PASSE"
    return overall, verdicts


def to_record(
    rules: AdequacyRules, decision: Mapping[str, Any], overall: str, verdicts: list[Verdict], now: date
) -> dict[str, Any]:
    """The fr.gp.Adequation record of a designation decision."""
    logement = (decision.get("designation") or {}).get("logement") or {}
    stamp = datetime(now.year, now.month, now.day, tzinfo=UTC)
    who = rules.territoire or "gateway"
    return {
        "numUnique": decision["numUnique"],
        "designation": decision["eventId"],
        "rpls": logement.get("rpls"),
        "sirenBailleur": logement.get("sirenBailleur"),
        "regles": f"{rules.id}@{rules.version}",
        "dateCalcul": now,
        "resultat": overall,
        "details": [
            {
                "id": v.id,
                "resultat": v.result,
                "valeur": v.value,
                "borne": v.bound,
                "seuil": v.threshold,
                "explication": v.why,
            }
            for v in verdicts
        ],
        "provenance": {
            "origine": who,
            "saisie": who,
            "dateEvenement": stamp,
            "dateSaisie": stamp,
            "systemeSource": "adequation",
            "referenceSource": decision["eventId"],
            "operation": "CREATION",
        },
    }
