"""Per-application and per-dwelling state of the signal processors: plain, compact, serialisable.

`AppState` is what the processors keep per numéro unique (dates as proleptic ordinals, a few
codes, the labels, the refusals counted): about 200 bytes of JSON, so that the national stock
(2.7 M applications) fits in memory and its daily sweep touches only the applications due
(`DueIndex`). `LogementState` is kept per dwelling, to match a lease with the ranked CAL decisions
of the other candidates (ATTRIBUE_NON_LOGE).
"""

from __future__ import annotations

import base64
import calendar
import json
from dataclasses import dataclass, field, fields, replace
from datetime import date
from functools import lru_cache
from typing import Any, NamedTuple

__all__ = [
    "AppState",
    "Candidate",
    "DueIndex",
    "Label",
    "LogementState",
    "add_months",
    "forget_household",
    "from_ordinal",
]

MAX_PENDING = 20  # events kept per application while its Demande is unknown
MAX_CANDIDATES = 60  # ranked CAL decisions kept per dwelling
MAX_DWELLINGS = 40  # dwellings remembered per application (for its erasure); beyond: ANY_DWELLING
ANY_DWELLING = "*"  # the dwellings of an application are not known (a state older than the field)


@lru_cache(maxsize=1 << 16)
def add_months(day: int, months: int) -> int:
    """The ordinal `months` after the ordinal `day` (31 January + 1 month = 28/29 February)."""
    d = date.fromordinal(day)
    total = d.month - 1 + months
    year, month = d.year + total // 12, total % 12 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1])).toordinal()


def from_ordinal(day: int) -> date:
    return date.fromordinal(day)


class Label(NamedTuple):
    """A priority label of an application (Decision field label | labelSante | labelViolences)."""

    field: str
    categorie: str
    body: str
    date_label: int
    date_fin: int  # 0: no end
    contingents: tuple[str, ...]
    expired: bool  # its EXPIRE signal was emitted
    event_id: str

    @property
    def ident(self) -> tuple[str, str, str]:
        return (self.field, self.categorie, self.body)


@dataclass(slots=True)
class AppState:
    """What the signal processors know of one application. Stored as a JSON list in field order:
    add new fields at the end only (older states then read with the new field's default)."""

    known: bool = False  # a Demande was seen
    active: bool = True
    dept: str = ""
    commune: str = ""  # first wanted commune
    type_logement: str = ""  # first wanted dwelling type
    origin: str = ""  # guichet that registered it (provenance of time-driven signals)
    created: int = 0  # filing date (ordinal)
    renewed: int = 0  # last renewal, else filing date (ordinal)
    first_proposal: int = 0  # earliest designation (ordinal), 0: none
    delai_fired: int = 0  # due date of the DELAI_ANORMAL_DEPASSE emitted
    radier_fired: int = 0  # renewal due date of the A_RADIER (non-renewal) emitted
    irrecevable: int = 0  # date of a CAL irrecevabilité decision
    irrecevable_fired: bool = False
    refusals: tuple[tuple[str, bool], ...] = ()  # (eventId, with a motif)
    labels: tuple[Label, ...] = ()
    pending: tuple[str, ...] = ()  # base64 Avro Decisions received before the Demande
    event_ids: tuple[str, ...] = field(default=())  # own events the signals came from (last few)
    # keys of the dwellings whose state names it (its erasure clears them); ANY_DWELLING: unknown
    dwellings: tuple[str, ...] = field(default=())

    def to_bytes(self) -> bytes:
        out: list[Any] = []
        for f in fields(self):
            value = getattr(self, f.name)
            out.append([list(x) for x in value] if f.name in ("labels", "refusals") else value)
        return json.dumps(out, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes | None) -> AppState:
        """ValueError / TypeError when the bytes are not a state written by `to_bytes`."""
        if not data:
            return cls()
        raw = json.loads(data)
        names = [f.name for f in fields(cls)]
        if not isinstance(raw, list) or len(raw) > len(names):
            raise TypeError("not a signals application state")
        # fields are only ever appended: a state written before a new field takes its default
        values = dict(zip(names, raw, strict=False))
        for name in names[len(raw) :]:
            values[name] = getattr(cls(), name)
        if "dwellings" in names[len(raw) :]:  # written before the field: any dwelling may name it
            values["dwellings"] = (ANY_DWELLING,)
        values["labels"] = tuple(_label(x) for x in values["labels"])
        values["refusals"] = tuple((str(a), bool(b)) for a, b in values["refusals"])
        values["pending"] = tuple(values["pending"])
        values["event_ids"] = tuple(values["event_ids"])
        values["dwellings"] = tuple(str(d) for d in values["dwellings"])
        return cls(**values)

    def with_dwellings(self, keys: list[str]) -> AppState:
        """The state remembering the dwellings `keys` (facts about this application were sent there)."""
        new = [k for k in dict.fromkeys(keys) if k not in self.dwellings]
        if not new or ANY_DWELLING in self.dwellings:
            return self
        known = (*self.dwellings, *new)
        return replace(self, dwellings=known if len(known) <= MAX_DWELLINGS else (ANY_DWELLING,))

    @staticmethod
    def pack(record_bytes: bytes) -> str:
        return base64.b64encode(record_bytes).decode()


def _label(raw: list[Any]) -> Label:
    field_, categorie, body, date_label, date_fin, contingents, expired, event_id = raw
    return Label(
        str(field_),
        str(categorie),
        str(body),
        int(date_label),
        int(date_fin),
        tuple(str(c) for c in contingents),
        bool(expired),
        str(event_id),
    )


class Candidate(NamedTuple):
    """A ranked CAL decision of one household on a dwelling (kept by the dwelling's state)."""

    num: str
    rang: int | None  # None: attribution without rank (counts as rank 1 for the signer)
    date_cal: int
    commission: str
    event_id: str


@dataclass(slots=True)
class LogementState:
    """One dwelling: the candidates of its CAL decisions, their designators, its lease."""

    logement: dict[str, Any] = field(
        default_factory=dict
    )  # rpls, referenceBailleur, sirenBailleur, commune, typeLogement
    candidates: tuple[Candidate, ...] = ()
    designataires: tuple[tuple[str, str], ...] = ()  # (numéro unique, designating organisation)
    lease: tuple[str, int, str] | None = None  # (numéro unique, date, organisation) of the signer
    fired: tuple[str, ...] = ()  # households flagged ATTRIBUE_NON_LOGE for the current lease

    def to_bytes(self) -> bytes:
        return json.dumps(
            [
                self.logement,
                [list(c) for c in self.candidates],
                [list(d) for d in self.designataires],
                list(self.lease) if self.lease else None,
                list(self.fired),
            ],
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes | None) -> LogementState:
        if not data:
            return cls()
        raw = json.loads(data)
        if not isinstance(raw, list) or len(raw) != 5:
            raise TypeError("not a signals dwelling state")
        logement, cands, des, lease, fired = raw
        return cls(
            dict(logement),
            tuple(Candidate(*c) for c in cands),
            tuple((str(a), str(b)) for a, b in des),
            (str(lease[0]), int(lease[1]), str(lease[2])) if lease else None,
            tuple(fired),
        )


class DueIndex:
    """Keys by the day their next time-driven signal is due: the daily sweep reads only the buckets
    of the days that passed, never the whole stock. A key may sit in several buckets (its state
    changed): the sweep recomputes the due day from the state, so a stale entry costs one lookup."""

    __slots__ = ("_buckets", "_days", "_gone")

    def __init__(self) -> None:
        self._buckets: dict[int, list[str]] = {}
        self._days: list[int] = []  # sorted days with a bucket (a bisect-kept list: few thousand days)
        self._gone: set[str] = set()  # forgotten keys still in a bucket (dropped when popped)

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def add(self, key: str, day: int | None) -> None:
        if day is None:
            return
        self._gone.discard(key)
        bucket = self._buckets.get(day)
        if bucket is None:
            import bisect  # noqa: PLC0415 - only on a new day

            bucket = self._buckets[day] = []
            bisect.insort(self._days, day)
        bucket.append(key)

    def pop_due(self, today: int) -> list[str]:
        """Every key of the days up to `today` (removed from the index), each once."""
        out: list[str] = []
        n = 0
        for day in self._days:
            if day > today:
                break
            out.extend(self._buckets.pop(day))
            n += 1
        del self._days[:n]
        if self._gone:
            gone = self._gone
            out = [k for k in out if k not in gone]
        return list(dict.fromkeys(out)) if n > 1 else out

    def clear(self) -> None:
        self._buckets.clear()
        self._days.clear()
        self._gone.clear()

    def forget(self, key: str) -> None:
        """`key` is never returned again (an erased application), unless added anew."""
        self._gone.add(key)


def forget_household(state: LogementState, num: str) -> LogementState | None:
    """The dwelling's state without household `num` (an erasure); None when nothing is left of any
    household (the entry is then deleted: the dwelling's own fields name nobody)."""
    lease = state.lease if state.lease is None or state.lease[0] != num else None
    new = LogementState(
        state.logement,
        tuple(c for c in state.candidates if c.num != num),
        tuple(d for d in state.designataires if d[0] != num),
        lease,
        tuple(f for f in state.fired if f != num),
    )
    if not new.candidates and not new.designataires and new.lease is None and not new.fired:
        return None
    return new


def day_of(value: Any) -> int:
    """Ordinal of a date / datetime (0 for None)."""
    if value is None:
        return 0
    if isinstance(value, date):
        return value.toordinal()
    raise TypeError(f"not a date: {type(value).__name__}")
