"""The signals flow's part of an erasure (pure): what to tell the dwellings, and where.

An application's state is deleted with its erasure; the dwelling states (another table, keyed by
dwelling) that name it are told by an `erase` fact on `<prefix>.signals.logement`, sent in the
erasure's transaction: one to each dwelling the application's facts went to (`AppState.dwellings`),
or, when they are not known (a state written before the field, or too many), one to every partition,
whose dwelling processor then looks through its own dwellings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from typing import Any

from kafka.partitioner.default import murmur2

from gateway.retention import protocol
from gateway.signals.state import ANY_DWELLING, AppState, LogementState, forget_household

__all__ = ["ERASE", "erase_facts", "erasure_records", "forget", "partition_of", "sweep"]

Record = tuple[str, bytes, bytes | None, tuple[tuple[str, bytes], ...]]  # topic, key, value, headers

ERASE = "erase"  # the fact kind


def partition_of(key: bytes, partitions: int) -> int:
    """The partition the producers' default partitioner (murmur2, as the Java client) gives `key`."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


@lru_cache(maxsize=8)
def _partition_keys(partitions: int) -> tuple[bytes, ...]:
    """One key landing on each partition (an erase fact addressed to every partition)."""
    found: dict[int, bytes] = {}
    n = 0
    while len(found) < partitions:
        key = f"{ANY_DWELLING}{n}".encode()
        found.setdefault(partition_of(key, partitions), key)
        n += 1
    return tuple(found[p] for p in range(partitions))


def erase_facts(state: AppState, num: str, partitions: int) -> list[tuple[bytes, dict[str, Any]]]:
    """(Kafka key, fact) of each `erase` fact the erasure of application `num` sends."""
    if ANY_DWELLING in state.dwellings:
        return [(k, {"kind": ERASE, "key": ANY_DWELLING, "num": num}) for k in _partition_keys(partitions)]
    return [(d.encode(), {"kind": ERASE, "key": d, "num": num}) for d in state.dwellings]


def forget(state: bytes | None, num: str) -> tuple[bool, bytes | None]:
    """(changed, new state or None to delete) of a dwelling's stored state after the erasure of `num`."""
    if state is None or num.encode() not in state:  # cheap: a scan of every dwelling reads bytes
        return False, state
    try:
        current = LogementState.from_bytes(state)
    except (ValueError, TypeError):
        return False, state
    new = forget_household(current, num)
    if new == current:
        return False, state
    return True, None if new is None else new.to_bytes()


def erasure_records(
    state: bytes | None,
    key: bytes,
    request: str,
    *,
    partitions: int,
    logement_topic: str,
    signal_topic: str,
    receipts_topic: str,
) -> list[Record]:
    """What the erasure of application `key` writes: an `erase` fact to the dwellings that name it,
    a tombstone of its signals (one published before the erasure reached the flow goes too), and
    the receipt `signals` (written even when nothing was held)."""
    num = key.decode(errors="replace")
    try:
        current = AppState.from_bytes(state)
    except (ValueError, TypeError):
        current = AppState.from_bytes(b"[]")  # unreadable: its dwellings are unknown, ask them all
    erasure = ((protocol.ERASURE_HEADER, request.encode()),)
    out: list[Record] = []
    if state is not None:
        out += [
            (logement_topic, k, json.dumps(f, separators=(",", ":")).encode(), erasure)
            for k, f in erase_facts(current, num, partitions)
        ]
    out.append((signal_topic, key, None, erasure))
    out.append((receipts_topic, *protocol.receipt(num, "signals", request)))
    return out


def sweep(
    keys: Iterable[bytes],
    get: Callable[[bytes], bytes | None],
    partition: int,
    partitions: int,
    value: bytes | None,
) -> Iterator[tuple[bytes, bytes | None]]:
    """(dwelling key, new state or None to delete) of each dwelling of `partition` that names the
    household of the `erase` fact `value` sent to every partition."""
    try:
        num = str(json.loads(value or b"")["num"])
    except (ValueError, TypeError, KeyError):
        return
    for key in keys:
        if key and partition_of(key, partitions) == partition:
            changed, new = forget(get(key), num)
            if changed:
                yield key, new
