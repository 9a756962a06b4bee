"""Shared by the codec tests: fastavro as the reference, the sample records, a schema using every
construct the canonical schemas do not."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import fastavro
from gateway.testing.samples import canonical_samples

__all__ = ["SAMPLES", "SYNTHETIC", "fastavro_accepts", "fastavro_bytes", "minimal_demande", "sample_records"]

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


def fastavro_bytes(parsed: Any, record: Any) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, record)
    return buf.getvalue()


def fastavro_accepts(parsed: Any, record: Any) -> bool:
    try:
        return bool(fastavro.validation.validate(record, parsed, raise_errors=False))
    except Exception:  # noqa: BLE001 - fastavro raises on some invalid values
        return False


sample_records = canonical_samples  # every canonical record of samples/


def minimal_demande() -> dict[str, Any]:
    now = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    return {
        "numGuichet": "G1226",
        "dateCreationDemande": date(2026, 1, 2),
        "logementRecherche": {"demandeElargie": False, "typesLogement": ["T2"], "communes": ["75056"]},
        "provenance": {
            "origine": "1",
            "saisie": "2",
            "dateEvenement": now,
            "dateSaisie": now,
            "systemeSource": "x",
        },
    }


# Constructs the canonical schemas do not use: map, fixed, float, long, uuid, time, local timestamps,
# [T, null] unions, defaults of every kind, a recursive record, an unknown logical type.
SYNTHETIC: dict[str, Any] = {
    "type": "record",
    "name": "Everything",
    "namespace": "t",
    "fields": [
        {"name": "f", "type": "float"},
        {"name": "d", "type": ["double", "null"]},
        {"name": "l", "type": "long", "default": 7},
        {"name": "by", "type": "bytes"},
        {"name": "fx", "type": {"type": "fixed", "name": "Four", "size": 4}},
        {"name": "fx2", "type": ["null", "Four"], "default": None},
        {"name": "m", "type": {"type": "map", "values": ["null", "int"]}},
        {"name": "u", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "tm", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "tu", "type": {"type": "long", "logicalType": "time-micros"}},
        {"name": "tsu", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "lts", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
        {"name": "ltu", "type": {"type": "long", "logicalType": "local-timestamp-micros"}},
        {"name": "dec0", "type": {"type": "bytes", "logicalType": "decimal", "precision": 3}},
        {"name": "odd", "type": {"type": "string", "logicalType": "not-known"}},
        {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}, "default": "B"},
        {"name": "arr", "type": {"type": "array", "items": "E"}, "default": []},
        {"name": "flag", "type": "boolean", "default": True},
        {"name": "next", "type": ["null", "Everything"], "default": None},
        {"name": "kids", "type": {"type": "array", "items": "Everything"}, "default": []},
    ],
}
