"""The retention flow without Kafka: Demande records move the clock, a command starts the due
erasures (tombstones with the erasure header on every canonical topic), receipts complete them
with one fr.gp.Effacement audit entry; commands and statuses read back what they wrote."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from gateway.codec.avro import load_schemas
from gateway.codec.framing import decoder_for
from gateway.errors import ConfigError, RejectedMessage
from gateway.flows.retention import CANONICAL_KINDS, RetentionCore, expected_stores
from gateway.retention.clock import ERASING, WAITING, Entry
from gateway.retention.messages import Command, Status
from gateway.retention.protocol import DUE_HEADER, ERASURE_HEADER, RADIATION_HEADER
from gateway.settings import GatewaySettings
from gateway.signals.samples import demande

NUM = "035260100000000001"
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def framed(record: dict[str, Any]) -> bytes:
    return load_schemas().codec("fr.gp.Demande").encode_framed(record)


def radiated(num: str = NUM, when: date | None = date(2025, 11, 29)) -> dict[str, Any]:
    record = demande(num, statut="RADIEE")
    if when is not None:
        record["radiation"] = {"motif": "RADATT", "dateRadiation": when}
    return record


def core(stores: tuple[str, ...] = ("canonical", "raw", "route")) -> RetentionCore:
    return RetentionCore(
        load_schemas(), "gp", expected=stores, principal="gp-gateway.retention", clock_fn=lambda: NOW
    )


def test_a_radiated_demande_starts_the_clock_and_a_deradiation_cancels_it() -> None:
    c = core()
    step = c.on_demande(NUM.encode(), framed(radiated()), None)
    entry = step.writes[NUM.encode()]
    assert entry == Entry(WAITING, date(2025, 11, 29), date(2026, 11, 29))
    again = c.on_demande(NUM.encode(), framed(radiated()), entry)
    assert again.writes == {}
    cancelled = c.on_demande(NUM.encode(), framed(demande(NUM)), entry)
    assert cancelled.writes == {NUM.encode(): None}
    assert cancelled.events == ["cancelled"]


def test_an_unreadable_demande_changes_nothing_and_says_why() -> None:
    step = core().on_demande(NUM.encode(), b"\x00garbage", None)
    assert step.writes == {}
    assert step.events == ["illisible"]


def test_a_command_erases_what_is_due_and_receipts_complete_it_with_one_audit_entry() -> None:
    c = core()
    entries = {
        NUM.encode(): Entry(WAITING, date(2025, 11, 29), date(2026, 11, 29)),
        b"035260100000000002": Entry(WAITING, date(2025, 12, 1), date(2026, 12, 1)),  # not due
    }
    step, now = c.start(Command("run", "r1", by="ops-admin"), entries)
    assert now == NOW.date()
    assert [(o.topic, o.key, o.value) for o in step.outputs] == [
        (f"gp.canonical.{k}", NUM.encode(), None) for k in CANONICAL_KINDS
    ]
    assert all(
        o.headers
        == (
            (ERASURE_HEADER, b"r1"),
            (RADIATION_HEADER, b"2025-11-29"),
            (DUE_HEADER, b"2026-11-29"),
        )
        for o in step.outputs
    )
    erasing = step.writes[NUM.encode()]
    assert erasing is not None
    assert erasing.state == ERASING
    assert list(step.writes) == [NUM.encode()]
    status = Status.from_bytes(c.status("r1", 0, [erasing], due=1).value)
    assert (status.erasing, status.missing, status.done) == (1, {"raw": 1, "route": 1}, False)
    # raw purged, then the route's receipt: complete, one audit entry, the entry deleted
    first = c.on_receipt(NUM.encode(), b"raw", [(ERASURE_HEADER, b"r1")], erasing)
    after_raw = first.writes[NUM.encode()]
    assert after_raw is not None
    assert first.outputs == []
    done = c.on_receipt(NUM.encode(), b"route", [(ERASURE_HEADER, b"r1")], after_raw)
    assert done.writes == {NUM.encode(): None}
    assert done.erased == 1
    [audit] = done.outputs
    assert audit.topic == "gp.audit.disclosures"
    assert audit.key == NUM.encode()
    codec = load_schemas().codec("fr.gp.Effacement")
    assert audit.value is not None
    assert audit.value[2:10] == codec.fingerprint
    record = codec.decode(audit.value[10:])
    assert record["numUnique"] == NUM
    assert record["dateRadiation"] == date(2025, 11, 29)
    assert record["dateEffacement"] == date(2026, 11, 29)
    assert record["stores"] == ["canonical", "raw", "route"]
    assert record["par"] == "gp-gateway.retention (retention run r1 asked by ops-admin)"
    # a late or repeated receipt finds nothing to erase: no second audit entry
    late = c.on_receipt(NUM.encode(), b"route", [(ERASURE_HEADER, b"r1")], None)
    assert late.outputs == []
    assert late.events == ["recu-sans-effacement"]


def test_receipts_that_are_not_receipts_are_ignored_with_a_reason() -> None:
    c = core()
    erasing = Entry(ERASING, date(2025, 1, 1), date(2026, 1, 1), request="r", stores=frozenset({"canonical"}))
    for value, headers in ((b"nowhere", [(ERASURE_HEADER, b"r")]), (b"route", [])):
        step = c.on_receipt(NUM.encode(), value, headers, erasing)
        assert (step.writes, step.events) == ({}, ["recu-illisible"])


def test_a_command_later_than_the_workers_clock_is_refused() -> None:
    c = core()
    entries = {NUM.encode(): Entry(WAITING, date(2025, 11, 29), date(2026, 11, 29))}
    step, now = c.start(Command("run", "r1", date(2027, 1, 1)), entries)
    assert now is None
    assert step.outputs == []
    assert "later than the worker's clock" in c.refusal(Command("run", "r1", date(2027, 1, 1)))


def test_an_erasure_under_way_is_re_driven_by_the_next_command_keeping_its_request() -> None:
    c = core()
    erasing = Entry(
        ERASING, date(2025, 1, 1), date(2026, 1, 1), request="r0", stores=frozenset({"canonical", "raw"})
    )
    step, _ = c.start(Command("run", "r1"), {NUM.encode(): erasing})
    assert {o.headers[0] for o in step.outputs} == {(ERASURE_HEADER, b"r0")}
    assert step.writes[NUM.encode()] == erasing
    assert step.events == ["redrive"]


def test_commands_read_back_and_bad_ones_name_the_field() -> None:
    command = Command("run", "r1", date(2026, 1, 2), "ops")
    assert Command.from_bytes(command.to_bytes()) == command
    for bad, field in (
        (b"nope", "$"),
        (b"[]", "$"),
        (b'{"op": "drop", "request": "r"}', "op"),
        (b'{"op": "run", "request": ""}', "request"),
        (b'{"op": "run", "request": "r", "now": "tomorrow"}', "now"),
    ):
        with pytest.raises(ValueError, match=f"^{field.replace('$', '[$]')}:"):
            Command.from_bytes(bad)


def test_expected_stores_default_and_setting() -> None:
    assert expected_stores(GatewaySettings()) == ("canonical", "raw", "route", "signals", "cotation")
    assert expected_stores(GatewaySettings(sne_url="https://sne.example/ws")) == (
        "canonical",
        "raw",
        "route",
        "signals",
        "cotation",
        "sne",
    )
    assert expected_stores(GatewaySettings(retention_stores="canonical,raw")) == ("canonical", "raw")
    with pytest.raises(ConfigError, match="unknown store"):
        expected_stores(GatewaySettings(retention_stores="canonical,disk"))


def test_the_audit_readers_skip_an_erasure_entry_they_do_not_show() -> None:
    audit = load_schemas().codec("fr.gp.AuditEntry")
    c = core(("canonical",))
    erasing = Entry(ERASING, date(2025, 1, 1), date(2026, 1, 1), request="r", stores=frozenset())
    step = c.on_receipt(NUM.encode(), b"canonical", [(ERASURE_HEADER, b"r")], erasing)
    [entry] = step.outputs
    assert entry.value is not None
    # what `gateway audit who-received` and the console's audit lookup decode with
    with pytest.raises(RejectedMessage):
        decoder_for(None, {audit.fingerprint: audit}).decode(entry.value)
