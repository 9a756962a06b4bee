"""Connector SPI: what a source or a sink plugin implements.

A connector is a class with a `name`, a pydantic `Config` model and two or three methods. Everything
else (batching, retries, dead letters, metrics) is the core's job. Plugins are found through the
`gateway.connectors` entry-point group (see gateway.registry), built-in ones included.

A sink subclasses `Sink` and implements `check`, `write` and `flush`; the optional hooks (`open`,
`resume_offsets`, `tick`, `outputs_for_rejection`) are declared on `Sink` with do-nothing defaults,
so the runtime calls them directly (gateway.flows.egress); a sink overrides the ones it needs.
A sink may also declare a `renderer()`: a pure, picklable function of one decoded record (its
line, row or event as bytes). The runtime can then read, decode and render the records in reading
processes (GATEWAY_SINK_PROCESSES) while the sink writes; `write` gets them with `rendered` set (and
`record` empty). Records the renderer declined (it returned None), erasures, and records
given to `write` by anything else (tests, the contract suite) come with `rendered` None and their
`record`: a sink renders those itself, with the same function.
Erasure (docs/retention.md): a sink that can erase an application from where it delivered it sets
`erases = True` and implements `erase`; the runtime refuses to run a sink that cannot, unless the
operator says so (docs/sinks.md, "Erasure").
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import orjson
from pydantic import BaseModel, ConfigDict

from gateway.errors import FatalError
from gateway.retention.protocol import ERASURE_SCHEMA

__all__ = [
    "ERASURE_SCHEMA",
    "CheckResult",
    "ConnectorConfig",
    "Emit",
    "Erasure",
    "Guarantee",
    "RawEvent",
    "Sink",
    "SinkContext",
    "SinkOutput",
    "SinkRecord",
    "Source",
    "json_default",
    "to_json",
    "to_json_bytes",
]


def json_default(value: Any) -> Any:
    """`json.dumps(default=...)` for record values: dates ISO 8601, decimals as strings, bytes base64."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _c_encoder() -> Callable[[Any, int], Any] | None:
    """CPython's C encoder, built once with to_json's settings (json.dumps builds a new encoder at
    every call): the fallback for what orjson declines (nesting deeper than 254, integers past 64
    bits, a value json_default refuses: then raises as json.dumps does)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    basestring = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or basestring is None:
        return None
    # no circular-reference markers (a shared dict would keep stale ids after a failed call): a
    # record is a tree; a cycle ends in RecursionError, told as json.dumps tells it
    encoder: Callable[[Any, int], Any] = make(
        None, json_default, basestring, None, ":", ",", False, False, True
    )
    return encoder


_ENCODE = _c_encoder()
# orjson: dates, datetimes and times written natively (the same text as isoformat()), decimals and
# bytes through json_default, non-string keys as json.dumps writes them
_ORJSON = orjson.OPT_NON_STR_KEYS


def _to_json_reference(value: Any) -> str:
    if _ENCODE is None or isinstance(value, str):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=json_default)
    try:
        return "".join(_ENCODE(value, 0))
    except RecursionError:
        raise ValueError("Circular reference detected") from None


def to_json_bytes(value: Any) -> bytes:
    """UTF-8 JSON of a record (compact): what sinks write for a view record. The same text as
    json.dumps(ensure_ascii=False, separators=(",", ":"), default=json_default) writes, except NaN
    and infinities, written null (JSON has no NaN). orjson: ~2 µs a view record against ~12 µs for
    the standard library's C encoder (docs/sinks.md, Measured)."""
    try:
        return orjson.dumps(value, default=json_default, option=_ORJSON)
    except orjson.JSONEncodeError:
        return _to_json_reference(value).encode("utf-8")


def to_json(value: Any) -> str:
    """to_json_bytes as text."""
    return to_json_bytes(value).decode("utf-8")


class ConnectorConfig(BaseModel):
    """Base of connector configs: validated at construction, frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True, slots=True)
class CheckResult:
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RawEvent:
    """What a source emits: raw bytes in a declared format, keyed if the source knows the key."""

    format: str  # sne-xml, cdc-json, siao-json, cal-csv, comed-json
    payload: bytes
    key: bytes | None = None
    origin: str = ""  # where it came from (file name, table), never personal data
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class SinkRecord:
    """What a sink receives: one canonical record (decoded) with its key, headers and coordinates."""

    schema: str
    key: str
    record: dict[str, object]
    headers: tuple[tuple[str, bytes], ...] = ()
    topic: str = ""
    partition: int = -1
    offset: int = -1
    extra: dict[str, str] = field(default_factory=dict)
    # the Avro schema the record was written with (parsed, as a dict), for sinks that follow it
    writer_schema: Any = field(default=None, compare=False, repr=False)
    # what the sink's renderer (`Sink.renderer`) made of the record, when the runtime rendered it
    # ahead of `write` (in a reading process: `record` is then empty); None: render it, or use `record`
    rendered: Any = field(default=None, compare=False, repr=False)

    def header(self, name: str) -> str | None:
        """The last value of header `name` as text (e.g. `ce_id`), None when absent."""
        found = None
        for key, value in self.headers:
            if key == name:
                found = value
        return None if found is None else found.decode("utf-8", "replace")

    def event_id(self) -> str:
        """The record's stable id, the same at every delivery of it: its CloudEvents id (`ce_id`), or
        its Kafka coordinates (`topic/partition/offset`) when it has none. What a recipient
        de-duplicates on (the webhook's `webhook-id`, the file sink's `id`, `gp_event_id`)."""
        return self.header("ce_id") or f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(frozen=True, slots=True)
class SinkOutput:
    """A record a sink asks the core to publish (e.g. SNE feedback), in the same commit as its input."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class SinkContext:
    """Where a sink runs: given to `Sink.open` before the first batch."""

    connector: str  # the registered name (`webhook`, `file`, ...)
    actor: str | None  # the actor whose filtered stream it delivers; None for a gateway principal (SNE)
    topics: tuple[str, ...]  # the topics it reads
    group_id: str  # its consumer group
    state_dir: Path  # a directory it may keep state in


def _date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _time(value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


@dataclass(frozen=True, slots=True)
class Erasure:
    """One application to erase, as the runtime gives it to `Sink.erase`: a `fr.gp.Effacement`
    record of the actor's stream (schemas/avro/fr.gp.Effacement.avsc). It holds no nominative value.

    `key` is what the application's records were delivered under (their record key: the numéro
    unique; a statistique actor's pseudonym): a sink erases every record it holds under that key."""

    key: str
    num_unique: str
    date_radiation: date
    date_effacement: date
    time: datetime  # when the gateway erased it (UTC)
    par: str  # who erased it (the gateway principal and the request, or `horloge`)
    record: SinkRecord = field(compare=False, repr=False)  # the Effacement record: coordinates, headers

    @classmethod
    def of(cls, record: SinkRecord) -> Erasure:
        """The erasure a decoded `fr.gp.Effacement` record asks for."""
        value = record.record
        num_unique = str(value.get("numUnique") or "")
        return cls(
            key=record.key or num_unique,
            num_unique=num_unique,
            date_radiation=_date(value.get("dateRadiation")),
            date_effacement=_date(value.get("dateEffacement")),
            time=_time(value.get("time")),
            par=str(value.get("par") or ""),
            record=record,
        )


Partition = tuple[str, int]  # (topic, partition)
Emit = Callable[[RawEvent], Awaitable[None]]
Guarantee = Literal["at-least-once", "exactly-once"]


@runtime_checkable
class Source(Protocol):
    """Reads an external system and emits raw events. Delivery: stated by each implementation."""

    name: ClassVar[str]
    Config: ClassVar[type[ConnectorConfig]]
    guarantee: ClassVar[Guarantee]

    def check(self) -> CheckResult:
        """Validate reachability / permissions without moving data."""
        ...

    async def run(self, emit: Emit) -> None:
        """Emit raw events until stop() is called. `emit` returns once the event is durably accepted."""
        ...

    async def stop(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """Receives records. `write` may raise RetriableError or RejectedMessage per record.

    Subclass it: the optional hooks below have defaults that do nothing. The delivery guarantee a
    sink states is checked by the contract suite: "at-least-once" (a record may be delivered twice
    after a crash: the runtime commits offsets only after `write` returned) or "exactly-once" (the
    sink stores the offsets it consumed with its data and returns them from `resume_offsets`)."""

    name: ClassVar[str]
    Config: ClassVar[type[ConnectorConfig]]
    guarantee: ClassVar[Guarantee]
    # what it reads: one actor's filtered stream (delivery sinks), or the canonical topics (the SNE
    # connector only, as the gateway's own principal)
    reads: ClassVar[Literal["actor", "canonical"]] = "actor"
    # True: it erases an application from where it delivered it when the stream says so (`erase`).
    # False: the runtime refuses to run it on an actor's stream unless the operator allows it
    # (`--allow-no-erasure`); the Effacement records are then given to `write` like other records.
    erases: ClassVar[bool] = False
    # records a batch (a poll, a write) when the operator sets none (--batch-size): a sink whose
    # writes cost per batch (a transaction, a request) asks for more
    batch_size: ClassVar[int] = 500
    # False: `write` reads nothing of a record it rendered (`renderer`) but `rendered`, its key,
    # schema, writer schema and coordinates. With reading processes, the runtime then leaves such a
    # record's headers and original bytes in the process that read it (its SinkRecord's headers are
    # empty, in `outputs_for_rejection` too): 6-11 % more records a second for the PostgreSQL sink
    # here. A dead letter of such a record has them all the same: the runtime reads them again from
    # the topic (docs/sinks.md).
    headers_in_write: ClassVar[bool] = True

    def check(self) -> CheckResult: ...

    async def write(self, batch: Sequence[SinkRecord]) -> Sequence[SinkOutput]:
        """Deliver the batch; return records to publish (feedback). Offsets advance only after it returns."""
        ...

    async def flush(self) -> None: ...

    # ---- optional hooks (defaults do nothing) --------------------------------------------------
    async def open(self, context: SinkContext) -> None:
        """Called once before the first batch (which actor, topics, group, a state directory)."""
        return None

    def resume_offsets(self, partitions: Sequence[Partition]) -> Mapping[Partition, int]:
        """Exactly-once sinks: the next offset to read per partition, as stored with their data.
        The runtime seeks there when partitions are assigned; {} means Kafka's committed offsets."""
        return {}

    def renderer(self) -> Callable[[SinkRecord], Any] | None:
        """A pure function of one decoded record, picklable (a module-level function, or a
        functools.partial of one with plain arguments), giving what `write` needs of it (e.g. its
        line as bytes), or None when it cannot (`write` then gets the record itself). With one, the
        runtime may read, decode and render the records in reading processes while the sink writes
        (GATEWAY_SINK_PROCESSES; docs/sinks.md); None (the default): decoded in the sink's process.
        It never sees erasures (fr.gp.Effacement), runs with no state of the sink, and must not raise
        for a valid record (an exception counts as None)."""
        return None

    async def tick(self) -> Sequence[SinkOutput]:
        """Called after every poll, with or without records (e.g. a daily batch, time-based rotation)."""
        return []

    def outputs_for_rejection(
        self, record: SinkRecord, error: BaseException, attempts: int
    ) -> Sequence[SinkOutput]:
        """Records to publish when the runtime dead-letters `record` (e.g. feedback to its source)."""
        return []

    async def erase(self, erasures: Sequence[Erasure]) -> Sequence[SinkOutput]:
        """Sinks with `erases = True`: remove every record held under each erasure's key from where
        the sink delivered it (or, for a sink that keeps nothing, pass the erasure on to the
        receiver). Called in stream order between `write` calls: records before an erasure were
        written before it, records after it come in a later `write` (new data). The sink's guarantee
        covers it (an exactly-once sink stores the erasure's offset with the deletion); offsets
        advance only after it returns; RetriableError is retried without limit, RejectedMessage
        dead-letters the Effacement record (never dropped)."""
        raise FatalError(f"sink {self.name!r} received an erasure but does not implement erase")
