"""Rules of the follow-up signals, as data per territory (pydantic; docs/signals.md).

`load_rules(path)` reads a YAML rules file and returns `Rules`, or raises `ConfigError` listing
every problem at once: unknown départements, negative delays, overlapping commune groups, communes
outside their département, unknown signal types, unknown fields. A département whose délai
anormalement long the préfet has not fixed (or that the territory has not entered yet) is written
`delai_anormal: NON_FIXE`: no DELAI_ANORMAL_DEPASSE signal there, and `Rules.warnings` says so.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.codec.avro import load_schemas
from gateway.errors import ConfigError, Problem

__all__ = [
    "DEFAULT_RULES",
    "NON_FIXE",
    "SIGNAL_TYPES",
    "AttribueNonLogeRule",
    "CommuneGroup",
    "DelaiRule",
    "DepartementRules",
    "RadierRule",
    "RefusRule",
    "Rules",
    "SaisineRule",
    "default_rules",
    "load_rules",
    "parse_rules",
    "valid_departement",
]

NON_FIXE = "NON_FIXE"
DEFAULT_RULES = Path(__file__).resolve().parent.parent / "data" / "signals" / "rules.yaml"


def _signal_types() -> tuple[str, ...]:
    """The symbols of fr.gp.TypeSignal: the one list of signal types."""
    return tuple(load_schemas().enum_symbols("fr.gp.TypeSignal"))  # without the reading default INCONNU


SIGNAL_TYPES: tuple[str, ...] = _signal_types()


def valid_departement(code: str) -> bool:
    """01-95 (no 20), 2A, 2B, 971-976."""
    if code in ("2A", "2B"):
        return True
    if len(code) == 2 and code.isdigit():
        return 1 <= int(code) <= 95 and code != "20"
    return len(code) == 3 and code.isdigit() and 971 <= int(code) <= 976


def _departement_of(commune: str) -> str:
    return commune[:3] if commune.startswith("97") else commune[:2]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CommuneGroup(_Strict):
    nom: str = Field(min_length=1)
    communes: list[str] = Field(min_length=1, description="INSEE codes of the group's communes.")
    mois: int = Field(ge=0, description="Délai of the group, months.")


class DelaiRule(_Strict):
    """Délai anormalement long of a département (L441-1-4): a default, commune groups, dwelling types."""

    mois: int = Field(ge=0, description="Délai, months, where no group or type applies.")
    groupes: list[CommuneGroup] = Field(default_factory=list)
    types_logement: dict[str, int] = Field(
        default_factory=dict, description="fr.gp.TypeLogement symbol -> months; wins over the groups."
    )
    arrete: str = Field("", description="Reference of the préfet's arrêté.")


class AttribueNonLogeRule(_Strict):
    traitement: str | None = Field(
        None, description="Local treatment of an ATTRIBUE_NON_LOGE household (null: none)."
    )
    duree_mois: int | None = Field(None, ge=0, description="For how long it applies (null: no end).")


class RefusRule(_Strict):
    seuil: int = Field(1, ge=1, description="From this refusal on, the consequence applies.")
    compter: Literal["tous", "sans_motif"] = Field("tous", description="Which refusals count.")
    consequence: str | None = Field(None, description="Consequence told to the applicant (null: none).")


class RadierRule(_Strict):
    validite_mois: int = Field(12, ge=0, description="Validity of an application (R441-2-7).")
    tolerance_mois: int = Field(1, ge=0, description="Grace after the renewal date (SPTA: 13 months).")
    irrecevabilite_jours: int = Field(30, ge=0, description="After a CAL's irrecevabilité (R441-2-8 d).")


class SaisineRule(_Strict):
    roles_autorises: list[str] = Field(
        default_factory=lambda: ["bailleur", "etat", "collectivite", "reservataire", "siao", "gestionnaire"],
        description="Roles (actors file) whose actors may submit an application to a commission.",
    )


class DepartementRules(_Strict):
    delai_anormal: DelaiRule | Literal["NON_FIXE"]
    attribue_non_loge: AttribueNonLogeRule | None = None
    refus_offre: RefusRule | None = None


class RulesFile(_Strict):
    version: str = Field(min_length=1)
    emetteur: str = Field(
        min_length=1, description="SIREN / code of the organisation running the signals (provenance.saisie)."
    )
    signaux: list[str] = Field(description="Signal types switched on (fr.gp.TypeSignal symbols).")
    attribue_non_loge: AttribueNonLogeRule = Field(default_factory=AttribueNonLogeRule)
    refus_offre: RefusRule = Field(default_factory=RefusRule)
    a_radier: RadierRule = Field(default_factory=RadierRule)
    saisine: SaisineRule = Field(default_factory=SaisineRule)
    departements: dict[str, DepartementRules] = Field(default_factory=dict)


class Rules:
    """A checked rules file, with the lookups the processors need."""

    def __init__(self, file: RulesFile, source: str = "") -> None:
        self.file = file
        self.source = source
        self.version = file.version
        self.enabled = frozenset(file.signaux)
        self._group_of: dict[str, tuple[str, int]] = {}
        for dept in file.departements.values():
            if isinstance(dept.delai_anormal, DelaiRule):
                for g in dept.delai_anormal.groupes:
                    for c in g.communes:
                        self._group_of[c] = (g.nom, g.mois)

    @property
    def warnings(self) -> list[str]:
        unset = sorted(d for d, r in self.file.departements.items() if r.delai_anormal == NON_FIXE)
        if not unset or "DELAI_ANORMAL_DEPASSE" not in self.enabled:
            return []
        return [
            f"délai anormalement long not set for département(s) {', '.join(unset)}: "
            "no DELAI_ANORMAL_DEPASSE signal there"
        ]

    def delai(self, dept: str, commune: str, type_logement: str) -> tuple[int, str | None] | None:
        """(months, group or type name) of the délai for an application; None: not fixed, no signal."""
        rules = self.file.departements.get(dept)
        if rules is None or not isinstance(rules.delai_anormal, DelaiRule):
            return None
        rule = rules.delai_anormal
        if type_logement and type_logement in rule.types_logement:
            return rule.types_logement[type_logement], type_logement
        group = self._group_of.get(commune)
        if group is not None:
            return group[1], group[0]
        return rule.mois, None

    def attribue_non_loge(self, dept: str) -> AttribueNonLogeRule:
        local = self.file.departements.get(dept)
        return local.attribue_non_loge if local and local.attribue_non_loge else self.file.attribue_non_loge

    def refus(self, dept: str) -> RefusRule:
        local = self.file.departements.get(dept)
        return local.refus_offre if local and local.refus_offre else self.file.refus_offre


def _pydantic_problems(exc: ValidationError) -> list[Problem]:
    out = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "$"
        out.append(Problem(path, err["msg"]))
    return out


def _check(file: RulesFile) -> list[Problem]:
    problems: list[Problem] = []
    known_types = set(SIGNAL_TYPES)
    problems += [
        Problem(f"signaux[{i}]", f"unknown signal type {s!r} (known: {', '.join(SIGNAL_TYPES)})")
        for i, s in enumerate(file.signaux)
        if s not in known_types
    ]
    dwelling_types = set(load_schemas().enum_symbols("fr.gp.TypeLogement"))
    for code, dept in file.departements.items():
        where = f"departements.{code}"
        if not valid_departement(code):
            problems.append(Problem(where, f"unknown département {code!r}"))
        if not isinstance(dept.delai_anormal, DelaiRule):
            continue
        seen: dict[str, str] = {}
        for gi, group in enumerate(dept.delai_anormal.groupes):
            for commune in group.communes:
                gwhere = f"{where}.delai_anormal.groupes[{gi}].communes"
                if _departement_of(commune) != code:
                    problems.append(Problem(gwhere, f"commune {commune!r} is not in département {code}"))
                if commune in seen:
                    problems.append(
                        Problem(
                            gwhere, f"commune {commune!r} is in two groups ({seen[commune]!r}, {group.nom!r})"
                        )
                    )
                seen[commune] = group.nom
        for t, months in dept.delai_anormal.types_logement.items():
            if t not in dwelling_types:
                problems.append(Problem(f"{where}.delai_anormal.types_logement.{t}", "unknown dwelling type"))
            if months < 0:
                problems.append(Problem(f"{where}.delai_anormal.types_logement.{t}", "negative delay"))
    return problems


def parse_rules(raw: Any, source: str = "") -> Rules:
    """Rules from parsed YAML; ConfigError with every problem."""
    try:
        file = RulesFile.model_validate(raw)
    except ValidationError as exc:
        problems = _pydantic_problems(exc)
        # pydantic stops at the shape; the semantic checks still run on what parses, so that one
        # pass lists every problem (unknown types and départements next to negative delays)
        problems += _loose_check(raw)
        raise ConfigError(f"signals rules {source} refused", problems) from None
    problems = _check(file)
    if problems:
        raise ConfigError(f"signals rules {source} refused", problems)
    return Rules(file, source)


def _loose_check(raw: Any) -> list[Problem]:
    """The semantic checks on a file that does not parse whole: départements and signal types."""
    if not isinstance(raw, dict):
        return []
    out: list[Problem] = []
    signaux = raw.get("signaux")
    if isinstance(signaux, list):
        out += [
            Problem(f"signaux[{i}]", f"unknown signal type {s!r} (known: {', '.join(SIGNAL_TYPES)})")
            for i, s in enumerate(signaux)
            if s not in SIGNAL_TYPES
        ]
    depts = raw.get("departements")
    if isinstance(depts, dict):
        out += [
            Problem(f"departements.{c}", f"unknown département {c!r}")
            for c in depts
            if not valid_departement(str(c))
        ]
    return out


def load_rules(path: str | Path | None = None) -> Rules:
    """The rules file at `path`, or the shipped one; ConfigError listing every problem."""
    path = Path(path) if path is not None else DEFAULT_RULES
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read signals rules {path}: {exc.strerror}") from None
    source = str(path)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"signals rules {source} is not YAML: {exc}") from None
    # YAML reads 35 as an int: département codes are strings
    if isinstance(raw, dict) and isinstance(raw.get("departements"), dict):
        raw["departements"] = {
            str(k).zfill(2) if isinstance(k, int) else k: v for k, v in raw["departements"].items()
        }
    return parse_rules(raw, source)


@cache
def default_rules() -> Rules:
    return load_rules()
