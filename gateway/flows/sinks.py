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
import logging
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.codec.avro import AvroCodec, load_schemas
from gateway.connectors import Sink, SinkContext
from gateway.errors import ConfigError, Problem
from gateway.flows.egress import EgressRunner, SinkHealth
from gateway.kafka_config import client_kwargs
from gateway.monitoring.metrics import Metrics
from gateway.monitoring.sink_web import SinkWeb
from gateway.retry import RetryPolicy
from gateway.settings import GatewaySettings
from gateway.topics import actor_topic, canonical_topic, dlq_topic, sink_group

__all__ = [
    "ConfiguredSink",
    "SinkOptions",
    "SinkThreads",
    "SinksFile",
    "batch_size",
    "load_sinks_file",
    "principal_client_kwargs",
    "run_sink",
    "view_codecs",
]

log = logging.getLogger(__name__)


def principal_client_kwargs(settings: GatewaySettings, principal_id: str) -> dict[str, Any]:
    """kafka-python kwargs of a principal (an actor, a source or a gateway connector): its connection
    kit (created if absent) when gateway.security.kits is installed, else the gateway's settings.
    The one place the sink runtime chooses who it connects as."""
    from gateway.security.kits import actor_client_kwargs  # noqa: PLC0415 - the broker edge

    return actor_client_kwargs(settings, principal_id)


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
    batch_size: int | None = None  # None: the sink's own (`Sink.batch_size`, 500 unless it says)
    poll_timeout_ms: int = 500
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=0))  # 0: until it works
    web_port: int | None = None  # None: GATEWAY_WEB_PORT; 0: any free port; -1: no web server
    on_web: Callable[[int], None] | None = None  # told the bound port
    # run a sink that cannot erase (`Sink.erases` False): the operator erases the recipient's copy
    allow_no_erasure: bool = False


def batch_size(sink: Sink, options: SinkOptions) -> int:
    """Records a batch: the operator's (--batch-size, a sinks file's batch_size), else the sink's own."""
    return options.batch_size or sink.batch_size


def _plan(sink: Sink, settings: GatewaySettings, options: SinkOptions) -> tuple[str, list[str], str, str]:
    """(principal, topics, group, role label) of a sink run; ConfigError when they do not fit."""
    prefix = settings.topic_prefix
    if sink.reads == "canonical":
        if options.actor:
            raise ConfigError(f"connector {sink.name!r} reads the canonical topics: it takes no --actor")
        topics = [canonical_topic("demande", prefix), canonical_topic("decision", prefix)]
        # a gateway connector (the SNE's): the gateway worker principal <app id>.<name>
        return f"{settings.app_id}.{sink.name}", topics, f"{settings.app_id}.{sink.name}", "canonical"
    if not options.actor:
        raise ConfigError(f"connector {sink.name!r} delivers one actor's stream: --actor ACTOR is required")
    role = _actor_role(settings, options.actor)
    if not sink.erases:
        if not options.allow_no_erasure:
            raise ConfigError(
                f"connector {sink.name!r} cannot erase an application from where it delivers it, and the "
                "actor's stream carries erasures (fr.gp.Effacement, one year after a radiation): run it "
                "with --allow-no-erasure (sinks file: allow_no_erasure: true) only if the recipient's "
                "copy is erased otherwise (docs/sinks.md, Erasure)"
            )
        log.warning(
            "sink %s cannot erase: erasures (fr.gp.Effacement) are given to it as ordinary records; "
            "the recipient's copy must be erased otherwise (docs/sinks.md, Erasure)",
            sink.name,
        )
    topic = actor_topic(options.actor, prefix)
    return options.actor, [topic], sink_group(sink.name, options.actor, settings.app_id), role


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
        ensure_topics(client_kwargs(settings), specs, request_timeout_s=settings.broker_timeout_s)

    runner = await asyncio.to_thread(
        lambda: EgressRunner(
            sink,
            topics=topics,
            group_id=group,
            client=client,
            retry=options.retry,
            max_records=batch_size(sink, options),
            poll_timeout_ms=options.poll_timeout_ms,
            partitions=settings.partitions,
            replication=settings.replication_factor,
            codecs=codecs,
            context=context,
            metrics=metrics,
            health=health,
            create_topics=create,
            registry_url=settings.schema_registry_url,
            commit_timeout_ms=int(settings.broker_timeout_s * 1000),
            session_timeout_ms=int(settings.session_timeout_s * 1000),
            render_processes=settings.sink_processes,
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
    try:
        web = await _start_web(settings, options, metrics, health, client)
    except ConfigError:
        runner.close()
        raise
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
        lambda: broker_answers(bootstrap, 2.0, {k: v for k, v in client.items() if k != "bootstrap_servers"}),
        host=settings.web_host,
        port=port,
    )
    try:
        bound = await web.start()
    except OSError as exc:
        raise ConfigError(
            f"cannot serve /health on {settings.web_host}:{port} ({type(exc).__name__}): "
            "give each sink its own --web-port (0: any free port, -1: none)"
        ) from exc
    log.info("sink web: http://%s:%d/health, /metrics", settings.web_host, bound)
    if options.on_web is not None:
        options.on_web(bound)
    return web


class ConfiguredSink(BaseModel):
    """One sink of a sinks file (`gateway run --sinks FILE`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    connector: str
    actor: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    web_port: int = -1  # its own /health and /metrics (-1: none)
    batch_size: int | None = Field(None, ge=1)  # None: the sink's own (Sink.batch_size)
    retry_attempts: int = Field(0, ge=0)
    allow_no_erasure: bool = False  # a sink that cannot erase (docs/sinks.md, Erasure)


class SinksFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    sinks: list[ConfiguredSink]


def load_sinks_file(path: Path) -> list[tuple[Sink, SinkOptions]]:
    """Every sink of a sinks file, built and validated; ConfigError listing every problem."""
    from gateway import registry  # noqa: PLC0415

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        parsed = SinksFile.model_validate(raw)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not a readable YAML file ({type(exc).__name__})") from exc
    except ValidationError as exc:
        problems = [Problem(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        raise ConfigError(f"{path}: invalid sinks file", problems) from exc
    out: list[tuple[Sink, SinkOptions]] = []
    problems = []
    for i, item in enumerate(parsed.sinks):
        try:
            sink = registry.build(item.connector, item.config)
        except ConfigError as exc:
            problems += [Problem(f"sinks[{i}].{p.path}", p.reason) for p in exc.problems] or [
                Problem(f"sinks[{i}]", str(exc))
            ]
            continue
        retry = RetryPolicy(attempts=item.retry_attempts)
        options = SinkOptions(item.actor, False, item.batch_size, retry=retry, web_port=item.web_port)
        out.append((sink, replace(options, allow_no_erasure=item.allow_no_erasure)))
    if problems:
        raise ConfigError(f"{path}: invalid sinks file", problems)
    return out


class SinkThreads:
    """Configured sinks run next to the worker, each on its own event loop in a thread."""

    def __init__(self, settings: GatewaySettings, sinks: list[tuple[Sink, SinkOptions]]) -> None:
        self.settings = settings
        self.sinks = sinks
        self._loops: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._threads: list[threading.Thread] = []

    def _main(self, sink: Sink, options: SinkOptions, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        stop = asyncio.Event()
        self._loops.append((loop, stop))
        ready.set()
        try:
            loop.run_until_complete(run_sink(sink, self.settings, options, stop=stop, signals=False))
        except Exception:
            log.exception("sink %s stopped", sink.name)
        finally:
            loop.close()

    def start(self) -> None:
        for sink, options in self.sinks:
            ready = threading.Event()
            t = threading.Thread(target=self._main, args=(sink, options, ready), name=f"sink-{sink.name}")
            t.daemon = True
            t.start()
            ready.wait(10)
            self._threads.append(t)

    def stop(self, timeout: float = 30.0) -> None:
        for loop, stop in self._loops:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stop.set)
        for t in self._threads:
            t.join(timeout)
