"""Pages on faust's web server: /health (204 when the broker answers, 500 otherwise) and /metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import faust

from gateway.broker.local import broker_answers
from gateway.monitoring.lag import DeliverableLag
from gateway.monitoring.metrics import Metrics

if TYPE_CHECKING:
    from gateway.flows.app import FlowContext

__all__ = ["consumer_offsets", "ingest_stuck", "register_pages"]

PROM_CONTENT_TYPE = "text/plain; version=0.0.4"


def consumer_offsets(app: faust.App) -> Mapping[tuple[str, int], tuple[int, int]]:
    """(committed offset, high watermark) of each assigned partition the group commits. Partitions
    without a committed offset (the tables' changelog partitions, which a faust worker reads but never
    commits) have no consumer lag and are left out."""
    consumer = app.consumer
    committed: Mapping[Any, int] = app.monitor.tp_committed_offsets
    out: dict[tuple[str, int], tuple[int, int]] = {}
    for tp in consumer.assignment():
        done = committed.get(tp)
        if done is None:
            continue
        try:
            high = consumer.highwater(tp)
        except Exception:  # noqa: BLE001, S112 - unknown until the first fetch
            continue
        if high is None:
            continue
        out[(tp.topic, tp.partition)] = (int(done), int(high))
    return out


def _reader(ctx: FlowContext) -> Any:
    from kafka import KafkaConsumer  # noqa: PLC0415 - heavy import

    from gateway.kafka_config import client_kwargs  # noqa: PLC0415

    return KafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        client_id="gp-gateway-lag",
        **client_kwargs(ctx.settings),
    )


STUCK_AFTER_S = 60.0


def ingest_stuck(runner: Any, now: float, after_s: float = STUCK_AFTER_S) -> str | None:
    """Why the ingest loop is stuck (records wait and no batch committed for `after_s`), or None."""
    if runner is None:
        return None
    waiting = sum(max(v, 0) for v in runner.lag().values())
    idle = now - float(runner.last_success)
    if waiting and idle >= after_s:
        return f"ingest stuck: {waiting} records waiting, no batch committed for {idle:.0f} s"
    return None


def register_pages(app: faust.App, ctx: FlowContext) -> None:
    metrics: Metrics = ctx.metrics
    bootstrap = ctx.settings.bootstrap_servers
    metrics.set_lag_source(
        DeliverableLag(lambda: consumer_offsets(app), lambda: _reader(ctx)), ctx.settings.app_id
    )

    @app.page("/health")
    async def health(view: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        ok = await asyncio.to_thread(broker_answers, bootstrap, 2.0)
        if not ok:
            return view.text("kafka unreachable\n", status=500)
        stuck = ingest_stuck(getattr(app, "gp_ingest_runner", None), time.monotonic())
        if stuck:
            return view.text(stuck + "\n", status=500)
        return view.bytes(b"", status=204)

    @app.page("/metrics")
    async def prometheus(view: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        body = await asyncio.to_thread(metrics.render)  # lag counting may read from the broker
        return view.bytes(body, content_type=PROM_CONTENT_TYPE)

    @app.page("/status")
    async def status(view: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        """The worker's settings (secrets masked), its flows and the ingest loop's last batch."""
        runner = getattr(app, "gp_ingest_runner", None)
        body = {
            "settings": ctx.settings.masked_dump(),
            "flows": list(getattr(app, "gp_flows", ())),
            "ingest_last_batch_s_ago": (
                None if runner is None else round(time.monotonic() - float(runner.last_success), 1)
            ),
        }
        return view.json(body)

    _ = (health, prometheus, status)
