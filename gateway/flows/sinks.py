"""The sink runtime: one connector delivering one actor's filtered stream (or, for the SNE connector,
the canonical topics), with batching, retries, dead letters, /health, /metrics and --until-idle.

    gateway connectors run NAME --actor ACTOR [--set k=v ...] [--until-idle]

A delivery sink connects as the actor (its connection kit), reads only `<prefix>.actor.<ACTOR>`, in
the consumer group `<prefix>.actor.<ACTOR>.sink.<NAME>` (topics.sink_group), decodes the records with
the actor's view schemas and dead-letters what it cannot deliver to `<prefix>.actor.<ACTOR>.dlq`.
A sink that reads canonical topics (`Sink.reads == "canonical"`, the SNE connector) runs without
--actor, as its own gateway principal, in the group `<app id>.<NAME>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.codec.avro import AvroCodec, load_schemas
from gateway.connectors import Sink, SinkContext
from gateway.errors import ConfigError
from gateway.flows.egress import EgressRunner, SinkHealth
from gateway.kafka_config import client_kwargs
from gateway.monitoring.metrics import Metrics
from gateway.monitoring.sink_web import SinkWeb
from gateway.retry import RetryPolicy
from gateway.settings import GatewaySettings
from gateway.topics import actor_topic, canonical_topic, dlq_topic, sink_group

__all__ = ["SinkOptions", "principal_client_kwargs", "run_sink", "view_codecs"]

log = logging.getLogger(__name__)


def principal_client_kwargs(settings: GatewaySettings, principal_id: str) -> dict[str, Any]:
    """kafka-python kwargs of a principal (an actor, a source or a gateway connector): its connection
    kit (created if absent) when gateway.security.kits is installed, else the gateway's settings.
    The one place the sink runtime chooses who it connects as."""
    try:
        kits = importlib.import_module("gateway.security.kits")
    except ImportError:
        return client_kwargs(settings)
    kwargs: dict[str, Any] = kits.actor_client_kwargs(settings, principal_id)
    return kwargs


def view_codecs(settings: GatewaySettings, role: str | None = None) -> dict[bytes, AvroCodec]:
    """Fingerprint -> codec of every view the policy can send (of `role` only when given), plus the
    canonical schemas: what a record on an actor topic can be encoded with.
    (With a schema registry, this is where the registry's decoder plugs in.)"""
    from gateway.policy.explain import all_views  # noqa: PLC0415 - only delivery sinks need views
    from gateway.policy.model import load_policy  # noqa: PLC0415
    from gateway.policy.router import Router  # noqa: PLC0415

    policy = load_policy(settings.policy_file, secret=settings.pseudonymisation_secret)
    codecs = dict(load_schemas().by_fingerprint())
    for info in all_views(Router(policy)):
        if role is None or info.role == role:
            codecs[info.view.codec.fingerprint] = info.view.codec
    return codecs


def _actor_role(settings: GatewaySettings, actor: str) -> str:
    from gateway.policy.model import load_policy  # noqa: PLC0415

    policy = load_policy(settings.policy_file, secret=settings.pseudonymisation_secret)
    found = policy.actors.get(actor)
    if found is None:
        raise ConfigError(f"--actor {actor!r}: not an actor of the policy's actors file")
    return found.role


@dataclass(frozen=True, slots=True)
class SinkOptions:
    """What the runtime adds around a sink (command-line options of `gateway connectors run`)."""

    actor: str | None = None
    until_idle: bool = False
    batch_size: int = 500
    poll_timeout_ms: int = 500
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=0))  # 0: until it works
    web_port: int | None = None  # None: GATEWAY_WEB_PORT; 0: any free port; -1: no web server
    on_web: Callable[[int], None] | None = None  # told the bound port


def _plan(sink: Sink, settings: GatewaySettings, options: SinkOptions) -> tuple[str, list[str], str, str]:
    """(principal, topics, group, role label) of a sink run; ConfigError when they do not fit."""
    prefix = settings.topic_prefix
    if sink.reads == "canonical":
        if options.actor:
            raise ConfigError(f"connector {sink.name!r} reads the canonical topics: it takes no --actor")
        topics = [canonical_topic("demande", prefix), canonical_topic("decision", prefix)]
        return sink.name, topics, f"{settings.app_id}.{sink.name}", "canonical"
    if not options.actor:
        raise ConfigError(f"connector {sink.name!r} delivers one actor's stream: --actor ACTOR is required")
    role = _actor_role(settings, options.actor)
    topic = actor_topic(options.actor, prefix)
    return options.actor, [topic], sink_group(sink.name, options.actor, prefix), role


async def run_sink(
    sink: Sink,
    settings: GatewaySettings,
    options: SinkOptions,
    *,
    stop: asyncio.Event | None = None,
    signals: bool = True,
) -> EgressRunner:
    """Run `sink` until stopped (SIGTERM / Ctrl-C / `stop`) or, with until_idle, drained."""
    principal, topics, group, role = _plan(sink, settings, options)
    codecs = view_codecs(settings) if sink.reads == "actor" else None
    client = await asyncio.to_thread(principal_client_kwargs, settings, principal)
    health = SinkHealth()
    metrics = Metrics(consumer_group=group)
    context = SinkContext(sink.name, options.actor, tuple(topics), group, settings.state_dir)

    def create(names: set[str]) -> None:
        from gateway.flows.admin import DAY_MS, TopicSpec, ensure_topics  # noqa: PLC0415

        p, r = settings.partitions, settings.replication_factor
        specs = [TopicSpec(t, p, r, "delete", {"retention.ms": str(30 * DAY_MS)}) for t in sorted(names)]
        ensure_topics(settings.bootstrap_servers, specs)

    runner = await asyncio.to_thread(
        lambda: EgressRunner(
            sink,
            topics=topics,
            group_id=group,
            client=client,
            retry=options.retry,
            max_records=options.batch_size,
            poll_timeout_ms=options.poll_timeout_ms,
            partitions=settings.partitions,
            replication=settings.replication_factor,
            codecs=codecs,
            context=context,
            metrics=metrics,
            health=health,
            create_topics=create,
        )
    )
    missing = [t for t in topics if await asyncio.to_thread(runner.consumer.partitions_for_topic, t) is None]
    if missing:
        runner.close()
        raise ConfigError(
            f"topic {', '.join(missing)} does not exist (is the route flow running, the actor known?)"
        )
    await asyncio.to_thread(create, {dlq_topic(t) for t in topics})
    prefix = settings.topic_prefix
    label = f"{prefix}.actor.[{role}]" if sink.reads == "actor" else None

    def lag() -> Mapping[tuple[str, int], int]:
        return {(label or t, p): n for (t, p), n in runner.lag().items()}

    metrics.set_lag_source(lag, f"sink.{sink.name}")
    web = await _start_web(settings, options, metrics, health, client)
    stop = stop or asyncio.Event()
    if signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
    try:
        await runner.run(stop, until_idle=options.until_idle)
    finally:
        if web is not None:
            await web.stop()
    return runner


async def _start_web(
    settings: GatewaySettings,
    options: SinkOptions,
    metrics: Metrics,
    health: SinkHealth,
    client: Mapping[str, Any],
) -> SinkWeb | None:
    port = settings.web_port if options.web_port is None else options.web_port
    if port < 0:
        return None
    from gateway.broker.local import broker_answers  # noqa: PLC0415

    bootstrap = str(client.get("bootstrap_servers", settings.bootstrap_servers))
    web = SinkWeb(
        metrics,
        lambda: [health.problem] if health.problem else [],
        lambda: broker_answers(bootstrap, 2.0),
        host=settings.web_host,
        port=port,
    )
    bound = await web.start()
    log.info("sink web: http://%s:%d/health, /metrics", settings.web_host, bound)
    if options.on_web is not None:
        options.on_web(bound)
    return web
