"""Source normalisers: raw bytes of one of five source formats -> canonical Avro records.

`normalise(fmt, data)` never raises for any bytes: every part of the input yields either a
`CanonicalRecord` (which fits its Avro schema) or a `Rejection` listing every problem found in it.
Only an unknown format name is an error (ConfigError).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import fastavro.validation

from gateway.codec.avro import load_schemas
from gateway.errors import ConfigError, Problem
from gateway.formats import FORMATS, INPUT_FORMATS
from gateway.model.canonical import CanonicalRecord
from gateway.normalise.common import unique
from gateway.normalise.demande import check_sne_mandatory
from gateway.normalise.limits import (
    GARBAGE_MIN_PARTS,
    GARBAGE_RATIO,
    MAX_BYTES,
    MAX_INPUT_BYTES,
    MAX_PROBLEMS,
)
from gateway.normalise.outcome import INTERNAL_ERROR, Outcome, Rejection
from gateway.normalise.textrules import reset_today, set_today
from gateway.normalise.values import PARIS

__all__ = [
    "FORMATS",
    "INTERNAL_ERROR",
    "MAX_BYTES",
    "MAX_INPUT_BYTES",
    "Outcome",
    "Rejection",
    "check_sne_mandatory",
    "normalise",
]

GARBAGE_SHOWN = 10  # distinct problems kept in the one rejection of a mostly unreadable input
_log = logging.getLogger(__name__)

Normaliser = Callable[[bytes, datetime], list[Outcome]]


# format -> "module:function" (imported on first use), from the one registry of formats
_NORMALISERS = {f.name: f.normaliser for f in INPUT_FORMATS}


def _normaliser(fmt: str) -> Normaliser:
    target = _NORMALISERS.get(fmt) if isinstance(fmt, str) else None
    if target is None:
        raise ConfigError(f"unknown input format {fmt!r}; known formats: {', '.join(FORMATS)}")
    module, attr = target.split(":")
    function: Normaliser = getattr(importlib.import_module(module), attr)
    return function


def normalise(
    fmt: str, data: bytes, *, received_at: datetime | None = None, check: bool = True
) -> list[Outcome]:
    """Normalise `data` of format `fmt` (one of FORMATS). Never raises except ConfigError for `fmt`.

    check=False skips the safety net that validates each record against its schema: for a caller
    that encodes with `AvroCodec.encode_checked`, which refuses exactly the same records (the ingest
    flow), so the record is checked once, not twice."""
    normaliser = _normaliser(fmt)
    when = received_at or datetime.now(UTC)
    if not isinstance(data, bytes | bytearray | memoryview):
        return [Rejection((Problem("$", "not bytes", type(data).__name__),), "$")]
    data = bytes(data)
    limit = MAX_BYTES.get(fmt, MAX_INPUT_BYTES)
    if len(data) > limit:
        value = f"{len(data)} bytes, limit {limit} for {fmt}"
        return [Rejection((Problem("$", "too large", value),), "$")]
    # dates of past facts may not be after today: the later of the reception day and the clock's
    # (a record's Kafka timestamp can be old, or 0: it must not make a real birth date "future")
    token = set_today(max(when.astimezone(PARIS).date(), datetime.now(PARIS).date()))
    try:
        outcomes = normaliser(data, when)
    except RecursionError:
        return [Rejection((Problem("$", "too deeply nested"),), "$")]
    except Exception as exc:  # noqa: BLE001 - the contract: bad input never escapes as an exception
        _log.warning("normaliser %s failed on an input: %s (internal error)", fmt, type(exc).__name__)
        return [Rejection((Problem("$", INTERNAL_ERROR, type(exc).__name__),), "$")]
    finally:
        reset_today(token)
    outcomes = [_capped(o) for o in mostly_unreadable(outcomes)]
    return [_checked(o) for o in outcomes] if check else outcomes


def _capped(outcome: Outcome) -> Outcome:
    """A rejection lists at most MAX_PROBLEMS problems, then how many more there were."""
    if not isinstance(outcome, Rejection) or len(outcome.problems) <= MAX_PROBLEMS:
        return outcome
    more = Problem("$", f"{len(outcome.problems) - MAX_PROBLEMS} more problems not listed")
    return Rejection((*outcome.problems[:MAX_PROBLEMS], more), outcome.locator, outcome.fragment)


def mostly_unreadable(outcomes: list[Outcome]) -> list[Outcome]:
    """One rejection for a multi-record input that is mostly unreadable (a wrong format, a binary
    file): at least GARBAGE_MIN_PARTS rejected parts, more than GARBAGE_RATIO of its parts. Its good
    parts are not sent on either (they are suspect); the whole input is the dead letter."""
    bad = [o for o in outcomes if isinstance(o, Rejection)]
    if len(bad) < GARBAGE_MIN_PARTS or len(bad) <= GARBAGE_RATIO * len(outcomes):
        return outcomes
    summary = Problem("$", f"mostly unreadable: {len(bad)} of {len(outcomes)} parts rejected")
    shown = unique(Problem(p.path, p.reason, p.value) for r in bad for p in r.problems)[:GARBAGE_SHOWN]
    return [Rejection((summary, *shown), "$")]


def _checked(outcome: Outcome) -> Outcome:
    """Safety net: a record that does not fit its schema becomes a rejection (never sent on)."""
    if isinstance(outcome, Rejection):
        return outcome
    codec = load_schemas().codec(outcome.schema)
    try:  # fast path: a boolean check is ~10x cheaper than collecting fastavro's error details
        if fastavro.validation.validate(outcome.record, codec.parsed, raise_errors=False):
            return outcome
    except Exception:  # noqa: BLE001, S110 - fastavro raises assorted errors; fall back to the full check
        pass
    problems = codec.problems(outcome.record) or [Problem(outcome.schema, "does not match the schema")]
    if problems:
        return Rejection(tuple(problems), outcome.key)
    return outcome


__all__ += ["CanonicalRecord"]
