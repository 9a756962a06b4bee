"""The SNE connector's erasure (simulator in a thread, no broker): through the sink runtime, the
demand topic's erasure tombstone deletes the application's ledger rows, leaves no value of it in the
database or its WAL, and gives the receipt; other tombstones change nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from connectors.sne.connector import SneSink
from connectors.sne.ledger import POLLED_KEPT_S, Ledger
from connectors.sne.testing import demande, sink_config
from gateway.codec.avro import encode_single_object, load_schemas
from gateway.flows.egress import RetryPolicy, process_envelopes
from gateway.model.envelope import Envelope
from gateway.retention import protocol

REFERENCE = "ERP-MARQUEUR-9Z"  # a value of the application that the ledger keeps (creations, meta)
FAST = RetryPolicy(attempts=2, base_delay=0.0, max_delay=0.0)


def _files(db: Path) -> list[Path]:
    return [f for f in (db, db.with_name(db.name + "-wal")) if f.exists()]


def _run(sink: SneSink, envs: list[Envelope]) -> Any:
    return asyncio.run(process_envelopes(sink, envs, retry=FAST))


def _tombstone(topic: str, key: bytes, headers: tuple[tuple[str, bytes], ...], offset: int) -> Envelope:
    return Envelope(None, key=key, topic=topic, partition=0, offset=offset, headers=headers)  # type: ignore[arg-type]


def test_the_erasure_tombstone_deletes_the_ledger_rows_and_leaves_no_value_behind(
    simulator: Any, tmp_path: Path
) -> None:
    sink = SneSink(sink_config(simulator.certs, simulator.port, tmp_path), state_dir=tmp_path)
    value = encode_single_object(load_schemas().codec("Demande"), demande(REFERENCE, nom="Marqueurnom"))
    other = encode_single_object(load_schemas().codec("Demande"), demande("ERP-AUTRE", nom="Autre"))
    envs = [
        Envelope(v, key=b"k", topic="gp.canonical.demande", partition=0, offset=n)
        for n, v in enumerate((value, other), 1)
    ]
    first = _run(sink, envs)
    assert first.written == 2 and not first.dead
    num = sink.ledger.created("200000001", REFERENCE)
    assert num is not None
    db = sink.ledger.path
    markers = [num.encode(), REFERENCE.encode()]
    assert any(m in f.read_bytes() for f in _files(db) for m in markers)  # the values were written

    headers = ((protocol.ERASURE_HEADER, b"req-5"),)
    skipped = _run(sink, [
        _tombstone("gp.canonical.demande", num.encode(), (), 3),  # no header: not an erasure
        _tombstone("gp.canonical.decision", num.encode(), headers, 4),  # compaction only
    ])  # fmt: skip
    assert not skipped.outputs and not skipped.dead and sink.ledger.created("200000001", REFERENCE) == num

    erased = _run(sink, [_tombstone("gp.canonical.demande", num.encode(), headers, 5)])
    assert not erased.dead
    assert [(o.topic, o.key, o.value, o.headers) for o in erased.outputs] == [
        ("gp.retention.receipts", num.encode(), b"sne", headers)
    ]
    assert sink.ledger.created("200000001", REFERENCE) is None
    assert sink.ledger.created("200000001", "ERP-AUTRE") is not None  # the other application stays
    assert not [f.name for f in _files(db) for m in markers if m in f.read_bytes()]
    sink.close()
    assert not [f.name for f in _files(db) for m in markers if m in f.read_bytes()]


def test_an_application_the_ledger_never_held_still_gets_its_receipt(simulator: Any, tmp_path: Path) -> None:
    sink = SneSink(sink_config(simulator.certs, simulator.port, tmp_path), state_dir=tmp_path)
    headers = ((protocol.ERASURE_HEADER, b""),)  # an empty request id: the clock's
    out = _run(sink, [_tombstone("gp.canonical.demande", b"035260100000000042", headers, 1)])
    assert [(o.key, o.value, o.headers) for o in out.outputs] == [
        (b"035260100000000042", b"sne", ((protocol.ERASURE_HEADER, protocol.CLOCK.encode()),))
    ]
    sink.close()


def test_polled_event_ids_are_forgotten_after_a_month_and_a_day(tmp_path: Path) -> None:
    # the ids hash the numéro unique: kept only while a poll can list their item again
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        start = 1_800_000_000.0
        ledger.mark_seen(["old"], now=start)
        ledger.mark_seen(["recent"], now=start + POLLED_KEPT_S - 60)
        assert ledger.unseen(["old", "recent", "new"]) == {"new"}
        ledger.mark_seen(["new"], now=start + POLLED_KEPT_S + 1)
        assert ledger.unseen(["old", "recent", "new"]) == {"old"}
    finally:
        ledger.close()
