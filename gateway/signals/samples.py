"""Canonical records for signal tests and benches: a Demande and Decisions with chosen dates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from gateway.policy.samples import sample_decision, sample_demande
from gateway.signals.core import Context
from gateway.signals.engine import Engine
from gateway.signals.rules import load_rules

__all__ = ["LOGEMENT", "NOW", "bail", "cal", "ctx", "decision", "demande", "engine", "of_type"]

NOW = datetime(2026, 11, 30, tzinfo=UTC)
ROLES = {
    "200000001": "bailleur",
    "200000002": "bailleur",
    "130000035": "etat",
    "824541148": "reservataire",
    "CIA-243500139": "commission",
    "STAT-35": "statistique",
}
LOGEMENT = {
    "rpls": "0000449999",
    "referenceBailleur": "NL-1",
    "sirenBailleur": "200000002",
    "adresse": None,
    "commune": "44109",
    "typeLogement": "T3",
    "surface": None,
    "loyer": None,
    "zus": None,
}


def ctx(**rules_overrides: Any) -> Context:
    rules = load_rules()
    if rules_overrides:
        from gateway.signals.rules import parse_rules  # noqa: PLC0415

        raw = rules.file.model_dump() | rules_overrides
        rules = parse_rules(raw)
    return Context(rules, ROLES)


def engine(**rules_overrides: Any) -> Engine:
    return Engine(ctx(**rules_overrides))


def demande(
    num: str,
    commune: str = "44109",
    *,
    created: date = date(2025, 10, 1),
    renewed: date | None = None,
    types: tuple[str, ...] = ("T3",),
    statut: str = "ACTIVE",
) -> dict[str, Any]:
    record = sample_demande(num, (commune,))
    record["dateCreationDemande"] = created
    record["dateDernierRenouvellement"] = renewed
    record["statut"] = statut
    record["logementRecherche"]["typesLogement"] = list(types)
    return record


def decision(
    kind: str, num: str, *, when: date, origine: str = "200000002", event_id: str | None = None, **sub: Any
) -> dict[str, Any]:
    refus = sub.pop("refus", None)
    record = sample_decision(kind, num, origine=origine, event_id=event_id or f"{kind}-{num}-{when}", **sub)
    if refus is not None:
        record["refus"] = refus
    record.setdefault("saisine", None)
    at = datetime(when.year, when.month, when.day, 10, tzinfo=UTC)
    record["provenance"] = {**record["provenance"], "dateEvenement": at, "dateSaisie": at}
    return record


def cal(
    num: str,
    rang: int | None,
    *,
    day: date = date(2026, 10, 8),
    logement: dict[str, Any] | None = None,
    decision_: str = "ATTRIBUTION_RANG",
) -> dict[str, Any]:
    return decision(
        "DECISION_CAL",
        num,
        when=day,
        dateCommission=day,
        commission="CAL-NL-03",
        decision=decision_,
        rang=rang,
        logement=logement or LOGEMENT,
    )


def bail(
    num: str, *, day: date = date(2026, 10, 20), logement: dict[str, Any] | None = None
) -> dict[str, Any]:
    return decision("BAIL_SIGNE", num, when=day, dateSignature=day, logement=logement or LOGEMENT)


def of_type(signals: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [s for s in signals if s["typeSignal"] == type_]
