"""The erasure protocol shared by every processor that holds an application's data.

How an erasure travels (docs/retention.md):
1. The retention flow (`gateway/flows/retention.py`) follows radiations on the canonical demand
   topic. When an application is due (radiation date + 1 year, by the gateway's clock), it writes a
   **tombstone** (value null) keyed by the numéro unique on every canonical topic keyed by numéro
   unique, each with the header `ERASURE_HEADER` (value: the request id, or `horloge`).
2. Every processor that keeps state about applications consumes `<prefix>.canonical.demande`; on a
   tombstone carrying `ERASURE_HEADER` it deletes everything it holds about that numéro unique, in
   the same transaction as its other writes, then writes a **receipt** to
   `topics.retention_topic("receipts")`: key = numéro unique, value = its store name (one of
   `STORES`), headers `ERASURE_HEADER` (copied). A processor that holds nothing about it still
   writes its receipt (erasing nothing is a completed erasure).
3. The route flow also sends a `fr.gp.Effacement` record to the actor topic of every recipient
   that received anything about the application, so that the recipient erases its own copy (the
   sink runtime passes it on as a delete).
4. When the retention flow holds a receipt from every expected store, it writes one
   `fr.gp.Effacement` audit entry (with every store) to the audit topic and forgets the clock entry.

A tombstone without `ERASURE_HEADER` is not an erasure: processors ignore it.

The demande tombstone also carries `RADIATION_HEADER` and `DUE_HEADER` (ISO dates): the radiation
that started the clock and the erasure's due date, copied into the `fr.gp.Effacement` the route flow
sends (a tombstone without them: the Effacement carries the day of the erasure for both).
A sink that holds an application's data read from the canonical topics (the SNE connector) opts in
with `erasure_tombstones = True`: the sink runtime then hands it each demande erasure tombstone, in
order with its other records, as a `SinkRecord` of schema `TOMBSTONE_SCHEMA` (record: `numUnique`,
`request`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

__all__ = [
    "CLOCK",
    "DUE_HEADER",
    "ERASURE_HEADER",
    "ERASURE_SCHEMA",
    "RADIATION_HEADER",
    "REQUEST_HEADER",
    "STORES",
    "TOMBSTONE_SCHEMA",
    "erasure_dates",
    "erasure_of",
    "receipt",
]

ERASURE_SCHEMA = "fr.gp.Effacement"
ERASURE_HEADER = "gp.erasure"  # on tombstones and receipts: the request id, or CLOCK
REQUEST_HEADER = ERASURE_HEADER  # one header: the name says what it is, the value which request
CLOCK = "horloge"  # the request id of erasures the daily clock started
RADIATION_HEADER = "gp.erasure.radiation"  # on the demande tombstone: ISO date of the radiation
DUE_HEADER = "gp.erasure.due"  # on the demande tombstone: ISO due date of the erasure
TOMBSTONE_SCHEMA = "gp.erasure.tombstone"  # schema of the SinkRecord of an erasure tombstone

# Every store that can hold an application's data, by the name receipts and audit entries use.
STORES: dict[str, str] = {
    "canonical": "tombstones on the canonical topics keyed by numéro unique (retention flow)",
    "raw": "raw topics purged up to what the ingest has consumed (retention flow)",
    "route": "route flow's scope state and its changelog; an Effacement sent to each recipient",
    "signals": "signals flow's application state and its changelog",
    "cotation": "cotation flow's state and its changelog",
    "sne": "SNE connector's ledger (database rows and write-ahead log)",
}


def erasure_of(headers: Iterable[tuple[str, bytes | None]] | None) -> str | None:
    """The request id of an erasure tombstone's headers, or None when the record is no erasure."""
    for name, value in headers or ():
        if name == ERASURE_HEADER:
            return (value or b"").decode("utf-8", "replace") or CLOCK
    return None


def receipt(num_unique: str, store: str, request: str) -> tuple[bytes, bytes, tuple[tuple[str, bytes], ...]]:
    """(key, value, headers) of the receipt `store` writes once it erased `num_unique`."""
    if store not in STORES:
        raise ValueError(f"unknown store {store!r}; known: {', '.join(STORES)}")
    return num_unique.encode(), store.encode(), ((ERASURE_HEADER, request.encode()),)


def erasure_dates(headers: Iterable[tuple[str, bytes | None]] | None, today: date) -> tuple[date, date]:
    """(radiation date, due date) of an erasure tombstone's headers; `today` for a missing or
    unreadable one (the Effacement is still sent: a wrong date is better than a forgotten copy)."""
    found: dict[str, date] = {}
    for name, value in headers or ():
        if name in (RADIATION_HEADER, DUE_HEADER) and value:
            try:
                found[name] = date.fromisoformat(value.decode("ascii", "replace").strip())
            except ValueError:
                continue
    return found.get(RADIATION_HEADER, today), found.get(DUE_HEADER, today)
