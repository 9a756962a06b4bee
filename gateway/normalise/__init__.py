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
from gateway.normalise.demande import check_sne_mandatory
from gateway.normalise.outcome import Outcome, Rejection

__all__ = [
    "FORMATS",
    "INTERNAL_ERROR",
    "MAX_INPUT_BYTES",
    "Outcome",
    "Rejection",
    "check_sne_mandatory",
    "normalise",
]

MAX_INPUT_BYTES = 16 * 1024 * 1024

INTERNAL_ERROR = "cannot be normalised (internal error)"
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
    if len(data) > MAX_INPUT_BYTES:
        return [Rejection((Problem("$", "too large", f"{len(data)} bytes"),), "$")]
    try:
        outcomes = normaliser(data, when)
    except RecursionError:
        return [Rejection((Problem("$", "too deeply nested"),), "$")]
    except Exception as exc:  # noqa: BLE001 - the contract: bad input never escapes as an exception
        _log.warning("normaliser %s failed on an input: %s (internal error)", fmt, type(exc).__name__)
        return [Rejection((Problem("$", INTERNAL_ERROR, type(exc).__name__),), "$")]
    return [_checked(o) for o in outcomes] if check else outcomes


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
