"""Derived fields: what a recipient may get *instead of* a withheld class, and no more.

Each derivation is a named, typed top-level field added to a view (a role lists them in `derive`).
They are code, not policy data, so their output types stay under review; the policy only picks them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = ["DERIVATIONS", "Derivation", "pseudonym", "revenue_band"]

DEMANDE = "fr.gp.Demande"
DECISION = "fr.gp.Decision"

Record = Mapping[str, Any]


@dataclass(frozen=True)
class Derivation:
    name: str
    schemas: tuple[str, ...]
    avro_type: Any
    doc: str
    fn: Callable[[Record, bytes], Any]  # (canonical record, pseudonymisation secret) -> value

    def field(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.avro_type, "doc": self.doc}


def pseudonym(num_unique: str | None, secret: bytes) -> str | None:
    """Keyed HMAC-SHA256 of a numéro unique (hex, 32 chars): stable, not reversible without the key."""
    if not num_unique:
        return None
    return hmac.new(secret, num_unique.encode(), hashlib.sha256).hexdigest()[:32]


_BANDS = ((10_000, "0-10k"), (20_000, "10-20k"), (30_000, "20-30k"), (45_000, "30-45k"))


def revenue_band(total: Decimal | None) -> str | None:
    """Household fiscal income (year N-1) as a band, never the amount."""
    if total is None:
        return None
    for limit, label in _BANDS:
        if total < limit:
            return label
    return "45k+"


def _household_income(record: Record, _secret: bytes) -> str | None:
    people = [record.get("demandeur"), *(record.get("cotitulaires") or [])]
    amounts = [
        (p.get("revenuFiscal") or {}).get("montantMoins1") for p in people if p and p.get("revenuFiscal")
    ]
    known = [Decimal(a) for a in amounts if a is not None]
    return revenue_band(sum(known, Decimal(0))) if known else None


def _besoin_adapte(record: Record, _secret: bytes) -> bool:
    return record.get("handicap") is not None or "HANDICAP" in (record.get("motifsSante") or [])


def _count(name: str) -> Callable[[Record, bytes], int]:
    def fn(record: Record, _secret: bytes) -> int:
        return len(record.get(name) or [])

    return fn


def _a_naitre(record: Record, _secret: bytes) -> int:
    sub = record.get("personnesANaitre")
    return int(sub.get("nombre") or 0) if sub else 0


def _pseudo(record: Record, secret: bytes) -> str | None:
    return pseudonym(record.get("numUnique"), secret)


_OPT_STRING = ["null", "string"]
DERIVATIONS: dict[str, Derivation] = {
    d.name: d
    for d in (
        Derivation(
            "pseudoId", (DEMANDE, DECISION), _OPT_STRING, "HMAC pseudonym of the numéro unique.", _pseudo
        ),
        Derivation("nbCotitulaires", (DEMANDE,), "int", "Number of co-applicants.", _count("cotitulaires")),
        Derivation(
            "nbPersonnesACharge", (DEMANDE,), "int", "Number of dependants.", _count("personnesACharge")
        ),
        Derivation("nbPersonnesANaitre", (DEMANDE,), "int", "Number of expected children.", _a_naitre),
        Derivation(
            "nbPersonnesEnGarde", (DEMANDE,), "int", "Children in shared custody.", _count("personnesEnGarde")
        ),
        Derivation(
            "trancheRevenuFiscal",
            (DEMANDE,),
            _OPT_STRING,
            "Household fiscal income N-1 as a band (0-10k, 10-20k, 20-30k, 30-45k, 45k+).",
            _household_income,
        ),
        Derivation(
            "besoinLogementAdapte",
            (DEMANDE,),
            "boolean",
            "True when the household needs adapted housing (handicap), without the details.",
            _besoin_adapte,
        ),
    )
}
