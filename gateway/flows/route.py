"""Route flow: canonical topics -> one topic per actor (its policy view) + the disclosure audit topic.

Consumes `{prefix}.canonical.demande`, `{prefix}.canonical.decision` and `{prefix}.canonical.signal`
(keyed by numéro unique, so all are co-partitioned with the scope table; signals are routed like
decisions, docs/signals.md). For each record: decode, read the application's
`ScopeState` from the faust table `gp-route-scope`, run the pure router, publish each view once
per recipient to `{prefix}.actor.{actor_id}` and one `fr.gp.AuditEntry` per nominative disclosure
to `{prefix}.audit.disclosures`, then store the new state. Undecodable records are dead-lettered
to `<canonical topic>.dlq`. Ack policy: ack after process (at-least-once, or exactly-once under
Kafka transactions when `processing_guarantee=exactly_once`); consumers drop duplicates by ce_id.

Erasure (docs/retention.md, gateway/retention/protocol.py): the erasure tombstone of an application
on `canonical.demande` sends a `fr.gp.Effacement` to every actor that received anything about it
(gateway.policy.erasure), deletes its scope state (pending decisions included; faust writes the
changelog tombstone) and writes the receipt `route`, all in the tombstone's transaction. Any other
tombstone (without the erasure header, or on the other canonical topics, which the retention flow
tombstones for compaction) is skipped: no dead letter, no state change.

Policy hot reload: every `RELOAD_INTERVAL_S` the policy and actors files are checked; a changed,
valid policy replaces the running one; an invalid one is refused whole (logged with every problem)
and the running policy is kept.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import faust

from gateway.codec.avro import AvroCodec, SchemaSet, load_schemas
from gateway.codec.framing import FrameDecoder, Framer, SchemaRefused, decoder_for, framer_for
from gateway.errors import ConfigError, Problem, RejectedMessage
from gateway.flows.admin import DAY_MS, TopicSpec, ensure_topics, keyed_configs, receipts_topic
from gateway.flows.app import FlowContext, publish
from gateway.flows.dlq import DeadLetter, DeadLetters
from gateway.kafka_config import client_kwargs, client_security
from gateway.policy.erasure import EFFACEMENT, erasure_notices, legacy_recipients
from gateway.policy.explain import all_views
from gateway.policy.model import Policy, PolicyStore
from gateway.policy.router import AUDIT_SCHEMA, H_SOURCE, Router, RouteResult
from gateway.policy.scope import DECISION, DEMANDE, ScopeState, before_decisions
from gateway.retention import protocol
from gateway.settings import GatewaySettings
from gateway.topics import actor_topic, audit_topic, canonical_topic, dlq_topic, retention_topic

__all__ = [
    "RELOAD_INTERVAL_S",
    "Fanout",
    "Output",
    "RouteCore",
    "RouteOutcome",
    "output_schemas",
    "register",
    "route_topics",
]

_log = logging.getLogger(__name__)
FLOW = "route"
TABLE = "gp-route-scope"
RELOAD_INTERVAL_S = 30.0
MAX_PENDING = 50  # decisions kept per application while its Demande has not been routed yet
SIGNAL = "fr.gp.Signal"  # follow-up signals (gateway/flows/signals.py), routed like decisions
_KINDS = {DEMANDE, DECISION, "fr.gp.Cotation", "fr.gp.Adequation", SIGNAL}


class Output(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


class Fanout(NamedTuple):
    """One value sent unchanged to several topics (one view to its actors, or audit entries)."""

    topics: tuple[str, ...]
    key: bytes | None
    values: tuple[bytes, ...]  # one value for every topic, or one per topic
    headers: tuple[tuple[str, bytes], ...]


@dataclass
class RouteOutcome:
    fanouts: list[Fanout] = field(default_factory=list)  # actor views first, then audit entries
    state: bytes | None = None  # new ScopeState to store (None: unchanged)
    dead: DeadLetter | None = None
    erase: bool = False  # delete the application's scope state (an erasure)

    def __iter__(self) -> Iterator[Output]:
        """Every record to publish, in order."""
        for f in self.fanouts:
            if len(f.values) == 1:
                value = f.values[0]
                for topic in f.topics:
                    yield Output(topic, f.key, value, f.headers)
            else:
                for topic, value in zip(f.topics, f.values, strict=True):
                    yield Output(topic, f.key, value, f.headers)

    @property
    def outputs(self) -> list[Output]:
        return list(self)


def _headers(raw: Any) -> list[tuple[str, bytes]]:
    if not raw:
        return []
    items: Iterable[tuple[Any, Any]] = raw.items() if isinstance(raw, Mapping) else raw
    return [(str(k), v if isinstance(v, bytes) else str(v).encode()) for k, v in items]


def route_topics(settings: GatewaySettings, policy: Policy) -> list[TopicSpec]:
    """One topic per actor of the policy (and its sinks' dead-letter topic), the audit topic, and the
    signal topic it reads."""
    p, r, prefix = settings.partitions, settings.replication_factor, settings.topic_prefix
    # compact,delete keyed by numéro unique: the fr.gp.Effacement of an erased application is the
    # latest record of its key, so compaction drops every earlier view of it (docs/retention.md)
    specs = [
        TopicSpec(
            actor_topic(a, prefix),
            p,
            r,
            "compact,delete",
            keyed_configs(**{"retention.ms": str(30 * DAY_MS)}),
        )
        for a in sorted(policy.actors)
    ]
    # each actor's sinks dead-letter there what they cannot deliver (created by the gateway: an
    # actor's principal may write to it, not create topics)
    specs += [
        TopicSpec(dlq_topic(actor_topic(a, prefix)), p, r, "delete", {"retention.ms": str(30 * DAY_MS)})
        for a in sorted(policy.actors)
    ]
    specs.append(TopicSpec(audit_topic(prefix), p, r, "delete", {"retention.ms": str(400 * DAY_MS)}))
    # consumed here, written by the signals flow (which declares it too): it exists either way
    specs.append(TopicSpec(canonical_topic("signal", prefix), p, r, "compact", keyed_configs()))
    specs.append(receipts_topic(settings))  # its erasure receipts
    return specs


def output_schemas(router: Router, prefix: str) -> list[tuple[str, AvroCodec]]:
    """(topic, schema) of everything `router` may write: every view of each actor's role to the
    actor's topic, and the audit entries to the audit topic."""
    by_role: dict[str, list[AvroCodec]] = {}
    for info in all_views(router):
        by_role.setdefault(info.role, []).append(info.view.codec)
    out = [
        (actor_topic(a.id, prefix), codec)
        for a in router.policy.actors.values()
        for codec in by_role.get(a.role, [])
    ]
    effacement = load_schemas().codec(EFFACEMENT)  # an erasure may go to any actor
    out += [(actor_topic(a, prefix), effacement) for a in router.policy.actors]
    out.append((audit_topic(prefix), load_schemas().codec(AUDIT_SCHEMA)))
    return out


class RouteCore:
    """The flow without Kafka: bytes in, outputs out (used by the agent and by tests)."""

    def __init__(
        self,
        store: PolicyStore,
        schemas: SchemaSet,
        dead_letters: DeadLetters,
        prefix: str = "gp",
        *,
        framer: Framer | None = None,
        decoder: FrameDecoder | None = None,
        principal: str = "gp-gateway.route",
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.principal = principal  # who erases, in the Effacement's `par`
        self._demande_topic = canonical_topic("demande", prefix)
        self._receipts_topic = retention_topic("receipts", prefix)
        self._effacement_codec = schemas.codec(EFFACEMENT)
        self.dead_letters = dead_letters
        self.framer = framer or Framer()
        self.router = Router(store.policy)
        self._codecs = {fp: c for fp, c in schemas.by_fingerprint().items() if c.name in _KINDS}
        self._decoder = decoder or FrameDecoder(self._codecs)
        self.prepare(self.router)  # with a registry: every view registered before anything is written
        self._mtimes = self._current_mtimes()
        self._topics: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._audit_topic = audit_topic(prefix)
        self._audit_codec = load_schemas().codec(AUDIT_SCHEMA)
        self._metric_labels: tuple[Router, dict[str, str]] | None = None

    def prepare(self, router: Router) -> None:
        """Register (or look up) every schema `router` may write (no-op without a registry);
        SchemaRefused when the registry refuses one, before any is registered."""
        self.framer.prepare(output_schemas(router, self.prefix))

    def metric_topic(self, topic: str) -> str:
        """The `topic` label of a published record: an actor topic is labelled by its actor's role
        (`<prefix>.actor.[<role>]`), since an actor id may identify a person (a demandeur's holds
        the numéro unique) and one series per actor would not scale; other topics by name."""
        labels = self._metric_labels
        if labels is None or labels[0] is not self.router:
            by_topic = {
                actor_topic(a.id, self.prefix): f"{self.prefix}.actor.[{a.role}]"
                for a in self.router.policy.actors.values()
            }
            labels = self._metric_labels = (self.router, by_topic)
        found = labels[1].get(topic)
        if found is not None:
            return found
        return f"{self.prefix}.actor.[unknown]" if topic.startswith(f"{self.prefix}.actor.") else topic

    def _topics_of(self, actors: tuple[str, ...]) -> tuple[str, ...]:
        topics = self._topics.get(actors)
        if topics is None:
            if len(self._topics) > 10_000:
                self._topics.clear()
            topics = self._topics[actors] = tuple(actor_topic(a, self.prefix) for a in actors)
        return topics

    def _files(self) -> list[Path]:
        policy = self.store.policy
        files = [Path(policy.source)]
        if self.store.actors_path is not None:
            files.append(self.store.actors_path)
        elif policy.file.actors_file:
            files.append(Path(policy.source).parent / policy.file.actors_file)
        return files

    def _current_mtimes(self) -> tuple[float, ...]:
        out = []
        for f in self._files():
            try:
                out.append(f.stat().st_mtime)
            except OSError:
                out.append(-1.0)
        return tuple(out)

    def maybe_reload(self) -> bool:
        """Reload when a policy file changed; True when a new policy is running."""
        mtimes = self._current_mtimes()
        if mtimes == self._mtimes:
            return False
        self._mtimes = mtimes
        try:
            policy = self.store.reload()
        except ConfigError as exc:
            _log.error(
                "policy reload refused, the running policy %s is kept: %s", self.store.policy.version, exc
            )
            return False
        router = Router(policy)
        try:
            self.prepare(router)
        except SchemaRefused as exc:
            _log.error("policy %s refused, the running policy is kept: %s", policy.version, exc)
            return False
        self.router = router
        _log.info("policy %s loaded", policy.version)
        return True

    @staticmethod
    def _state(data: bytes | None) -> ScopeState:
        try:
            return ScopeState.from_bytes(data)
        except (ValueError, TypeError, RecursionError):
            # Fail closed: an unreadable state scopes the record as if nothing were known of it.
            _log.warning("route: unreadable scope state, routing with an empty one")
            return ScopeState()

    def _keep_pending(
        self, state: ScopeState, value: bytes, headers: list[tuple[str, bytes]], result: RouteResult
    ) -> ScopeState:
        """A decision routed before any Demande: keep it to deliver to the application's actors later."""
        if len(state.pending) >= MAX_PENDING:
            _log.warning(
                "route: more than %d decisions before their application; older ones not kept", MAX_PENDING
            )
            return state
        ce_id = next((v.decode(errors="replace") for k, v in headers if k == "ce_id"), None)
        src = next((v.decode(errors="replace") for k, v in headers if k == H_SOURCE), None)
        item = {"v": base64.b64encode(value).decode(), "ce": ce_id, "to": sorted(result.recipients)}
        if src is not None:
            item["src"] = src  # the named-party rule needs who entered it when it is routed again
        return replace(state, pending=(*state.pending, json.dumps(item)))

    def _read_pending(self, raw: str) -> tuple[AvroCodec, dict[str, Any], list[tuple[str, bytes]], list[Any]]:
        """(codec, record, its headers (ce_id, gp.source), actors already served) of a kept decision;
        raises when damaged."""
        item = json.loads(raw)
        codec, record = self._decoder.decode(base64.b64decode(item["v"], validate=True))
        ce, src, to = item.get("ce"), item.get("src"), item.get("to", [])
        if not all(v is None or isinstance(v, str) for v in (ce, src)) or not isinstance(to, list):
            raise TypeError("pending decision of the wrong shape")
        headers = [(k, v.encode()) for k, v in (("ce_id", ce), (H_SOURCE, src)) if v]
        return codec, record, headers, to

    def _replay_pending(self, state: ScopeState, key: bytes | None) -> tuple[list[RouteResult], ScopeState]:
        """Now that the application is known, send its earlier decisions to the actors that missed them."""
        out = []
        for raw in state.pending:
            try:
                codec, record, headers, to = self._read_pending(raw)
            except (ValueError, TypeError, KeyError, AttributeError, RecursionError, RejectedMessage) as exc:
                # The Demande being routed is not at fault: drop the unreadable item, not the Demande.
                _log.warning("route: unreadable pending decision dropped (%s)", type(exc).__name__)
                continue
            result = self.router.route(codec.name, key, record, state, headers)
            state = result.state
            out.append(result.without({str(a) for a in to}))
        return out, replace(state, pending=())

    def _first_demande(
        self,
        key: bytes | None,
        record: Mapping[str, Any],
        state: ScopeState,
        headers: list[tuple[str, bytes]],
    ) -> tuple[list[RouteResult], ScopeState]:
        """The first Demande of an application whose decisions came first (the two topics are not
        ordered): routed as if it had come first, then its kept decisions in their order with the
        state the Demande gave. What each actor receives does not depend on how the topics
        interleaved (docs/policy.md, Ordering); the actors served early are not served twice."""
        # pending full: later decisions were not kept, so their links stay (routed in arrival order)
        base = state if len(state.pending) >= MAX_PENDING else before_decisions(state)
        result = self.router.route(DEMANDE, key, record, base, headers)
        replayed, new_state = self._replay_pending(result.state, key)
        return [result, *replayed], new_state

    def process(
        self,
        *,
        topic: str,
        partition: int | None,
        offset: int | None,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
        state: bytes | None,
    ) -> RouteOutcome:
        if not value:  # a tombstone: an erasure on the demand topic, else compaction only
            request = protocol.erasure_of(headers)
            if request is None or topic != self._demande_topic or not key:
                return RouteOutcome()
            return self.erase(key, request, headers, state)
        try:
            codec, record = self._decoder.decode(value or b"")
            current = self._state(state)
            if codec.name == DEMANDE and current.pending:
                results, new_state = self._first_demande(key, record, current, headers)
            else:
                result = self.router.route(codec.name, key, record, current, headers)
                results = [result]
                new_state = result.state
                if codec.name in (DECISION, SIGNAL) and not new_state.demande_seen:
                    new_state = self._keep_pending(new_state, value or b"", headers, result)
        except RejectedMessage as exc:
            letter = self.dead_letters.build(
                source_topic=topic,
                partition=partition,
                offset=offset,
                key=key,
                original=value or b"",
                problems=exc.problems or [Problem("$", "cannot route")],
                message=f"route: {exc.args[0] if exc.args else 'rejected'}",
                stage="route",
            )
            return RouteOutcome(dead=letter)
        outcome = RouteOutcome(state=new_state.to_bytes())
        fanouts = outcome.fanouts
        version = (("gp.policy.version", self.router.policy.version.encode()),)
        framer = self.framer
        confluent = framer.confluent
        # audit entries all share one schema: its cached Confluent header, looked up once per record
        audit_head = framer.prefix(self._audit_topic, self._audit_codec) if confluent else b""
        for res in results:
            for delivery in res.deliveries:
                topics = self._topics_of(delivery.actors)
                values = framer.reframe_fanout(topics, delivery.value) if confluent else (delivery.value,)
                fanouts.append(Fanout(topics, delivery.key, values, delivery.headers))
            for batch in res.audit:
                values = tuple(batch.values())
                if confluent:
                    values = tuple(audit_head + v[10:] for v in values)
                fanouts.append(Fanout((self._audit_topic,) * len(values), batch.key, values, version))
        return outcome

    def erase(
        self,
        key: bytes,
        request: str,
        headers: list[tuple[str, bytes]],
        state: bytes | None,
        now: datetime | None = None,
    ) -> RouteOutcome:
        """The erasure of application `key`: an Effacement to each actor that received anything about
        it, the receipt `route`, and its state deleted (written even when nothing was held)."""
        now = now or datetime.now(UTC)
        num_unique = key.decode("utf-8", "replace")
        radiation, due = protocol.erasure_dates(headers, now.date())
        policy = self.router.policy
        current = self._state(state)
        if state and b'"recipients"' not in state:  # stored before the recipients were recorded
            current = legacy_recipients(current, num_unique, self.router)
        notices, gone = erasure_notices(
            current,
            num_unique,
            known=policy.actors,
            secret=policy.secret,
            radiation=radiation,
            due=due,
            now=now,
            par=f"{self.principal} ({request})",
            request=request,
            policy_version=policy.version,
            codec=self._effacement_codec,
        )
        if gone:
            _log.warning("route: erasure not sent to %d former actor(s) no longer in the policy", gone)
        outcome = RouteOutcome(erase=True)
        for notice in notices:
            topics = self._topics_of(notice.actors)
            confluent = self.framer.confluent
            values = self.framer.reframe_fanout(topics, notice.value) if confluent else (notice.value,)
            outcome.fanouts.append(Fanout(topics, notice.key, values, notice.headers))
        r_key, r_value, r_headers = protocol.receipt(num_unique, "route", request)
        outcome.fanouts.append(Fanout((self._receipts_topic,), r_key, (r_value,), r_headers))
        return outcome


def _principal(settings: GatewaySettings) -> str:
    """Who this worker is on the broker (its SCRAM user), for the Effacement's `par`; with a TLS
    client certificate, the route worker's principal name."""
    try:
        return client_security(settings).sasl_username or f"{settings.app_id}.route"
    except ConfigError:
        return f"{settings.app_id}.route"


def register(app: faust.App, ctx: FlowContext) -> None:
    """Declare the actor and audit topics, the scope table, the routing agent and the reload timer."""
    settings = ctx.settings
    prefix = settings.topic_prefix
    store = PolicyStore(settings.policy_file, secret=settings.pseudonymisation_secret, check_key=True)
    url = settings.schema_registry_url
    codecs = {fp: c for fp, c in ctx.schemas.by_fingerprint().items() if c.name in _KINDS}
    core = RouteCore(
        store,
        ctx.schemas,
        ctx.dead_letters,
        prefix,
        framer=framer_for(url),
        decoder=decoder_for(url, codecs),
        principal=_principal(settings),
    )
    ctx.topics.extend(route_topics(settings, store.policy))
    sources = {
        canonical_topic(k, prefix): k for k in ("demande", "decision", "cotation", "adequation", "signal")
    }
    from gateway.flows.cotation import cotation_topics  # noqa: PLC0415 - the topics it routes

    ctx.topics.extend(cotation_topics(settings))
    source = app.topic(*sources, key_type=bytes, value_type=bytes)
    table = app.Table(TABLE, default=None, key_type=bytes, value_type=bytes, partitions=settings.partitions)
    metrics = ctx.metrics

    async def process(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            message = event.message
            kind = sources.get(message.topic, "unknown")
            metrics.records_in.labels(flow=FLOW, source=kind).inc()
            key = message.key
            outcome = core.process(
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=key,
                value=message.value,
                headers=_headers(message.headers),
                state=table.get(key) if key else None,
            )
            if outcome.dead is not None:
                await ctx.dead_letters.send(outcome.dead)
                metrics.dead_lettered.labels(flow=FLOW, source=kind).inc()
                continue
            for out in outcome:
                await publish(app, out.topic, out.key, out.value, out.headers)
                metrics.records_out.labels(flow=FLOW, source=kind, topic=core.metric_topic(out.topic)).inc()
            if key and outcome.state is not None:
                table[key] = outcome.state
            elif key and outcome.erase and key in table:
                del table[key]  # faust writes the changelog tombstone, in this record's transaction
            metrics.processing.labels(flow=FLOW).observe(time.perf_counter() - started)

    app.agent(source, name="gp.route")(process)

    async def reload_policy() -> None:
        if core.maybe_reload():
            specs = route_topics(settings, core.router.policy)
            await asyncio.to_thread(ensure_topics, client_kwargs(settings), specs)

    app.timer(interval=RELOAD_INTERVAL_S)(reload_policy)
