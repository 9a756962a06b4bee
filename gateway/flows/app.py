"""The faust application factory and the flow plug-in seam.

`create_app(settings, flows)` builds a faust.App (raw-bytes serializers only, processing guarantee
from settings) and calls `gateway.flows.<name>.register(app, ctx)` for each named flow. No module
level side effects: nothing connects until the worker starts.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
import mode

from gateway.codec.avro import SchemaSet, load_schemas
from gateway.errors import ConfigError, GatewayError
from gateway.flows.admin import TopicSpec
from gateway.flows.dlq import DeadLetters, Headers
from gateway.kafka_config import faust_broker_credentials
from gateway.monitoring.metrics import Metrics
from gateway.settings import GatewaySettings

__all__ = [
    "DEFAULT_FLOWS",
    "STOP_WAIT_S",
    "FlowContext",
    "create_app",
    "flow_context",
    "flow_topics",
    "publish",
    "publishing_for",
    "thread_service",
]

_log = logging.getLogger(__name__)
DEFAULT_FLOWS: tuple[str, ...] = ("ingest", "route", "retention")
STOP_WAIT_S = 8.0  # within the 10 s a container runtime gives between SIGTERM and SIGKILL


@dataclass
class FlowContext:
    """What a flow's register() gets besides the app."""

    settings: GatewaySettings
    schemas: SchemaSet
    metrics: Metrics
    dead_letters: DeadLetters
    # topics a flow wants to exist before the worker starts (created by `gateway run`)
    topics: list[TopicSpec] = field(default_factory=list)
    # callables run at worker start-up (after the producer is ready), e.g. for sinks to open
    on_startup: list[Callable[[], Any]] = field(default_factory=list)


def _broker_urls(bootstrap: str) -> list[str]:
    return [f"kafka://{b.strip()}" for b in bootstrap.split(",") if b.strip()]


class _Outbox:
    """Outputs of not-yet-committed input records, published in their input's transaction.

    With processing_guarantee=exactly_once an output must be in the same Kafka transaction as the
    offset commit of the input it came from. faust's `app.send` cannot ensure this for a topic the
    app does not consume (it picks the transactional producer by the OUTPUT partition, or falls back
    to the plain producer), and sending straight away lets a commit of offset k carry the outputs of
    record k (still being processed): after a crash, record k would be processed twice. So outputs
    are held per input partition and, just before faust commits offset `o` of partition tp
    (Consumer._handle_attached), every output of records < o is sent through the transactional
    producer of tp, the one whose send_offsets_to_transaction + commit_transaction follow.
    """

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.pending: dict[Any, list[tuple[int, str, bytes | None, bytes | None, Headers]]] = {}
        self.installed = False

    def install(self) -> None:
        if self.installed:
            return
        consumer = self.app.consumer
        original = consumer._handle_attached  # type: ignore[attr-defined]  # faust's commit hook

        async def handle_attached(commit_offsets: Mapping[Any, int]) -> None:
            await self.flush(commit_offsets)
            await original(commit_offsets)

        consumer._handle_attached = handle_attached  # type: ignore[attr-defined]
        self.installed = True

    def put(self, tp: Any, offset: int, record: tuple[str, bytes | None, bytes | None, Headers]) -> None:
        self.pending.setdefault(tp, []).append((offset, *record))

    def drop(self, tps: Iterable[Any]) -> None:
        for tp in tps:
            self.pending.pop(tp, None)

    async def flush(self, commit_offsets: Mapping[Any, int]) -> None:
        producer = self.app.producer
        futures = []
        for tp, commit_offset in commit_offsets.items():
            queue = self.pending.get(tp)
            if not queue:
                continue
            ready = [item for item in queue if item[0] < commit_offset]
            if not ready:
                continue
            self.pending[tp] = [item for item in queue if item[0] >= commit_offset]
            group = self.app.assignor.group_for_topic(tp.topic)
            tid = f"{self.app.conf.id}-{group}-{tp.partition}"
            for _, topic, key, value, headers in ready:
                futures.append(
                    await producer.send(topic, key, value, None, None, list(headers), transactional_id=tid)
                )
        for fut in futures:
            await fut


# (tp, offset) of the input whose outputs are being published, set by `publishing_for`
_SOURCE: ContextVar[tuple[Any, int] | None] = ContextVar("gp_publish_source", default=None)


@contextmanager
def publishing_for(event: faust.EventT[Any]) -> Iterator[None]:
    """Publish the outputs of `event` inside this block (an agent processing events in batches).

    faust's current event is the last event the stream delivered, which is not the one being
    processed when an agent takes events in batches (`stream.take_events`); exactly-once needs the
    input each output comes from, so batch agents name it explicitly around its processing.
    """
    token = _SOURCE.set((event.message.tp, event.message.offset))
    try:
        yield
    finally:
        _SOURCE.reset(token)


async def publish(
    app: faust.App, topic: str, key: bytes | None, value: bytes | None, headers: Headers = ()
) -> None:
    """Publish one record from inside an agent, with the app's processing guarantee.

    exactly_once: the record is committed atomically with the offset of the input being processed
    (see _Outbox): the input named by `publishing_for`, else faust's current event;
    at_least_once (or outside an agent): `app.send`, flushed before offsets commit.
    The output partition is chosen from the key by the producer's default partitioner (murmur2, as
    the Java client), so one key always lands on one partition.
    """
    source = _SOURCE.get() if app.in_transaction else None
    if source is None and app.in_transaction:
        event = faust.current_event()
        if event is not None:
            source = (event.message.tp, event.message.offset)
    if source is None:
        # app.send(<name>) would build a new faust Topic for every record (~1 ms): reuse one per name
        channels: dict[str, Any] | None = getattr(app, "gp_send_topics", None)
        if channels is None:
            channels = {}
            app.gp_send_topics = channels  # type: ignore[attr-defined]  # faust.App has no slot for it
        channel = channels.get(topic)
        if channel is None:
            channel = channels[topic] = app.topic(topic)
        await app.send(channel, key=key, value=value, headers=list(headers))
        return
    outbox: _Outbox = app.gp_outbox  # type: ignore[attr-defined]  # set by create_app
    outbox.install()
    outbox.put(source[0], source[1], (topic, key, value, tuple(headers)))


def flow_context(app: faust.App, settings: GatewaySettings) -> FlowContext:
    """The FlowContext of `app` (one per app; the dead-letter helper publishes through the app)."""
    existing: FlowContext | None = getattr(app, "gp_context", None)
    if existing is not None:
        return existing

    async def publish_for_flow(topic: str, key: bytes | None, value: bytes | None, headers: Headers) -> None:
        await publish(app, topic, key, value, headers)

    ctx = FlowContext(
        settings=settings,
        schemas=load_schemas(),
        metrics=Metrics(consumer_group=settings.app_id),
        dead_letters=DeadLetters(publish_for_flow),
    )
    app.gp_context = ctx  # type: ignore[attr-defined]  # faust.App has no slot for user data
    return ctx


def create_app(settings: GatewaySettings, flows: Sequence[str] = DEFAULT_FLOWS) -> faust.App:
    """A faust App running `flows` (module names under gateway.flows, each with register())."""
    datadir = Path(settings.state_dir).expanduser() / "faust" / settings.app_id
    app = faust.App(
        settings.app_id,
        broker=_broker_urls(settings.bootstrap_servers),
        broker_credentials=faust_broker_credentials(settings),
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
        processing_guarantee=settings.processing_guarantee,
        store="memory://",
        datadir=str(datadir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # offsets (and, exactly-once, the outputs' transactions) are committed every 0.25 s: the
        # end-to-end latency of read_committed consumers; 1 s gave p50 0.6 s for no throughput gain
        broker_commit_interval=0.25,
        broker_session_timeout=settings.session_timeout_s,  # a dead worker's partitions: to the others
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        web_enabled=True,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_in_thread=False,
        loghandlers=[],
    )
    ctx = flow_context(app, settings)
    outbox = _Outbox(app)
    app.gp_outbox = outbox  # type: ignore[attr-defined]  # faust.App has no slot for user data
    app.gp_flows = tuple(flows)  # type: ignore[attr-defined]  # for /status

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode's signal typing is narrower
    async def _drop_revoked(sender: faust.App, revoked: set[Any], **kwargs: Any) -> None:
        outbox.drop(revoked)

    from gateway.monitoring.web import register_pages  # noqa: PLC0415 - avoids an import cycle

    register_pages(app, ctx)
    for name in flows:
        if not name.isidentifier():
            raise ConfigError(f"bad flow name {name!r}: not a module name")
        try:
            module = importlib.import_module(f"gateway.flows.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"gateway.flows.{name}":
                raise ConfigError(f"unknown flow {name!r} (no module gateway.flows.{name})") from exc
            raise
        register = getattr(module, "register", None)
        if register is None:
            raise ConfigError(f"flow module gateway.flows.{name} has no register(app, ctx)")
        register(app, ctx)
    return app


def flow_topics(app: faust.App) -> list[TopicSpec]:
    """Topics the registered flows declared (to create before the worker starts)."""
    ctx: FlowContext | None = getattr(app, "gp_context", None)
    return list(ctx.topics) if ctx is not None else []


class _ThreadService(mode.Service):
    """Runs `_gp_run(stop)` in a thread `gp-<_gp_flow>` (see thread_service)."""

    _gp_flow: str = ""
    _gp_late: str | None = None

    @staticmethod
    def _gp_run(stop: threading.Event) -> None:
        raise NotImplementedError

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def on_start(self) -> None:
        loop = asyncio.get_running_loop()
        name = self._gp_flow

        def main() -> None:
            try:
                self._gp_run(self._stop)
            except BaseException as exc:  # noqa: BLE001 - reported to the worker, which stops
                _log.error(
                    "%s loop stopped: %s", name, exc if isinstance(exc, GatewayError) else type(exc).__name__
                )
                asyncio.run_coroutine_threadsafe(self.crash(exc), loop)

        self._thread = threading.Thread(target=main, name=f"gp-{name}", daemon=True)
        self._thread.start()

    async def on_stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, STOP_WAIT_S)
            if self._gp_late is not None and self._thread.is_alive():
                _log.warning("%s", self._gp_late)


def thread_service(
    app: faust.App, name: str, run: Callable[[threading.Event], None], *, late: str | None = None
) -> type[mode.Service]:
    """Run the loop `run(stop)` in a thread `gp-<name>` of the worker, as a faust service
    (`<Name>Service`) started and stopped with the app: at stop, `stop` is set and the thread joined
    for up to STOP_WAIT_S (then `late` is logged if given and the thread still runs). A failure of
    the loop stops the worker; only a GatewayError's message is logged (another exception's may
    quote data)."""
    class_name = f"{name.capitalize()}Service"
    # a class of its own name: mode keys a service class's tasks by module and qualified name
    namespace = {
        "__module__": __name__,
        "__qualname__": class_name,
        "_gp_flow": name,
        "_gp_late": late,
        "_gp_run": staticmethod(run),
    }
    service: type[mode.Service] = type(class_name, (_ThreadService,), namespace)
    app.service(service)
    return service
