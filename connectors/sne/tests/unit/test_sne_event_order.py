"""The SNE connector sends a batch's facts in the order they happened, whatever the order the demand
and decision topics were read in; erasure tombstones are barriers nothing moves across."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.sne.connector import in_event_order
from gateway.connectors import SinkRecord
from gateway.retention import protocol


def _rec(name: str, day: int | None, schema: str = "fr.gp.Decision") -> SinkRecord:
    record: dict[str, Any] = {"numUnique": "035260100000000001", "name": name}
    if day is not None:
        record["provenance"] = {"dateEvenement": datetime(2026, 3, day, tzinfo=UTC)}
    return SinkRecord(schema, "k", record, topic="t", partition=0, offset=day or 0)


def _names(batch: list[SinkRecord]) -> list[str]:
    return [str(r.record.get("name", r.schema)) for r in batch]


def test_facts_read_out_of_order_are_sent_in_the_order_they_happened() -> None:
    cal, radiation = _rec("cal", 5), _rec("radiation", 2)
    assert _names(in_event_order([cal, radiation])) == ["radiation", "cal"]
    assert _names(in_event_order([radiation, cal])) == ["radiation", "cal"]


def test_same_time_keeps_the_read_order_and_undated_facts_go_first() -> None:
    a, b, undated = _rec("a", 3), _rec("b", 3), _rec("undated", None)
    assert _names(in_event_order([a, b, undated])) == ["undated", "a", "b"]


def test_nothing_moves_across_an_erasure_tombstone() -> None:
    tomb = SinkRecord(protocol.TOMBSTONE_SCHEMA, "k", {"numUnique": "x"}, topic="t", partition=0, offset=9)
    late_before, early_after = _rec("late", 9), _rec("early", 1)
    got = _names(in_event_order([late_before, tomb, early_after]))
    assert got == ["late", protocol.TOMBSTONE_SCHEMA, "early"]
