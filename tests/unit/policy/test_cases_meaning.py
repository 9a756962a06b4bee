"""Policy cases (issue 10 item 6): a path naming no field is an error, `absent` means not disclosed
in this record (missing from the view, or null-withheld), classes are those disclosed in the record."""

from __future__ import annotations

from typing import Any

import pytest
from gateway.policy import Router, load_policy
from gateway.policy.cases import Case, disclosed, disclosed_classes, run_cases, values_at

ROUTER = Router(load_policy())
RENNES = "243500139"


def run(expect: dict[str, Any], *, args: dict[str, Any] | None = None, actor: str = RENNES) -> list[str]:
    case = Case.model_validate(
        {
            "name": "c",
            "actor": actor,
            "input": {"schema": "fr.gp.Demande", "sample": "demande", "args": args or {}},
            "expect": expect,
        }
    )
    [result] = run_cases([case], ROUTER)
    return result.failures


@pytest.mark.parametrize("key", ["absent", "present"])
def test_a_path_that_names_no_field_is_an_error_not_a_pass(key: str) -> None:
    failures = run({key: ["demandeur.courriel"]}, args={"violences": True})
    assert failures == [
        "demandeur.courriel: names no field of the canonical or view schemas (checks nothing)"
    ]


def test_a_fields_path_that_names_no_field_is_an_error() -> None:
    assert run({"fields": {"demandeur.age": 3}}) == [
        "demandeur.age: names no field of the canonical or view schemas (checks nothing)"
    ]


def test_an_unknown_class_is_an_error() -> None:
    assert run({"classes_exclude": ["sante"]}) == ["class sante: not a class of the policy (checks nothing)"]


@pytest.mark.parametrize("path", ["cotitulaires.mel", "cotitulaires[].mel", "cotitulaires.0.mel"])
def test_a_field_of_a_list_is_checked_whatever_its_spelling(path: str) -> None:
    """The shipped case on cotitulaires.mel used to pass without checking anything."""
    assert run({"absent": [path]}, args={"violences": True}) == []
    assert run({"absent": [path]}, args={"violences": False}) == [
        f"{path}: expected absent (not disclosed in this record), disclosed"
    ]


def test_absent_on_a_field_the_input_does_not_hold_checks_nothing() -> None:
    assert run({"absent": ["dateDernierRenouvellement"]}) == [
        "dateDernierRenouvellement: the input holds no value there, so `absent` checks nothing"
    ]


def test_null_withheld_and_missing_are_both_not_disclosed() -> None:
    out = {"demandeur": {"mel": None, "nom": "X"}, "cotitulaires": [{"mel": None}, {"mel": None}], "a": []}
    assert not disclosed(out, "demandeur.mel")  # withheld as null
    assert not disclosed(out, "demandeur.telPortable")  # not in the view at all
    assert not disclosed(out, "cotitulaires.mel")
    assert not disclosed(out, "a")  # an empty list
    assert disclosed(out, "demandeur.nom")
    assert values_at({"l": [{"x": 1}, {"x": None}]}, "l.x") == [1, None]


def test_classes_are_those_disclosed_in_the_record() -> None:
    leaf_classes = {
        "demandeur.mel": "contact",
        "demandeur.nom": "identite",
        "handicap.etat": "sante_handicap",
    }
    record = {"demandeur": {"mel": None, "nom": "X"}, "handicap": None}
    assert disclosed_classes(record, leaf_classes) == {"identite"}


def test_classes_of_a_protected_household_follow_the_record() -> None:
    assert run({"classes_exclude": ["contact"]}, args={"violences": True}) == []
    assert run({"classes_exclude": ["contact"]}, args={"violences": False}) == [
        "class contact: expected not disclosed in this record, disclosed"
    ]
