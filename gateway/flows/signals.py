"""Signals flow: canonical records and the clock -> fr.gp.Signal records on `{prefix}.canonical.signal`.

Two faust agents, each with its table (changelog topics, recovered on start or rebalance):

- `gp.signals` consumes `{prefix}.canonical.demande`, `{prefix}.canonical.decision` and
  `{prefix}.signals.tick` (co-partitioned, keyed by numéro unique; a tick is addressed to one
  partition). Table `gp-signals-app`: the `AppState` of each application. A record runs
  `gateway.signals.core.apply`; its signals go to the signal topic, its dwelling facts to
  `{prefix}.signals.logement` (keyed by the dwelling), a rejection (a saisine by an actor not
  allowed to submit, more pending events than kept) to `<input topic>.dlq` with the reason. A tick
  of day D for partition p sweeps the applications of p whose next time-driven signal is due by D
  (a `DueIndex` per partition, rebuilt from the table after each assignment) through `tick`.
- `gp.signals.logement` consumes `{prefix}.signals.logement`; table `gp-signals-logement`: the
  `LogementState` of each dwelling; `apply_logement` emits ATTRIBUE_NON_LOGE.

A timer looks at the clock every `signals_tick_interval` seconds and, when the day changed (and at
start), sends one tick per partition: signals fire on their date without any new event. The clock
is a setting (`GATEWAY_SIGNALS_CLOCK`) so tests and rehearsals can move time. Outputs go through
`publish` (in the input's transaction under exactly-once); the route flow routes the signals.

Erasure (docs/retention.md): the erasure tombstone of an application on `canonical.demande` deletes
its state (faust writes the changelog tombstone), drops it from the due index, sends an `erase` fact
to the dwellings that name it (gateway.signals.erasure), tombstones its signals again (a signal
published before the erasure reached this flow is dropped by compaction too) and writes the receipt
`signals`, in the tombstone's transaction. Other tombstones are skipped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NamedTuple

import faust

from gateway.codec.avro import AvroCodec, SchemaSet
from gateway.codec.framing import decoder_for, framer_for
from gateway.errors import ConfigError, Problem, RejectedMessage
from gateway.flows.admin import DAY_MS, TopicSpec, keyed_configs, receipts_topic
from gateway.flows.app import FlowContext, publish
from gateway.flows.dlq import DeadLetter, DeadLetters
from gateway.kafka_config import client_kwargs
from gateway.model.envelope import cloudevent_headers
from gateway.policy.model import load_policy
from gateway.retention import protocol
from gateway.settings import GatewaySettings
from gateway.signals.core import DECISION, DEMANDE, SIGNAL, Context, apply, apply_logement, next_due, tick
from gateway.signals.engine import pack_decision, unpack_decision
from gateway.signals.erasure import ERASE, erasure_records, forget, sweep
from gateway.signals.indexes import DueIndexes
from gateway.signals.rules import load_rules
from gateway.signals.state import ANY_DWELLING, AppState, LogementState
from gateway.topics import canonical_topic, retention_topic, signals_topic

__all__ = ["SignalsCore", "make_clock", "register", "signals_topics"]

_log = logging.getLogger(__name__)
FLOW = "signals"
APP_TABLE = "gp-signals-app"
LOGEMENT_TABLE = "gp-signals-logement"
MAX_PER_TICK = 5000  # applications swept in one tick (one transaction)
_CE_NAMESPACE = uuid.UUID("0f3d7a52-8a41-4d57-9b1e-2c9b7f3e6a10")


class Output(NamedTuple):
    topic: str
    key: bytes
    value: bytes | None  # None: a tombstone
    headers: tuple[tuple[str, bytes], ...]


@dataclass
class Outcome:
    outputs: list[Output] = field(default_factory=list)
    state: bytes | None = None  # new state to store (None: unchanged)
    due: int | None = None  # next due day of the application (for the index)
    dead: DeadLetter | None = None
    erase: bool = False  # delete the stored state (an erasure)


def make_clock(setting: str | None) -> Callable[[], datetime]:
    """The flow's clock: the system's, a fixed day, or the day written in a file (read each call)."""
    if not setting:
        return lambda: datetime.now(UTC)
    if setting.startswith("file:"):
        path = Path(setting[5:])

        def from_file() -> datetime:
            try:
                day = date.fromisoformat(path.read_text(encoding="utf-8").strip())
            except (OSError, ValueError) as exc:
                raise ConfigError(f"signals clock file {path}: no YYYY-MM-DD date in it ({exc})") from None
            return datetime(day.year, day.month, day.day, tzinfo=UTC)

        return from_file
    day = date.fromisoformat(setting)
    fixed = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return lambda: fixed


def signals_topics(settings: GatewaySettings) -> list[TopicSpec]:
    p, r, prefix = settings.partitions, settings.replication_factor, settings.topic_prefix
    return [
        TopicSpec(canonical_topic("signal", prefix), p, r, "compact", keyed_configs()),
        TopicSpec(signals_topic("logement", prefix), p, r, "delete", {"retention.ms": str(30 * DAY_MS)}),
        TopicSpec(signals_topic("tick", prefix), p, r, "delete", {"retention.ms": str(7 * DAY_MS)}),
        receipts_topic(settings),
    ]


class SignalsCore:
    """The flow without Kafka: bytes and state in, outputs and state out (the agents and tests)."""

    def __init__(
        self,
        ctx: Context,
        schemas: SchemaSet,
        dead_letters: DeadLetters,
        prefix: str = "gp",
        *,
        clock: Callable[[], datetime] | None = None,
        registry_url: str | None = None,
        partitions: int = 1,
    ) -> None:
        self.ctx = ctx
        self.partitions = partitions  # of the dwelling topic (an erase fact to each, when needed)
        self.demande_topic = canonical_topic("demande", prefix)
        self.receipts_topic = retention_topic("receipts", prefix)
        self.dead_letters = dead_letters
        self.clock = clock or (lambda: datetime.now(UTC))
        self._codecs = {fp: c for fp, c in schemas.by_fingerprint().items() if c.name in (DEMANDE, DECISION)}
        # with a schema registry: canonical inputs in either framing, signals in the Confluent one
        self._decode = decoder_for(registry_url, self._codecs).decode
        self._framer = framer_for(registry_url)
        self._signal_codec: AvroCodec = schemas.codec(SIGNAL)
        self.signal_topic = canonical_topic("signal", prefix)
        self.logement_topic = signals_topic("logement", prefix)

    def _signal_output(self, record: Mapping[str, Any]) -> Output:
        num = str(record["numUnique"])
        headers = cloudevent_headers(
            source="urn:gp-gateway:signals",
            type_=f"{SIGNAL}.v1",
            subject=num,
            time=self.clock(),
            id_=str(uuid.uuid5(_CE_NAMESPACE, str(record["signalId"]))),
            dataschema=f"urn:avro:{SIGNAL}",
        )
        headers += [
            ("gp.schema.name", SIGNAL.encode()),
            ("gp.schema.fingerprint", self._signal_codec.fingerprint_hex.encode()),
            ("gp.signal.type", str(record["typeSignal"]).encode()),
        ]
        value = self._signal_codec.encode_framed_checked(record)
        if self._framer.confluent:
            value = self._framer.reframe(self.signal_topic, value)
        return Output(self.signal_topic, num.encode(), value, tuple(headers))

    def _dead(
        self,
        *,
        topic: str,
        partition: int | None,
        offset: int | None,
        key: bytes | None,
        value: bytes,
        reason: str,
    ) -> Outcome:
        path, _, why = reason.partition(": ") if ": " in reason else ("$", "", reason)
        letter = self.dead_letters.build(
            source_topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            original=value,
            problems=[Problem(path, why or reason)],
            message=f"signals: {reason}",
            stage="signals",
        )
        return Outcome(dead=letter)

    def on_record(
        self,
        *,
        topic: str,
        partition: int | None,
        offset: int | None,
        key: bytes | None,
        value: bytes | None,
        state: bytes | None,
        headers: Iterable[tuple[str, bytes]] = (),
    ) -> Outcome:
        """One canonical Demande / Decision of the application `key`."""
        if not value:  # a tombstone: an erasure on the demand topic, else compaction only
            request = protocol.erasure_of(headers)
            if request is None or topic != self.demande_topic or not key:
                return Outcome()
            return self.on_erasure(key, request, state)
        try:
            codec, record = self._decode(value or b"")
        except RejectedMessage as exc:
            return self._dead(
                topic=topic,
                partition=partition,
                offset=offset,
                key=key,
                value=value or b"",
                reason=f"$: {exc.args[0] if exc.args else 'cannot decode'}",
            )
        num = (key or b"").decode(errors="replace")
        if not record.get("numUnique"):
            return Outcome()  # not registered yet: no signal is keyed on a guichet reference
        try:
            current = AppState.from_bytes(state)
        except (ValueError, TypeError):
            _log.warning("signals: unreadable application state, starting from an empty one")
            current = AppState()
        now = self.clock()
        outcome = Outcome()
        signals: list[dict[str, Any]] = []
        facts: list[dict[str, Any]] = []
        queue: list[tuple[str, Mapping[str, Any]]] = [(codec.name, record)]
        while queue:
            schema, rec = queue.pop(0)
            packed = pack_decision(rec) if schema == DECISION and not current.known else None
            step = apply(current, num, schema, rec, now, self.ctx, packed=packed)
            if step.rejected:
                if rec is record:
                    return self._dead(
                        topic=topic,
                        partition=partition,
                        offset=offset,
                        key=key,
                        value=value or b"",
                        reason=step.rejected,
                    )
                _log.warning("signals: a pending event of an application was refused: %s", step.rejected)
                continue
            current = step.state
            signals += step.signals
            facts += step.facts
            queue += [(DECISION, unpack_decision(p)) for p in step.replay]
        # already due (an application loaded late, a label that ended before it arrived): now, not
        # at the next day's tick
        today = now.date().toordinal()
        due = next_due(current, self.ctx)
        if due is not None and due <= today:
            current, more = tick(current, num, today, self.ctx, now)
            signals += more
        outcome.outputs += [self._signal_output(s) for s in signals]
        outcome.outputs += [
            Output(
                self.logement_topic, str(f["key"]).encode(), json.dumps(f, separators=(",", ":")).encode(), ()
            )
            for f in facts
        ]
        if facts:
            current = current.with_dwellings([str(f["key"]) for f in facts])
        outcome.state = current.to_bytes()
        outcome.due = next_due(current, self.ctx)
        return outcome

    def on_erasure(self, key: bytes, request: str, state: bytes | None) -> Outcome:
        """The erasure of application `key` (gateway.signals.erasure): its state is deleted."""
        records = erasure_records(
            state,
            key,
            request,
            partitions=self.partitions,
            logement_topic=self.logement_topic,
            signal_topic=self.signal_topic,
            receipts_topic=self.receipts_topic,
        )
        return Outcome([Output(*r) for r in records], erase=True)

    def on_fact(self, *, key: bytes | None, value: bytes | None, state: bytes | None) -> Outcome:
        """One dwelling fact (from the application side) of the dwelling `key`."""
        try:
            fact = json.loads(value or b"")
            if isinstance(fact, dict) and fact.get("kind") == ERASE:
                changed, new_state = forget(state, str(fact.get("num")))
                return Outcome(state=new_state, erase=changed and new_state is None)
            current = LogementState.from_bytes(state)
        except (ValueError, TypeError):
            _log.warning("signals: unreadable dwelling fact or state, skipped")
            return Outcome()
        new, signals = apply_logement(current, fact, self.clock(), self.ctx)
        return Outcome([self._signal_output(s) for s in signals], new.to_bytes())

    def on_tick(
        self, today: int, due_keys: Iterable[bytes], get: Callable[[bytes], bytes | None]
    ) -> Iterable[tuple[bytes, Outcome]]:
        """The time-driven signals of the applications due by `today` (their states read by `get`)."""
        now = self.clock()
        for key in due_keys:
            raw = get(key)
            if raw is None:
                continue  # erased (or never held): no signal
            try:
                state = AppState.from_bytes(raw)
            except (ValueError, TypeError):
                continue
            new, signals = tick(state, key.decode(errors="replace"), today, self.ctx, now)
            out = Outcome([self._signal_output(s) for s in signals], new.to_bytes() if signals else None)
            out.due = next_due(new, self.ctx)
            yield key, out

    def due_of(self, state: bytes | None) -> int | None:
        try:
            return next_due(AppState.from_bytes(state), self.ctx)
        except (ValueError, TypeError):
            return None


class _Agents:
    """The agents and the timer of the flow, over the two tables."""

    def __init__(
        self, app: faust.App, ctx: FlowContext, core: SignalsCore, clock: Callable[[], datetime]
    ) -> None:
        settings = ctx.settings
        prefix = settings.topic_prefix
        self.app, self.ctx, self.core, self.clock = app, ctx, core, clock
        self.partitions = settings.partitions
        self.tick_name = signals_topic("tick", prefix)
        self.sources = {
            canonical_topic("demande", prefix): DEMANDE,
            canonical_topic("decision", prefix): DECISION,
            self.tick_name: "tick",
        }
        self.app_table = app.Table(
            APP_TABLE, default=None, key_type=bytes, value_type=bytes, partitions=self.partitions
        )
        self.logement_table = app.Table(
            LOGEMENT_TABLE, default=None, key_type=bytes, value_type=bytes, partitions=self.partitions
        )
        self.indexes = DueIndexes(self.partitions)
        self.last_day = ""
        self._producer: Any = None
        self._pending_ticks: set[asyncio.Future[None]] = set()  # follow-up ticks being sent

    async def emit(self, outcome: Outcome, kind: str) -> None:
        for out in outcome.outputs:
            await publish(self.app, out.topic, out.key, out.value, out.headers)
            self.ctx.metrics.records_out.labels(flow=FLOW, source=kind, topic=out.topic).inc()

    async def on_tick(self, partition: int, value: bytes | None) -> None:
        try:
            today = date.fromisoformat((value or b"").decode()).toordinal()
        except ValueError:
            return
        table = self.app_table
        if self.indexes.by_partition is None:
            await self.indexes.build(table, self.core.due_of)
        index = (self.indexes.by_partition or {}).get(partition)
        if index is None:
            return
        keys = index.pop_due(today)
        if len(keys) > MAX_PER_TICK:
            # a first sweep may find millions due: one bounded transaction per tick, and a tick
            # of the same day for the rest (sent once this one's transaction is under way)
            for key in keys[MAX_PER_TICK:]:
                index.add(key, today)
            keys = keys[:MAX_PER_TICK]
            again = date.fromordinal(today).isoformat()
            sending = asyncio.ensure_future(asyncio.to_thread(self._send_ticks, again, [partition]))
            self._pending_ticks.add(sending)  # held until sent (a task only weakly referenced may vanish)
            sending.add_done_callback(self._pending_ticks.discard)
        due = [k.encode() for k in keys]
        for n, (app_key, outcome) in enumerate(self.core.on_tick(today, due, table.get), 1):
            if n % 1000 == 0:
                await asyncio.sleep(0)  # heartbeats go on
            await self.emit(outcome, "tick")
            if outcome.state is not None:
                table[app_key] = outcome.state
            self.indexes.add(partition, app_key, outcome.due)

    async def process(self, stream: faust.StreamT[Any]) -> None:
        metrics = self.ctx.metrics
        async for event in stream.events():
            started = time.perf_counter()
            message = event.message
            kind = self.sources.get(message.topic, "unknown")
            metrics.records_in.labels(flow=FLOW, source=kind).inc()
            if kind == "tick":
                await self.on_tick(message.partition, message.value)
                continue
            key = message.key
            outcome = self.core.on_record(
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=key,
                value=message.value,
                state=self.app_table.get(key) if key else None,
                headers=list(
                    message.headers.items() if isinstance(message.headers, Mapping) else message.headers or ()
                ),
            )
            if outcome.dead is not None:
                await self.ctx.dead_letters.send(outcome.dead)
                metrics.dead_lettered.labels(flow=FLOW, source=kind).inc()
                continue
            await self.emit(outcome, kind)
            if key and outcome.state is not None:
                self.app_table[key] = outcome.state
                self.indexes.add(message.partition, key, outcome.due)
            elif key and outcome.erase:
                if key in self.app_table:
                    del self.app_table[key]  # faust writes the changelog tombstone
                self.indexes.forget(message.partition, key)
            metrics.processing.labels(flow=FLOW).observe(time.perf_counter() - started)

    async def process_logement(self, stream: faust.StreamT[Any]) -> None:
        table = self.logement_table
        async for event in stream.events():
            message = event.message
            key = message.key
            if key and key.startswith(ANY_DWELLING.encode()):  # an erasure asking every dwelling
                await self._forget_everywhere(message.partition, message.value)
                continue
            outcome = self.core.on_fact(key=key, value=message.value, state=table.get(key) if key else None)
            await self.emit(outcome, "logement")
            if key and outcome.state is not None:
                table[key] = outcome.state
            elif key and outcome.erase and key in table:
                del table[key]

    async def _forget_everywhere(self, partition: int, value: bytes | None) -> None:
        """An erase fact to every partition: the dwellings of this one that name the household."""
        table = self.logement_table
        for n, (key, new) in enumerate(
            sweep(list(table.keys()), table.get, partition, self.partitions, value)
        ):
            if n % 1000 == 999:
                await asyncio.sleep(0)  # heartbeats go on
            if new is None:
                del table[key]
            else:
                table[key] = new

    def _send_ticks(self, today: str, partitions: list[int] | None = None) -> None:
        """One tick per partition, from a plain producer of its own: a tick is no output of an input
        (faust's producer is transactional under exactly-once), and a lost or repeated one is harmless
        (the next look at the clock sends again after a restart; sweeps are idempotent)."""
        from kafka import KafkaProducer  # noqa: PLC0415 - heavy import, only at the edge

        if self._producer is None:
            self._producer = KafkaProducer(acks="all", **client_kwargs(self.ctx.settings))
        for part in range(self.partitions) if partitions is None else partitions:
            self._producer.send(self.tick_name, key=b"tick", value=today.encode(), partition=part)
        self._producer.flush(timeout=30)

    async def look_at_clock(self) -> None:
        """Ticks for every partition when the day changed (and at start): signals fire on their date."""
        try:
            today = self.clock().date().isoformat()
        except ConfigError as exc:
            _log.error("signals: %s", exc)
            return
        if today == self.last_day:
            return
        try:
            await asyncio.to_thread(self._send_ticks, today)
        except Exception as exc:  # noqa: BLE001 - kafka-python errors: try again at the next look
            _log.warning("signals: ticks of %s not sent (%s), trying again", today, type(exc).__name__)
            return
        self.last_day = today


def register(app: faust.App, ctx: FlowContext) -> None:
    """Declare the signal topics, the two tables and agents, and the clock timer."""
    settings = ctx.settings
    rules = load_rules(settings.signals_rules_file)
    for warning in rules.warnings:
        _log.warning("signals: %s", warning)
    policy = load_policy(settings.policy_file)
    sctx = Context(rules, {a.id: a.role for a in policy.actors.values()})
    clock = make_clock(settings.signals_clock)
    core = SignalsCore(
        sctx,
        ctx.schemas,
        ctx.dead_letters,
        settings.topic_prefix,
        clock=clock,
        registry_url=settings.schema_registry_url,
        partitions=settings.partitions,
    )
    ctx.topics.extend(signals_topics(settings))
    agents = _Agents(app, ctx, core, clock)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode's signal typing is narrower
    async def _revoked(sender: faust.App, revoked: set[Any], **kwargs: Any) -> None:
        agents.indexes.reset()

    source = app.topic(*agents.sources, key_type=bytes, value_type=bytes)
    app.agent(source, name="gp.signals")(agents.process)
    logement_source = app.topic(core.logement_topic, key_type=bytes, value_type=bytes)
    app.agent(logement_source, name="gp.signals.logement")(agents.process_logement)
    app.task(agents.look_at_clock)  # once at start: no wait for the first interval
    app.timer(interval=settings.signals_tick_interval)(agents.look_at_clock)
