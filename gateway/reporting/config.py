"""Reporting data: territories with their communes and first-quartile thresholds (YAML), and the
dwellings in QPV (CSV). Files with errors are refused at load with every problem; problems name
lines and columns, never a household.

Territories file::

    annee: 2026                      # optional: the year the thresholds are for
    territoires:
      "244400404":                   # EPCI SIREN (the `territoire` column of the report)
        nom: Nantes Métropole
        communes: ["44109", "44162"]
        premier_quartile: 10460      # € per year per consumption unit (arrêté of the year)

QPV file (CSV, `;` separated, header `rpls;qpv`): one line per dwelling in a QPV (RPLS id, 10
characters; QPV code optional). A dwelling absent from it is outside QPV.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.errors import ConfigError, Problem

__all__ = ["ReportingConfig", "Territory", "load_qpv", "load_territories", "parse_qpv", "parse_territories"]

_COMMUNE = re.compile(r"^(\d{5}|2[AB]\d{3})$")
_RPLS = re.compile(r"^[0-9A-Za-z]{10}$")


class Territory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    nom: str = ""
    communes: list[str] = Field(min_length=1)
    premier_quartile: float = Field(gt=0, description="First-quartile threshold, € per year per UC.")

    @field_validator("communes")
    @classmethod
    def _insee(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if not _COMMUNE.match(c)]
        if bad:
            raise ValueError(f"not INSEE commune codes: {bad}")
        return v


class TerritoriesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    annee: int | None = None
    territoires: dict[str, Territory] = Field(min_length=1)


@dataclass(frozen=True)
class ReportingConfig:
    territories: dict[str, Territory]
    qpv: frozenset[str]  # RPLS ids of dwellings in QPV

    def territory_of(self, commune: str | None) -> str | None:
        if not commune:
            return None
        return next((t for t, terr in self.territories.items() if commune in terr.communes), None)


def parse_territories(raw: Any, name: str = "territories") -> dict[str, Territory]:
    problems: list[Problem] = []
    try:
        tf = TerritoriesFile.model_validate(raw)
    except ValidationError as exc:
        problems = [
            Problem(f"{name}:" + ".".join(str(p) for p in e["loc"]), e["msg"], e["type"])
            for e in exc.errors()
        ]
        raise ConfigError(f"territories {name} refused ({len(problems)} problems)", problems) from None
    seen: dict[str, str] = {}
    for tid, terr in tf.territoires.items():
        for c in terr.communes:
            if c in seen:
                problems.append(
                    Problem(f"{name}:territoires.{tid}.communes", f"commune {c} also in {seen[c]}")
                )
            seen[c] = tid
    if problems:
        raise ConfigError(f"territories {name} refused ({len(problems)} problems)", problems)
    return dict(tf.territoires)


def load_territories(path: Path) -> dict[str, Territory]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"territories {path} refused", [Problem(str(path), f"unreadable: {type(exc).__name__}")]
        ) from None
    return parse_territories(raw, path.name)


def parse_qpv(text: str, name: str = "qpv") -> frozenset[str]:
    """RPLS ids of the QPV file; every bad line reported (line number and reason, no value)."""
    problems: list[Problem] = []
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")), delimiter=";")
    if reader.fieldnames is None or "rpls" not in [f.strip() for f in reader.fieldnames]:
        raise ConfigError(
            f"QPV file {name} refused", [Problem(f"{name}:1", "header must have a `rpls` column")]
        )
    out: set[str] = set()
    for i, row in enumerate(reader, start=2):
        rpls = (row.get("rpls") or "").strip()
        if not _RPLS.match(rpls):
            problems.append(Problem(f"{name}:{i}.rpls", "not an RPLS id (10 letters or digits)"))
        elif rpls in out:
            problems.append(Problem(f"{name}:{i}.rpls", "duplicate dwelling"))
        out.add(rpls)
    if problems:
        raise ConfigError(f"QPV file {name} refused ({len(problems)} problems)", problems)
    return frozenset(out)


def load_qpv(path: Path) -> frozenset[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"QPV file {path} refused", [Problem(str(path), f"unreadable: {type(exc).__name__}")]
        ) from None
    return parse_qpv(text, path.name)
