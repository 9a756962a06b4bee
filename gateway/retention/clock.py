"""The clock of erasure (access-rules §5), pure: no Kafka, no system clock, no logging.

An application is erased one year after its radiation. The retention flow keeps one `Entry` per
radiated application (faust table `gp-retention-clock`, key: numéro unique) and asks this module
what each canonical Demande, command and receipt changes:

- `on_demande(entry, record, today)`: a Demande with `statut` RADIEE and `radiation.dateRadiation`
  -> a waiting entry (radiation date, due date = radiation date + 1 year, `due_date`); a later
  Demande not radiated (déradiation) -> the clock is cancelled; a tombstone -> forgotten. A radiated
  Demande without a radiation date is kept as `sans-date`: never erased on a guess (the schema has
  no other date of the radiation: `provenance.dateEvenement` is the date of whichever event the
  record carries), reported by `plan` with its reason until the source sends the date. A
  radiation date later than the clock's day is kept: it is not due before that date + 1 year.
- `start(entry, request)`: the entry is being erased (`effacement`) by `request`; the retention
  flow erased the canonical topics itself in the same step (store `canonical` received).
- `receive(entry, store)`: one more store's receipt; `complete(entry, expected)` when every
  expected store has answered (then one audit entry, and the entry is deleted, or replaced by the
  entry of a Demande received meanwhile: `successor`).
- `plan(entries, now, expected)`: one line per application due by `now`.

An entry holds dates, a state, a request id and store names: no value of the household.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

__all__ = [
    "ERASING",
    "NO_DATE",
    "NO_DATE_REASON",
    "WAITING",
    "Change",
    "Entry",
    "complete",
    "due_date",
    "entries_of",
    "is_due",
    "missing",
    "on_demande",
    "plan",
    "plan_line",
    "receive",
    "start",
]

WAITING = "attente"  # radiated, waiting for its due date
ERASING = "effacement"  # erasure started, waiting for the stores' receipts
NO_DATE = "sans-date"  # radiated without a radiation date: never erased on a guess
NO_DATE_REASON = (
    "radiée sans date de radiation: jamais effacée sur une supposition (la source doit envoyer la date)"
)
_EPOCH = date(1970, 1, 1)
_CODES = {WAITING: "w", ERASING: "e", NO_DATE: "n"}
_STATES = {v: k for k, v in _CODES.items()}


def due_date(radiation: date) -> date:
    """The radiation date plus one year. A radiation on 29 February is due on 1 March of the next
    year: the first day on which a whole year has passed (28 February would erase a day early)."""
    try:
        return radiation.replace(year=radiation.year + 1)
    except ValueError:  # 29 February -> no such day next year
        return date(radiation.year + 1, 3, 1)


@dataclass(frozen=True, slots=True)
class Entry:
    """The clock of one application: its dates and the state of its erasure."""

    state: str  # WAITING | ERASING | NO_DATE
    radiation: date | None = None  # None only for NO_DATE
    due: date | None = None
    request: str | None = None  # ERASING: the request that started the erasure (or "horloge")
    by: str | None = None  # ERASING: the principal that asked for it (`retention run`), if known
    stores: frozenset[str] = frozenset()  # ERASING: the stores that have receipted
    future: bool = False  # the radiation date was later than the clock's day when it was received
    successor: Entry | None = field(default=None, compare=False)  # a Demande received while erasing

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"s": _CODES[self.state]}
        if self.radiation is not None:
            out["r"] = self.radiation.isoformat()
        if self.due is not None:
            out["d"] = self.due.isoformat()
        if self.request is not None:
            out["q"] = self.request
        if self.by is not None:
            out["b"] = self.by
        if self.stores:
            out["g"] = sorted(self.stores)
        if self.future:
            out["f"] = 1
        if self.successor is not None:
            out["n"] = self.successor.to_json()
        return out

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Entry:
        state = _STATES[data["s"]]
        rad, due = data.get("r"), data.get("d")
        succ = data.get("n")
        request, by = data.get("q"), data.get("b")
        return cls(
            state=state,
            radiation=date.fromisoformat(rad) if rad else None,
            due=date.fromisoformat(due) if due else None,
            request=str(request) if request is not None else None,
            by=str(by) if by is not None else None,
            stores=frozenset(str(s) for s in data.get("g", ())),
            future=bool(data.get("f")),
            successor=cls.from_json(succ) if isinstance(succ, Mapping) else None,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Entry:
        """Raises ValueError (or KeyError, TypeError) when `data` is not an entry."""
        loaded = json.loads(data)
        if not isinstance(loaded, dict):
            raise TypeError("a clock entry is a JSON object")
        return cls.from_json(loaded)


@dataclass(frozen=True, slots=True)
class Change:
    """What a Demande did to the clock: the entry to keep (None: none) and what happened, one of
    new, unchanged, cancelled (déradiation), forgotten (tombstone), future (radiation date after
    the clock's day), sans-date, erasing (received while its erasure goes on: kept for after)."""

    entry: Entry | None
    event: str


def _as_date(value: Any) -> date | None:
    """An Avro `date` as decoded (datetime.date), or its raw forms (days since 1970, ISO text)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return _EPOCH + timedelta(days=value)
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _entry_of(record: Mapping[str, Any], today: date) -> Entry | None:
    """The clock a Demande alone implies: None when it is not radiated."""
    if record.get("statut") != "RADIEE":
        return None
    radiation = record.get("radiation")
    when = _as_date(radiation.get("dateRadiation")) if isinstance(radiation, Mapping) else None
    if when is None:
        return Entry(NO_DATE)
    return Entry(WAITING, when, due_date(when), future=when > today)


def on_demande(entry: Entry | None, record: Mapping[str, Any] | None, today: date) -> Change:
    """The clock after a canonical Demande (None: a tombstone) of the application of `entry`."""
    if record is None:
        if entry is None:
            return Change(None, "unchanged")
        if entry.state == ERASING:  # its own erasure tombstone: the receipts finish it
            return Change(entry, "unchanged")
        return Change(None, "forgotten")
    fresh = _entry_of(record, today)
    if entry is not None and entry.state == ERASING:
        return Change(replace(entry, successor=fresh), "erasing")
    if fresh is None:
        return Change(None, "cancelled" if entry is not None else "unchanged")
    if entry is not None and entry.state == fresh.state and entry.radiation == fresh.radiation:
        return Change(entry, "unchanged")
    if fresh.state == NO_DATE:
        return Change(fresh, NO_DATE)
    return Change(fresh, "future" if fresh.future else "new")


def is_due(entry: Entry, now: date) -> bool:
    """True when `entry` must be erased by `now`: waiting and due, or erasing (re-driven)."""
    if entry.state == ERASING:
        return True
    return entry.state == WAITING and entry.due is not None and entry.due <= now


def start(entry: Entry, request: str, by: str | None = None) -> Entry:
    """The entry once its erasure started by `request` (asked by `by`): tombstones written on the
    canonical topics (store `canonical` received). An entry already being erased keeps its request,
    who asked and its receipts."""
    if entry.state == ERASING:
        return replace(entry, stores=entry.stores | {"canonical"})
    return replace(entry, state=ERASING, request=request, by=by, stores=frozenset({"canonical"}))


def receive(entry: Entry, store: str) -> Entry:
    """The entry with one more store's receipt (an entry not being erased does not change)."""
    if entry.state != ERASING:
        return entry
    return replace(entry, stores=entry.stores | {store})


def missing(entry: Entry, expected: Iterable[str]) -> list[str]:
    """The expected stores that have not receipted yet, in the order of `expected`."""
    return [s for s in expected if s not in entry.stores]


def complete(entry: Entry, expected: Iterable[str]) -> bool:
    return entry.state == ERASING and not missing(entry, expected)


def plan_line(num: str, entry: Entry, expected: Iterable[str]) -> str:
    """`<numéro unique> <due date> <stores>`: the stores still to erase (sans-date: its reason)."""
    stores = ",".join(missing(entry, expected) if entry.state == ERASING else expected)
    if entry.state == NO_DATE:
        return f"{num} {NO_DATE} {stores} {NO_DATE_REASON}"
    assert entry.due is not None  # noqa: S101 - WAITING and ERASING entries have a due date
    return f"{num} {entry.due.isoformat()} {stores}"


def plan(entries: Iterable[tuple[str, Entry]], now: date, expected: Iterable[str]) -> Iterator[str]:
    """One line per application due by `now` (waiting and due, or being erased), sorted by due
    date then numéro unique; then the radiated applications without a date, by numéro unique."""
    stores = tuple(expected)
    due: list[tuple[date, str, Entry]] = []
    undated: list[tuple[str, Entry]] = []
    for num, entry in entries:
        if entry.state == NO_DATE:
            undated.append((num, entry))
        elif is_due(entry, now) and entry.due is not None:
            due.append((entry.due, num, entry))
    due.sort(key=lambda item: (item[0], item[1]))
    undated.sort(key=lambda item: item[0])
    for _, num, entry in due:
        yield plan_line(num, entry, stores)
    for num, entry in undated:
        yield plan_line(num, entry, stores)


def entries_of(records: Iterable[tuple[bytes | None, bytes | None]]) -> Iterator[tuple[str, Entry]]:
    """The clock from its changelog, read in order: the latest value of each key (None: deleted),
    each decoded once; unreadable entries are skipped (the worker reads them as none too)."""
    latest: dict[bytes, bytes | None] = {}
    for key, value in records:
        if key:
            latest[key] = value
    for key, value in latest.items():
        if value is None:
            continue
        try:
            entry = Entry.from_bytes(value)
        except (ValueError, KeyError, TypeError):
            continue
        yield key.decode("utf-8", "replace"), entry
