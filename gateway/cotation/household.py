"""Household figures computed from a canonical Demande (pure): size, ages, consumption units,
resources. Unknown stays unknown: a figure that needs a datum the applicant did not give is None,
never zero.

Consumption units (UC) follow the modified OECD scale the SNE uses for the first-quartile rule (SNE
v5.2): 1 for the applicant, 0.5 for every other person aged 14 or more, 0.3 for every person under
14 (a child to be born counts as under 14; a child in shared custody counts). Resources per UC are
yearly: 12 × (monthly resources received, health-related ones included, of the applicant and the
co-applicants − pensions paid) / UC, as the SNE's "revenu par unité de consommation".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

__all__ = [
    "age_at",
    "consumption_units",
    "household_size",
    "monthly_resources",
    "months_between",
    "resources_per_uc",
]


def months_between(start: date, end: date) -> int:
    """Whole months from `start` to `end` (negative when end is earlier): 2024-01-31 → 2024-02-29 is 0."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if months > 0 and end.day < start.day:
        months -= 1
    elif months < 0 and end.day > start.day:
        months += 1
    return months


def age_at(birth: date | None, when: date) -> int | None:
    if birth is None:
        return None
    return when.year - birth.year - ((when.month, when.day) < (birth.month, birth.day))


def _list(record: Mapping[str, Any], name: str) -> Sequence[Mapping[str, Any]]:
    return record.get(name) or ()


def household_size(demande: Mapping[str, Any]) -> int | None:
    """Persons who will live in the dwelling: applicant, co-applicants, dependants, children in
    shared custody, children to be born. None for a legal-person application without an applicant."""
    if demande.get("demandeur") is None:
        return None
    unborn = (demande.get("personnesANaitre") or {}).get("nombre") or 0
    return (
        1
        + len(_list(demande, "cotitulaires"))
        + len(_list(demande, "personnesACharge"))
        + len(_list(demande, "personnesEnGarde"))
        + int(unborn)
    )


def consumption_units(demande: Mapping[str, Any], when: date) -> float | None:
    """Modified OECD scale (see the module doc); None when a co-occupant's birth date is missing."""
    if demande.get("demandeur") is None:
        return None
    units = 1.0
    others = [
        *_list(demande, "cotitulaires"),
        *_list(demande, "personnesACharge"),
        *_list(demande, "personnesEnGarde"),
    ]
    for person in others:
        age = age_at(person.get("dateNaissance"), when)
        if age is None:
            return None
        units += 0.5 if age >= 14 else 0.3
    unborn = (demande.get("personnesANaitre") or {}).get("nombre") or 0
    return round(units + 0.3 * int(unborn), 4)


def monthly_resources(demande: Mapping[str, Any]) -> Decimal | None:
    """Monthly resources of the applicant and co-applicants (received, health-related included, minus
    pensions paid). None when no one declared any resource line (not declared is not zero)."""
    people = [p for p in [demande.get("demandeur"), *_list(demande, "cotitulaires")] if p]
    total = Decimal(0)
    declared = False
    for person in people:
        for name, sign in (("ressourcesRecues", 1), ("ressourcesSante", 1), ("ressourcesVersees", -1)):
            for line in _list(person, name):
                amount = line.get("montant")
                if amount is None:
                    continue
                declared = True
                total += sign * Decimal(amount)
    return total if declared else None


def resources_per_uc(demande: Mapping[str, Any], when: date) -> float | None:
    """Yearly resources per consumption unit (the SNE's first-quartile figure), None when unknown."""
    monthly = monthly_resources(demande)
    units = consumption_units(demande, when)
    if monthly is None or not units:
        return None
    return round(float(monthly) * 12 / units, 2)
