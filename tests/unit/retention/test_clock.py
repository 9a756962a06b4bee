"""The clock of erasure, without a broker: radiation, déradiation, leap day, future and missing
dates, the receipts and the plan's order."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from gateway.retention.clock import (
    ERASING,
    NO_DATE,
    NO_DATE_REASON,
    WAITING,
    Entry,
    complete,
    due_date,
    entries_of,
    is_due,
    missing,
    on_demande,
    plan,
    receive,
    start,
)

TODAY = date(2026, 11, 30)
STORES = ("canonical", "raw", "route")


def demande(statut: str = "RADIEE", radiated: Any = date(2025, 3, 10)) -> dict[str, Any]:
    radiation = None if radiated is None else {"motif": "RADATT", "dateRadiation": radiated}
    return {"numUnique": "035260100000000001", "statut": statut, "radiation": radiation}


def test_a_radiation_with_its_date_starts_the_clock_one_year_later() -> None:
    change = on_demande(None, demande(radiated=date(2025, 3, 10)), TODAY)
    assert change.event == "new"
    assert change.entry == Entry(WAITING, date(2025, 3, 10), date(2026, 3, 10))


def test_the_raw_avro_forms_of_a_date_are_read_too() -> None:
    days = (date(2025, 3, 10) - date(1970, 1, 1)).days
    assert on_demande(None, demande(radiated=days), TODAY).entry == Entry(
        WAITING, date(2025, 3, 10), date(2026, 3, 10)
    )
    assert on_demande(None, demande(radiated="2025-03-10"), TODAY).entry == Entry(
        WAITING, date(2025, 3, 10), date(2026, 3, 10)
    )


def test_29_february_is_due_on_1_march_and_never_a_day_early() -> None:
    assert due_date(date(2024, 2, 29)) == date(2025, 3, 1)
    assert due_date(date(2024, 2, 28)) == date(2025, 2, 28)
    assert due_date(date(2024, 3, 1)) == date(2025, 3, 1)
    entry = on_demande(None, demande(radiated=date(2024, 2, 29)), TODAY).entry
    assert entry is not None
    assert not is_due(entry, date(2025, 2, 28))
    assert is_due(entry, date(2025, 3, 1))


def test_due_on_its_date_not_the_day_before() -> None:
    entry = Entry(WAITING, date(2025, 11, 30), date(2026, 11, 30))
    assert not is_due(entry, date(2026, 11, 29))
    assert is_due(entry, date(2026, 11, 30))


def test_a_deradiation_cancels_the_clock() -> None:
    entry = on_demande(None, demande(), TODAY).entry
    change = on_demande(entry, demande(statut="ACTIVE", radiated=None), TODAY)
    assert on_demande(None, demande(statut="ACTIVE", radiated=None), TODAY).event == "unchanged"
    assert change.entry is None
    assert change.event == "cancelled"


def test_an_active_record_that_still_carries_a_radiation_is_not_radiated() -> None:
    assert on_demande(None, demande(statut="ACTIVE"), TODAY).entry is None


def test_a_tombstone_forgets_a_waiting_entry_but_not_an_erasure_under_way() -> None:
    waiting = on_demande(None, demande(), TODAY).entry
    assert on_demande(waiting, None, TODAY).event == "forgotten"
    assert on_demande(waiting, None, TODAY).entry is None
    assert waiting is not None
    erasing = start(waiting, "r1")
    assert on_demande(erasing, None, TODAY).entry == erasing
    assert on_demande(None, None, TODAY).entry is None


def test_a_radiation_date_in_the_future_is_kept_and_not_due_before_its_date_plus_a_year() -> None:
    change = on_demande(None, demande(radiated=date(2027, 1, 5)), TODAY)
    assert change.event == "future"
    assert change.entry is not None
    assert change.entry.future
    assert change.entry.due == date(2028, 1, 5)
    assert not is_due(change.entry, date(2028, 1, 4))
    # the same record again is no new event (the reason is given once)
    assert on_demande(change.entry, demande(radiated=date(2027, 1, 5)), TODAY).event == "unchanged"


def test_a_radiation_without_date_is_never_due_and_planned_with_its_reason() -> None:
    change = on_demande(None, demande(radiated=None), TODAY)
    assert change.event == NO_DATE
    assert change.entry == Entry(NO_DATE)
    assert not is_due(change.entry, date(2099, 1, 1))
    line = next(plan([("035260100000000009", change.entry)], TODAY, STORES))
    assert line == f"035260100000000009 sans-date canonical,raw,route {NO_DATE_REASON}"
    # the date arrives later: the clock starts from it
    dated = on_demande(change.entry, demande(radiated=date(2025, 1, 2)), TODAY)
    assert dated.entry == Entry(WAITING, date(2025, 1, 2), date(2026, 1, 2))


def test_a_changed_radiation_date_moves_the_clock() -> None:
    entry = on_demande(None, demande(radiated=date(2025, 3, 10)), TODAY).entry
    moved = on_demande(entry, demande(radiated=date(2025, 6, 1)), TODAY)
    assert moved.event == "new"
    assert moved.entry is not None
    assert moved.entry.due == date(2026, 6, 1)


def test_erasure_completes_only_when_every_expected_store_has_receipted() -> None:
    entry = on_demande(None, demande(), TODAY).entry
    assert entry is not None
    erasing = start(entry, "r1")
    assert erasing.state == ERASING
    assert erasing.request == "r1"
    assert missing(erasing, STORES) == ["raw", "route"]
    assert not complete(erasing, STORES)
    erasing = receive(erasing, "raw")
    assert not complete(erasing, STORES)
    erasing = receive(receive(erasing, "route"), "route")
    assert complete(erasing, STORES)
    # re-driven by a later request: it keeps its request and its receipts
    again = start(receive(start(entry, "r1"), "raw"), "r2")
    assert again.request == "r1"
    assert missing(again, STORES) == ["route"]
    # a receipt for an entry not being erased changes nothing
    assert receive(entry, "raw") == entry
    assert not complete(entry, ())


def test_a_demande_received_while_erasing_is_kept_for_after_the_erasure() -> None:
    entry = on_demande(None, demande(), TODAY).entry
    assert entry is not None
    erasing = start(entry, "r1")
    change = on_demande(erasing, demande(radiated=date(2026, 1, 1)), TODAY)
    assert change.event == "erasing"
    assert change.entry is not None
    assert change.entry.state == ERASING
    assert change.entry.successor == Entry(WAITING, date(2026, 1, 1), date(2027, 1, 1))
    cancelled = on_demande(change.entry, demande(statut="ACTIVE", radiated=None), TODAY)
    assert cancelled.entry is not None
    assert cancelled.entry.successor is None


@pytest.mark.parametrize(
    "entry",
    [
        Entry(WAITING, date(2025, 3, 10), date(2026, 3, 10), future=True),
        Entry(NO_DATE),
        Entry(
            ERASING,
            date(2024, 2, 29),
            date(2025, 3, 1),
            request="r9",
            by="ops-admin",
            stores=frozenset({"canonical", "raw"}),
            successor=Entry(WAITING, date(2026, 1, 1), date(2027, 1, 1)),
        ),
    ],
)
def test_entries_round_trip_through_their_bytes(entry: Entry) -> None:
    back = Entry.from_bytes(entry.to_bytes())
    assert back == entry
    assert back.successor == entry.successor
    assert b"RADATT" not in entry.to_bytes()


def test_unreadable_entries_raise() -> None:
    for bad in (b"[]", b"{}", b"not json", b'{"s": "?"}'):
        with pytest.raises((ValueError, KeyError, TypeError)):
            Entry.from_bytes(bad)


def test_plan_lists_what_is_due_by_due_date_then_numero() -> None:
    entries = [
        ("035260100000000003", Entry(WAITING, date(2025, 5, 1), date(2026, 5, 1))),
        ("035260100000000002", Entry(WAITING, date(2025, 1, 1), date(2026, 1, 1))),
        ("035260100000000001", Entry(WAITING, date(2025, 5, 1), date(2026, 5, 1))),
        ("035260100000000004", Entry(WAITING, date(2026, 1, 1), date(2027, 1, 1))),  # not due
        ("035260100000000006", Entry(NO_DATE)),
        (
            "035260100000000005",
            Entry(
                ERASING,
                date(2024, 1, 1),
                date(2025, 1, 1),
                request="r",
                stores=frozenset({"canonical"}),
            ),
        ),
    ]
    lines = list(plan(entries, date(2026, 6, 1), STORES))
    assert lines == [
        "035260100000000005 2025-01-01 raw,route",
        "035260100000000002 2026-01-01 canonical,raw,route",
        "035260100000000001 2026-05-01 canonical,raw,route",
        "035260100000000003 2026-05-01 canonical,raw,route",
        f"035260100000000006 sans-date canonical,raw,route {NO_DATE_REASON}",
    ]
    assert next(iter(plan(entries, date(2025, 12, 31), STORES))).startswith("035260100000000005 ")


def test_the_clock_is_read_back_from_its_changelog_latest_value_per_key() -> None:
    a = Entry(WAITING, date(2025, 1, 1), date(2026, 1, 1))
    b = Entry(NO_DATE)
    records = [
        (b"A", b.to_bytes()),
        (b"A", a.to_bytes()),
        (b"B", a.to_bytes()),
        (b"B", None),  # deleted: erased or cancelled
        (b"C", b"not json"),
        (None, a.to_bytes()),
    ]
    assert list(entries_of(records)) == [("A", a)]
