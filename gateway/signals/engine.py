"""The signal processors over in-memory state: the offline replay, the bench and the tests.

`Engine.feed(schema, key, record, now)` applies one canonical record (and hands its dwelling facts
to the dwelling processor); `Engine.advance(today)` runs the time-driven rules on the applications
the `DueIndex` says are due. The worker (`gateway/flows/signals.py`) runs the same functions of
`gateway.signals.core` with its state in faust tables.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.codec.avro import AvroCodec, load_schemas
from gateway.signals.core import DECISION, Context, apply, apply_logement, next_due, tick
from gateway.signals.state import AppState, DueIndex, LogementState

__all__ = ["Engine", "Fed", "pack_decision", "unpack_decision"]


def _decision_codec() -> AvroCodec:
    return load_schemas().codec(DECISION)


def pack_decision(record: Mapping[str, Any]) -> str:
    """A Decision as kept pending in an application's state (base64 Avro body)."""
    return base64.b64encode(_decision_codec().encode(record, validate=False)).decode()


def unpack_decision(packed: str) -> dict[str, Any]:
    return dict(_decision_codec().decode(base64.b64decode(packed, validate=True)))


@dataclass
class Fed:
    signals: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # reasons (dead letters of the worker)


class Engine:
    """Applications and dwellings in dicts, the time-driven rules behind a DueIndex."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.apps: dict[str, AppState] = {}
        self.dwellings: dict[str, LogementState] = {}
        self.index = DueIndex()

    def feed(self, schema: str, key: str, record: Mapping[str, Any], now: datetime) -> Fed:
        out = Fed()
        state = self.apps.get(key)
        packed = pack_decision(record) if schema == DECISION and (state is None or not state.known) else None
        step = apply(state, key, schema, record, now, self.ctx, packed=packed)
        if step.rejected:
            out.rejected.append(step.rejected)
            return out
        self.apps[key] = step.state
        out.signals += step.signals
        for fact in step.facts:
            dkey = str(fact["key"])
            dstate, signals = apply_logement(self.dwellings.get(dkey), fact, now, self.ctx)
            self.dwellings[dkey] = dstate
            out.signals += signals
        for pending in step.replay:
            more = self.feed(DECISION, key, unpack_decision(pending), now)
            out.signals += more.signals
            out.rejected += more.rejected
        self.index.add(key, next_due(self.apps[key], self.ctx))
        return out

    def advance(self, today: int, now: datetime | None = None) -> list[dict[str, Any]]:
        """Signals due on or before the day `today` (ordinal), from the applications due only."""
        return list(self.sweep(today, now))

    def sweep(self, today: int, now: datetime | None = None) -> Iterator[dict[str, Any]]:
        """`advance`, one signal at a time (a sweep of the whole stock need not hold them all)."""
        ctx = self.ctx
        apps = self.apps
        for key in self.index.pop_due(today):
            state = apps.get(key)
            if state is None:
                continue
            new, signals = tick(state, key, today, ctx, now)
            if signals:
                apps[key] = new
                yield from signals
            self.index.add(key, next_due(new, ctx))

    def pending(self) -> dict[str, int]:
        """Applications whose Demande never came: numéro unique -> events kept waiting for it."""
        return {k: len(s.pending) for k, s in self.apps.items() if not s.known and s.pending}
