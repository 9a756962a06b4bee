"""The bundled samples (`samples/<format>/*` of the checkout) as canonical records, for tests and
benchmarks that need realistic Demande and Decision records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.model.canonical import CanonicalRecord
from gateway.normalise import FORMATS, normalise

__all__ = ["SAMPLES", "canonical_samples"]

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def canonical_samples(samples: Path = SAMPLES) -> list[tuple[str, dict[str, Any]]]:
    """(schema name, record) of every canonical record the normalisers make of the samples."""
    out = []
    for fmt in FORMATS:
        for path in sorted((samples / fmt).glob("*")):
            for outcome in normalise(fmt, path.read_bytes()):
                if isinstance(outcome, CanonicalRecord):
                    out.append((outcome.schema, outcome.record))
    return out
