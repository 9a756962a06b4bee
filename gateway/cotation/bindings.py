"""What a cotation expression can read: the root variables, the derived values of `calcul`, the
label lists of `labels`, and the policy class of every path (so that the points of a criterion are
classified like the data it reads)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from gateway.cotation.household import (
    age_at,
    consumption_units,
    household_size,
    monthly_resources,
    months_between,
    resources_per_uc,
)

__all__ = ["CALCUL", "LABEL_KINDS", "RESERVED", "ROOTS", "SIGNAUX_CLASS", "Derived"]

ROOTS = ("calcul", "demande", "gp_ok", "labels", "now", "signaux")
# gp_ok: internal (the scorer's guards of the combined evaluation, see score.py); refused in grids
RESERVED = "gp_ok"

# labels.<kind>: the active labels of the application, from fr.gp.Decision `label`, `labelSante`,
# `labelViolences` (each element: the fields of fr.gp.LabelPrioritaire), with the class of that field.
LABEL_KINDS: dict[str, tuple[str, str]] = {
    "priorite": ("label", "priorite"),
    "sante": ("labelSante", "sante_handicap"),
    "violences": ("labelViolences", "violences"),
}

# signaux.<TYPE>: the follow-up signals in force (fr.gp.Signal types), each {"depuis": date}; the
# signals are processing facts, classified `traitement`.
SIGNAUX_CLASS = "traitement"

Derived = tuple[str, tuple[str, ...], Callable[[Mapping[str, Any], date], Any]]


def _f(value: Any) -> Any:
    return None if value is None else float(value)


def _anciennete(d: Mapping[str, Any], now: date) -> Any:
    created = d.get("dateCreationDemande")
    return None if created is None else months_between(created, now)


def _age(d: Mapping[str, Any], now: date) -> Any:
    return age_at((d.get("demandeur") or {}).get("dateNaissance"), now)


def _pieces(d: Mapping[str, Any], _now: date) -> Any:
    """Persons per room in the current dwelling: occupants / rooms of its type (T1 = 1, chambre = 1)."""
    la = d.get("logementActuel") or {}
    occupants, kind = la.get("nombreHabitant"), la.get("typeLogementActuel")
    rooms = {"CHAMBRE": 1, "T1": 1, "T2": 2, "T3": 3, "T4": 4, "T5": 5, "T6P": 6}.get(kind or "")
    if occupants is None or rooms is None:
        return None
    return round(occupants / rooms, 3)


def _surface_par_personne(d: Mapping[str, Any], _now: date) -> Any:
    la = d.get("logementActuel") or {}
    surface, occupants = la.get("surface"), la.get("nombreHabitant")
    if surface is None or not occupants:
        return None
    return round(float(surface) / occupants, 2)


_MEMBERS = ("demandeur", "cotitulaires", "personnesACharge", "personnesEnGarde", "personnesANaitre.nombre")
_BIRTHS = (
    "cotitulaires[].dateNaissance",
    "personnesACharge[].dateNaissance",
    "personnesEnGarde[].dateNaissance",
)
_RESOURCES = tuple(
    f"{who}.{kind}"
    for who in ("demandeur", "cotitulaires[]")
    for kind in ("ressourcesRecues", "ressourcesSante", "ressourcesVersees")
)

# calcul.<name>: (doc, fr.gp.Demande paths it reads, function of (demande, now)); None = unknown.
# A path to a record or a list stands for its presence or size only (its own class).
CALCUL: dict[str, Derived] = {
    "anciennete_mois": ("whole months since dateCreationDemande", ("dateCreationDemande",), _anciennete),
    "age_demandeur": ("age of the applicant in years", ("demandeur.dateNaissance",), _age),
    "taille_menage": (
        "persons in the household: applicant, co-applicants, dependants, children in custody, unborn",
        _MEMBERS,
        lambda d, _n: household_size(d),
    ),
    "unites_consommation": (
        "consumption units (modified OECD scale, as the SNE)",
        _MEMBERS + _BIRTHS,
        consumption_units,
    ),
    "ressources_mensuelles": (
        "monthly resources of applicant and co-applicants (health-related included) minus pensions paid",
        _RESOURCES,
        lambda d, _n: _f(monthly_resources(d)),
    ),
    "ressources_par_uc": (
        "yearly resources per consumption unit, as the SNE computes it for the first quartile",
        _MEMBERS + _BIRTHS + _RESOURCES,
        resources_per_uc,
    ),
    "personnes_par_piece": (
        "occupants of the current dwelling per room of its type",
        ("logementActuel.nombreHabitant", "logementActuel.typeLogementActuel"),
        _pieces,
    ),
    "surface_par_personne": (
        "m² of the current dwelling per occupant",
        ("logementActuel.surface", "logementActuel.nombreHabitant"),
        _surface_par_personne,
    ),
}
