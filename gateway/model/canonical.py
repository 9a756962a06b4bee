"""Typed view of a canonical record: which schema, which Kafka key, and the Avro-shaped dict.

The shape of `record` is defined by `schemas/avro` (the single source of truth); this module only
names the two top-level record types and computes the key every flow uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DECISION", "DEMANDE", "SCHEMAS", "CanonicalRecord", "canonical_key"]

DEMANDE = "fr.gp.Demande"
DECISION = "fr.gp.Decision"
SCHEMAS: tuple[str, ...] = (DEMANDE, DECISION)


def canonical_key(schema: str, record: Mapping[str, Any]) -> str:
    """The Kafka key of a canonical record: the numéro unique.

    A Demande not yet registered by the SNE has no numéro unique: its key is
    ``f"{numGuichet}/{provenance.referenceSource}"`` (the guichet's own reference).
    """
    num = record.get("numUnique")
    if isinstance(num, str) and num:
        return num
    if schema == DEMANDE:
        provenance = record.get("provenance") or {}
        reference = provenance.get("referenceSource") if isinstance(provenance, Mapping) else None
        return f"{record.get('numGuichet')}/{reference if reference else '-'}"
    raise ValueError(f"{schema} record without numUnique has no key")


@dataclass(frozen=True)
class CanonicalRecord:
    """One canonical record produced by a normaliser (it fits the Avro schema `schema`)."""

    schema: str  # "fr.gp.Demande" | "fr.gp.Decision"
    key: str
    record: dict[str, Any]
    # names of the code lists of the unknown codes it carries as INCONNU (metric labels; never codes)
    unknown_codes: tuple[str, ...] = ()

    @classmethod
    def of(cls, schema: str, record: dict[str, Any]) -> CanonicalRecord:
        return cls(schema, canonical_key(schema, record), record)
