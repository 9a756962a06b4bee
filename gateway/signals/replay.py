"""`gateway signals replay`: the normalisers and the signal processors over files, offline.

The inputs are applied in the order given; the clock is `now` (default: the latest event date of
the inputs), and the time-driven rules run once at that date, after every input (every rule reads
dated facts only, so this gives the signals the worker would have emitted by then).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.model.canonical import CanonicalRecord
from gateway.normalise import Rejection, normalise
from gateway.signals.core import Context
from gateway.signals.engine import Engine

__all__ = ["ReplayResult", "replay"]


@dataclass
class ReplayResult:
    signals: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (key, fr.gp.Signal)
    notes: list[str] = field(default_factory=list)  # rejections, dead letters, pending: never personal data
    now: datetime | None = None


def _event_time(record: Mapping[str, Any]) -> datetime | None:
    when = (record.get("provenance") or {}).get("dateEvenement")
    return when if isinstance(when, datetime) else None


def replay(
    inputs: Iterable[tuple[str, str, bytes]], ctx: Context, now: datetime | None = None
) -> ReplayResult:
    """inputs: (format, name, bytes) in order. Returns the signals in the order they became known."""
    result = ReplayResult()
    records: list[CanonicalRecord] = []
    for fmt, name, data in inputs:
        for outcome in normalise(fmt, data):
            if isinstance(outcome, Rejection):
                reasons = "; ".join(f"{p.path}: {p.reason}" for p in outcome.problems)
                result.notes.append(f"{name} {outcome.locator}: rejected by the normaliser ({reasons})")
            else:
                records.append(outcome)
    if now is None:
        times = [t for r in records if (t := _event_time(r.record)) is not None]
        now = max(times) if times else datetime.now(UTC)
    result.now = now
    engine = Engine(ctx)
    for rec in records:
        num = rec.record.get("numUnique")
        if not num:
            result.notes.append(f"{rec.key}: no numéro unique yet, no signal")
            continue
        fed = engine.feed(rec.schema, str(num), rec.record, now)
        result.signals += [(str(s["numUnique"]), s) for s in fed.signals]
        result.notes += [
            f"{rec.schema} {rec.record.get('eventId') or num}: dead-lettered: {r}" for r in fed.rejected
        ]
    for signal in engine.advance(now.toordinal(), now):
        result.signals.append((str(signal["numUnique"]), signal))
    for num, count in engine.pending().items():
        result.notes.append(f"{num}: {count} event(s) kept pending, their application's Demande never came")
    return result
