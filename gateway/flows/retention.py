"""Retention flow: erase each radiated application one year after its radiation (access-rules §5).

One faust agent, `gp.retention`, consumes three co-partitioned topics keyed by numéro unique (or
addressed to one partition) and keeps the clock in the table `gp-retention-clock` (numéro unique ->
a small JSON of dates and state, `gateway.retention.clock.Entry`; no value of the household):

- `<prefix>.canonical.demande`: each Demande moves the clock (radiation, déradiation, tombstone);
- `<prefix>.retention.control`: a command (`gateway.retention.messages.Command`) for its partition.
  `run`: every entry of the partition due by the command's day (or the worker's clock) is marked
  being erased, its tombstones (value null, header `gp.erasure`) are written to every canonical
  topic keyed by numéro unique, the raw topics are purged (DeleteRecords up to the ingest group's
  committed offsets, never beyond); stores `canonical` and `raw` are the flow's own receipts.
  Entries still being erased are re-driven (tombstones again: idempotent). `status`: where it stands;
- `<prefix>.retention.receipts`: the other stores' receipts (route, signals, cotation, sne).

When an entry holds a receipt from every expected store (`expected_stores`), ONE `fr.gp.Effacement`
audit entry goes to the audit topic and the entry is deleted, in the same step (the same Kafka
transaction under exactly-once: outputs through `publish`, the table's changelog with them).
Each command is answered on `<prefix>.retention.status` (key: the request id), and so is the
completion of the last erasure of a partition. A timer looks at the clock (`retention_clock`,
every `retention_clock_interval` s) and sends a `run` command with request `horloge` per partition
at start and when the day changed: applications are erased on their due date without new input.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import faust
from prometheus_client import Counter

from gateway.codec.avro import SchemaSet
from gateway.codec.framing import decoder_for, framer_for
from gateway.errors import ConfigError, RejectedMessage, RetriableError
from gateway.flows.admin import DAY_MS, TopicSpec, keyed_configs, receipts_topic
from gateway.flows.app import FlowContext, publish
from gateway.flows.retention_edge import RawPurge, make_clock, partition_of
from gateway.kafka_config import client_kwargs, client_security
from gateway.model.canonical import DEMANDE
from gateway.model.envelope import cloudevent_headers
from gateway.retention import clock
from gateway.retention.clock import ERASING, Entry
from gateway.retention.messages import Command, Status, effacement
from gateway.retention.protocol import (
    CLOCK,
    DUE_HEADER,
    ERASURE_HEADER,
    ERASURE_SCHEMA,
    RADIATION_HEADER,
    STORES,
    erasure_of,
)
from gateway.settings import GatewaySettings
from gateway.topics import audit_topic, canonical_topic, retention_topic

__all__ = [
    "CANONICAL_KINDS",
    "TABLE",
    "RetentionCore",
    "Step",
    "expected_stores",
    "register",
    "retention_topics",
]

_log = logging.getLogger(__name__)
FLOW = "retention"
TABLE = "gp-retention-clock"
CANONICAL_KINDS = ("demande", "decision", "cotation", "adequation", "signal")  # keyed by numéro unique
DEFAULT_STORES = ("canonical", "raw", "route", "signals", "cotation")
_CE_NAMESPACE = uuid.UUID("5c1e0b8e-2f6a-4a57-9d0e-7a3c1b9e4d21")


def expected_stores(settings: GatewaySettings) -> tuple[str, ...]:
    """The stores whose receipts complete an erasure: GATEWAY_RETENTION_STORES, else canonical, raw,
    route, signals, cotation (and sne when GATEWAY_SNE_URL is set). ConfigError on an unknown store."""
    if settings.retention_stores:
        names = tuple(dict.fromkeys(s.strip() for s in settings.retention_stores.split(",") if s.strip()))
    else:
        names = DEFAULT_STORES + (("sne",) if settings.sne_url else ())
    unknown = [s for s in names if s not in STORES]
    if unknown:
        raise ConfigError(
            f"GATEWAY_RETENTION_STORES: unknown store(s) {', '.join(unknown)}; known: {', '.join(STORES)}"
        )
    return names


def retention_topics(settings: GatewaySettings) -> list[TopicSpec]:
    """The control, status and receipts topics (co-partitioned with the canonical ones): short-lived
    messages between the command, the stores and the flow, kept 7 days; every canonical topic it
    writes tombstones to and the audit topic, declared as their own flows declare them (a topic that
    does not exist would hold the erasure up, and the cotation flow may not run)."""
    p, r, prefix = settings.partitions, settings.replication_factor, settings.topic_prefix
    week = {"retention.ms": str(7 * DAY_MS)}
    specs = [TopicSpec(retention_topic(k, prefix), p, r, "delete", dict(week)) for k in ("control", "status")]
    specs.append(receipts_topic(settings))  # as every store that writes a receipt declares it
    specs += [
        TopicSpec(canonical_topic(k, prefix), p, r, "compact", keyed_configs()) for k in CANONICAL_KINDS
    ]
    # the audit entries go where the route flow writes its own (declared as it does)
    specs.append(TopicSpec(audit_topic(prefix), p, r, "delete", {"retention.ms": str(400 * DAY_MS)}))
    return specs


class Output(NamedTuple):
    topic: str
    key: bytes
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


@dataclass
class Step:
    """What one input makes the flow do: records to publish, clock entries to write (None: delete)."""

    outputs: list[Output] = field(default_factory=list)
    writes: dict[bytes, Entry | None] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)  # for the metrics (never a value)
    erased: int = 0


class RetentionCore:
    """The flow without Kafka: bytes in, outputs and clock writes out (the agent and tests)."""

    def __init__(
        self,
        schemas: SchemaSet,
        prefix: str = "gp",
        *,
        expected: Iterable[str] = DEFAULT_STORES,
        principal: str = "gp-gateway",
        clock_fn: Callable[[], datetime] | None = None,
        registry_url: str | None = None,
    ) -> None:
        self.prefix = prefix
        self.expected = tuple(expected)
        self.principal = principal
        self.clock = clock_fn or (lambda: datetime.now(UTC))
        codecs = {fp: c for fp, c in schemas.by_fingerprint().items() if c.name == DEMANDE}
        self._decode = decoder_for(registry_url, codecs).decode
        self._framer = framer_for(registry_url)
        self._codec = schemas.codec(ERASURE_SCHEMA)
        self.canonical = tuple(canonical_topic(k, prefix) for k in CANONICAL_KINDS)
        self.audit = audit_topic(prefix)
        self.status_topic = retention_topic("status", prefix)

    def today(self) -> date:
        return self.clock().date()

    def on_demande(self, key: bytes | None, value: bytes | None, entry: Entry | None) -> Step:
        step = Step()
        if not key:
            step.events.append("sans-cle")
            return step
        record = None
        if value is not None:
            try:
                _, record = self._decode(value)
            except RejectedMessage:
                step.events.append("illisible")  # the route flow dead-letters it, with the reason
                return step
        change = clock.on_demande(entry, record, self.today())
        step.events.append(change.event)
        if change.event != "unchanged":
            step.writes[key] = change.entry
        return step

    def tombstones(self, key: bytes, entry: Entry) -> list[Output]:
        """The erasure tombstones of `key` on every canonical topic keyed by numéro unique: header
        `gp.erasure` (the request), and the radiation and due dates (the route flow copies them into
        the fr.gp.Effacement it sends the recipients)."""
        headers: tuple[tuple[str, bytes], ...] = ((ERASURE_HEADER, (entry.request or CLOCK).encode()),)
        if entry.radiation is not None and entry.due is not None:
            headers += (
                (RADIATION_HEADER, entry.radiation.isoformat().encode()),
                (DUE_HEADER, entry.due.isoformat().encode()),
            )
        return [Output(topic, key, None, headers) for topic in self.canonical]

    def start(self, command: Command, entries: Mapping[bytes, Entry]) -> tuple[Step, date | None]:
        """A `run` command for one partition (`entries`: the clock of that partition): the erasures
        it starts or re-drives. (step, the day it erases by; None: refused, see `refusal`)."""
        step = Step()
        today = self.today()
        now = command.now or today
        if now > today:
            return step, None
        for key, entry in entries.items():
            if not clock.is_due(entry, now):
                continue
            started = clock.start(entry, command.request, command.by)  # one under way keeps its own
            step.outputs += self.tombstones(key, started)
            step.writes[key] = started
            step.events.append("redrive" if entry.state == ERASING else "start")
        return step, now

    def refusal(self, command: Command) -> str:
        return (
            f"now {command.now} is later than the worker's clock ({self.today()}): an erasure is never"
            " started before its date"
        )

    def receive(self, key: bytes, entry: Entry | None, store: str, step: Step) -> None:
        """`store` erased `key`: complete its erasure when every expected store has answered."""
        if entry is None or entry.state != ERASING:
            step.events.append("recu-sans-effacement")
            return
        entry = clock.receive(entry, store)
        if clock.complete(entry, self.expected):
            step.outputs.append(self._audit(key, entry))
            step.writes[key] = entry.successor
            step.events.append("efface")
            step.erased += 1
        else:
            step.writes[key] = entry

    def on_receipt(self, key: bytes | None, value: bytes | None, headers: Any, entry: Entry | None) -> Step:
        step = Step()
        store = (value or b"").decode("utf-8", "replace")
        if not key or store not in STORES or erasure_of(headers) is None:
            step.events.append("recu-illisible")
            return step
        self.receive(key, entry, store, step)
        return step

    def _audit(self, key: bytes, entry: Entry) -> Output:
        num = key.decode("utf-8", "replace")
        now = self.clock()
        request = entry.request or CLOCK
        asked = "horloge" if request == CLOCK else f"retention run {request}"
        if entry.by and request != CLOCK:
            asked += f" asked by {entry.by}"
        par = f"{self.principal} ({asked})"
        record = effacement(num, entry, now, par, sorted(entry.stores))
        value = self._codec.encode_framed_checked(record)
        if self._framer.confluent:
            value = self._framer.reframe(self.audit, value)
        headers = cloudevent_headers(
            source="urn:gp-gateway:retention",
            type_=f"{ERASURE_SCHEMA}.v1",
            subject=num,
            time=now,
            id_=str(uuid.uuid5(_CE_NAMESPACE, f"{num}/{entry.due}/{request}")),
            dataschema=f"urn:avro:{ERASURE_SCHEMA}",
        )
        headers += [
            ("gp.schema.name", ERASURE_SCHEMA.encode()),
            ("gp.schema.fingerprint", self._codec.fingerprint_hex.encode()),
            (ERASURE_HEADER, request.encode()),
        ]
        return Output(self.audit, key, value, tuple(headers))

    def status(self, request: str, partition: int, entries: Iterable[Entry], **counts: Any) -> Output:
        erasing = [e for e in entries if e.state == ERASING]
        missing: dict[str, int] = {}
        for e in erasing:
            for store in clock.missing(e, self.expected):
                missing[store] = missing.get(store, 0) + 1
        status = Status(request, partition, erasing=len(erasing), missing=missing, **counts)
        return Output(self.status_topic, request.encode(), status.to_bytes(), ())


class _Mirror:
    """The clock entries of this worker's partitions, by partition (the table holds them by key):
    built from the table at the first command after an assignment, kept up to date by every write."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.by_partition: dict[int, dict[bytes, Entry]] | None = None
        self.generation = 0

    def reset(self) -> None:
        self.by_partition = None
        self.generation += 1

    async def build(self, table: Any) -> None:
        generation = self.generation
        built: dict[int, dict[bytes, Entry]] = {}
        for n, key in enumerate([k for k in list(table.keys()) if k], 1):
            if n % 5000 == 0:
                await asyncio.sleep(0)  # heartbeats go on
                if self.generation != generation:
                    return
            raw = table.get(key)
            if raw is None:
                continue
            try:
                entry = Entry.from_bytes(raw)
            except (ValueError, KeyError, TypeError):
                _log.warning("retention: unreadable clock entry skipped")
                continue
            built.setdefault(partition_of(key, self.partitions), {})[key] = entry
        self.by_partition = built

    def of(self, partition: int) -> dict[bytes, Entry]:
        return (self.by_partition or {}).get(partition, {})

    def set(self, key: bytes, entry: Entry | None) -> None:
        if self.by_partition is None:
            return
        part = self.by_partition.setdefault(partition_of(key, self.partitions), {})
        if entry is None:
            part.pop(key, None)
        else:
            part[key] = entry


class _Agents:
    def __init__(self, app: faust.App, ctx: FlowContext, core: RetentionCore, purge: RawPurge) -> None:
        settings = ctx.settings
        prefix = settings.topic_prefix
        self.app, self.ctx, self.core, self.purge = app, ctx, core, purge
        self.partitions = settings.partitions
        self.control = retention_topic("control", prefix)
        self.sources = {
            canonical_topic("demande", prefix): "demande",
            self.control: "control",
            retention_topic("receipts", prefix): "receipts",
        }
        self.table = app.Table(
            TABLE, default=None, key_type=bytes, value_type=bytes, partitions=self.partitions
        )
        self.mirror = _Mirror(self.partitions)
        self.events = Counter(
            "gp_retention_events",
            "Retention clock events (new, cancelled, forgotten, future, sans-date, start, redrive,"
            " efface, refused, recu-sans-effacement, ...).",
            ["event"],
            registry=ctx.metrics.registry,
        )
        self.purged: dict[tuple[str, date], bool] = {}  # (request, day) -> purge done
        self.last_day = ""
        self._producer: Any = None

    def entry(self, key: bytes | None) -> Entry | None:
        raw = self.table.get(key) if key else None
        if raw is None:
            return None
        try:
            return Entry.from_bytes(raw)
        except (ValueError, KeyError, TypeError):
            self.events.labels(event="illisible").inc()
            _log.warning("retention: unreadable clock entry, read as none")
            return None

    async def apply(self, step: Step) -> None:
        for out in step.outputs:
            await publish(self.app, out.topic, out.key, out.value, out.headers)
        for key, entry in step.writes.items():
            if entry is None:
                if self.table.get(key) is not None:
                    del self.table[key]
            else:
                self.table[key] = entry.to_bytes()
            self.mirror.set(key, entry)
        for event in step.events:
            self.events.labels(event=event).inc()
            if event == "future":
                _log.warning(
                    "retention: a radiation date later than the clock's day: kept, due a year after it"
                )
            elif event == clock.NO_DATE:
                _log.warning("retention: %s", clock.NO_DATE_REASON)

    async def on_command(self, partition: int, value: bytes | None) -> None:
        try:
            command = Command.from_bytes(value)
        except ValueError as exc:
            self.events.labels(event="commande-illisible").inc()
            _log.warning("retention: command refused: %s", exc)
            return
        if self.mirror.by_partition is None:
            await self.mirror.build(self.table)
        entries = self.mirror.of(partition)
        if command.op == "status":
            await self.apply(Step([self.core.status(command.request, partition, entries.values())]))
            return
        step, now = self.core.start(command, entries)
        if now is None:
            reason = self.core.refusal(command)
            self.events.labels(event="refused").inc()
            _log.warning("retention: command %s refused: %s", command.request, reason)
            await self.apply(
                Step([self.core.status(command.request, partition, entries.values(), refused=reason)])
            )
            return
        generation = self.mirror.generation
        await self.apply(step)
        erasing = [k for k, e in self.mirror.of(partition).items() if e.state == ERASING]
        purged = bool(erasing) and await self.purge_raw(command.request, now)
        if self.mirror.generation != generation:
            return  # a rebalance meanwhile: the partition's next owner answers the next command
        if purged:
            done = Step()
            for key in erasing:
                self.core.receive(key, self.mirror.of(partition).get(key), "raw", done)
            step.erased += done.erased
            await self.apply(done)
        due = sum(1 for e in step.events if e in ("start", "redrive"))
        status = self.core.status(
            command.request,
            partition,
            self.mirror.of(partition).values(),
            now=now.isoformat(),
            due=due,
            erased=step.erased,
        )
        await self.apply(Step([status]))

    async def purge_raw(self, request: str, now: date) -> bool:
        if self.purged.get((request, now)):
            return True
        try:
            result = await asyncio.to_thread(self.purge)
        except RetriableError as exc:
            self.events.labels(event="purge-echec").inc()
            _log.warning("retention: %s; the erasures wait for it (re-driven at the next command)", exc)
            return False
        if len(self.purged) > 100:
            self.purged.clear()
        self.purged[(request, now)] = True
        _log.info(
            "retention: raw topics purged (%d partitions of %d topics)", result.partitions, result.topics
        )
        return True

    async def on_receipt(self, partition: int, key: bytes | None, value: bytes | None, headers: Any) -> None:
        entry = self.entry(key)
        step = self.core.on_receipt(key, value, headers, entry)
        if step.erased and self.mirror.by_partition is not None:
            for k, e in step.writes.items():
                self.mirror.set(k, e)
            left = self.mirror.of(partition).values()
            if not any(e.state == ERASING for e in left) and entry is not None:
                step.outputs.append(
                    self.core.status(entry.request or CLOCK, partition, left, erased=step.erased)
                )
        await self.apply(step)

    async def process(self, stream: faust.StreamT[Any]) -> None:
        metrics = self.ctx.metrics
        async for event in stream.events():
            message = event.message
            kind = self.sources.get(message.topic, "unknown")
            metrics.records_in.labels(flow=FLOW, source=kind).inc()
            if kind == "control":
                await self.on_command(message.partition, message.value)
            elif kind == "receipts":
                await self.on_receipt(
                    message.partition, message.key, message.value, _headers(message.headers)
                )
            else:
                key = message.key
                await self.apply(self.core.on_demande(key, message.value, self.entry(key)))

    def _send_commands(self, command: Command) -> None:
        """One command per partition, from a plain producer of its own (a command is no output of
        an input; a lost or repeated one is harmless: the next look sends again, runs are idempotent)."""
        from kafka import KafkaProducer  # noqa: PLC0415 - heavy import, only at the edge

        if self._producer is None:
            self._producer = KafkaProducer(acks="all", **client_kwargs(self.ctx.settings))
        for part in range(self.partitions):
            self._producer.send(self.control, key=b"horloge", value=command.to_bytes(), partition=part)
        self._producer.flush(timeout=30)

    async def look_at_clock(self) -> None:
        """A `run` command (request `horloge`) for every partition at start and when the day changed."""
        try:
            today = self.core.today().isoformat()
        except ConfigError as exc:
            _log.error("retention: %s", exc)
            return
        if today == self.last_day:
            return
        try:
            await asyncio.to_thread(self._send_commands, Command("run", CLOCK, None, self.core.principal))
        except Exception as exc:  # noqa: BLE001 - kafka-python errors: try again at the next look
            _log.warning(
                "retention: clock commands of %s not sent (%s), trying again", today, type(exc).__name__
            )
            return
        self.last_day = today


def _headers(raw: Any) -> list[tuple[str, bytes]]:
    if not raw:
        return []
    items: Iterable[tuple[Any, Any]] = raw.items() if isinstance(raw, Mapping) else raw
    return [(str(k), v if isinstance(v, bytes) else str(v).encode()) for k, v in items]


def register(app: faust.App, ctx: FlowContext) -> None:
    """Declare the retention topics, the clock table, the agent and the clock timer."""
    settings = ctx.settings
    principal = client_security(settings).principal or settings.app_id
    core = RetentionCore(
        ctx.schemas,
        settings.topic_prefix,
        expected=expected_stores(settings),
        principal=principal,
        clock_fn=make_clock(settings.retention_clock),
        registry_url=settings.schema_registry_url,
    )
    ctx.topics.extend(retention_topics(settings))
    purge = RawPurge(client_kwargs(settings), settings.topic_prefix, settings.app_id)
    agents = _Agents(app, ctx, core, purge)
    app.gp_retention = agents  # type: ignore[attr-defined]  # for tests

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode's signal typing is narrower
    async def _revoked(sender: faust.App, revoked: set[Any], **kwargs: Any) -> None:
        agents.mirror.reset()

    source = app.topic(*agents.sources, key_type=bytes, value_type=bytes)
    app.agent(source, name="gp.retention")(agents.process)
    app.task(agents.look_at_clock)  # once at start: no wait for the first interval
    app.timer(interval=settings.retention_clock_interval)(agents.look_at_clock)
