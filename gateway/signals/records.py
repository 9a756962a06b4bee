"""Signal records and what every processor shares: the Context (rules, actors' roles) and the one
builder of a `fr.gp.Signal` (its id hashes the facts, never the clock)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

from gateway.signals.rules import Rules
from gateway.signals.state import Label, from_ordinal

__all__ = [
    "DECISION",
    "DEMANDE",
    "SIGNAL",
    "SYSTEM",
    "Context",
    "departement_of",
    "label_signal",
    "signal_record",
]

DEMANDE = "fr.gp.Demande"
DECISION = "fr.gp.Decision"
SIGNAL = "fr.gp.Signal"
SYSTEM = "signals"
_NAMESPACE = uuid.UUID("6b1f5d0e-3c1a-4f0e-9a57-5e0c5a9d1a14")
_SUBS = ("delai", "attribueNonLoge", "refus", "saisine", "label", "labelSante", "labelViolences", "aRadier")


@dataclass(frozen=True)
class Context:
    """What the processors read besides the state: the rules, and the actors file's roles."""

    rules: Rules
    actor_roles: Mapping[str, str] = field(default_factory=dict)  # actor id -> role


def iso(day: int) -> str:
    return from_ordinal(day).isoformat()


def departement_of(commune: str) -> str:
    return commune[:3] if commune.startswith("97") else commune[:2]


def signal_record(
    *,
    num: str,
    type_: str,
    day: int,
    sub_field: str,
    sub: dict[str, Any],
    ctx: Context,
    now: datetime,
    origine: str,
    entrees: tuple[str, ...] | list[str],
    discriminator: str,
    summary: str,
) -> dict[str, Any]:
    """A fr.gp.Signal with its one sub-record set; `signalId` hashes the facts, not the clock."""
    record: dict[str, Any] = {
        "signalId": str(uuid.uuid5(_NAMESPACE, f"{type_}|{num}|{discriminator}")),
        "numUnique": num,
        "typeSignal": type_,
        "dateEffet": from_ordinal(day),
        "provenance": {
            "origine": origine or ctx.rules.file.emetteur,
            "saisie": ctx.rules.file.emetteur,
            "dateEvenement": datetime.combine(from_ordinal(day), time(), UTC),
            "dateSaisie": now,
            "systemeSource": SYSTEM,
            "referenceSource": None,
            "operation": "CREATION",
        },
        "entrees": list(entrees),
        "explication": summary,
    }
    for name in _SUBS:
        record[name] = None
    record[sub_field] = sub
    return record


def label_signal(
    num: str, label: Label, *, statut: str, day: int, ctx: Context, now: datetime, origine: str
) -> dict[str, Any]:
    words = {"DONNE": "donné", "EXPIRE": "arrivé à échéance", "RETIRE": "retiré"}[statut]
    sub = {
        "statut": statut,
        "categorie": label.categorie,
        "organismeLabellisant": label.body,
        "dateLabel": from_ordinal(label.date_label),
        "dateFin": from_ordinal(label.date_fin) if label.date_fin else None,
        "contingentsEligibles": list(label.contingents),
        "explication": (
            f"Label prioritaire ({label.categorie}) de l'organisme {label.body} {words} le {iso(day)}."
        ),
    }
    return signal_record(
        num=num,
        type_="LABEL_PRIORITAIRE",
        day=day,
        sub_field=label.field,
        sub=sub,
        ctx=ctx,
        now=now,
        origine=origine,
        entrees=[label.event_id] if label.event_id else [],
        discriminator=f"{statut}|{label.ident}|{label.date_label}|{label.date_fin}",
        summary=f"Un label prioritaire de cette demande a changé ({words}) le {iso(day)}.",
    )
