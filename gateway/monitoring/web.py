"""Pages on faust's web server: /health (204 when the broker answers, 500 otherwise) and /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import faust

from gateway.broker.local import broker_answers
from gateway.kafka_config import client_kwargs
from gateway.monitoring.metrics import Metrics

if TYPE_CHECKING:
    from gateway.flows.app import FlowContext

__all__ = ["consumer_lag", "register_pages"]

PROM_CONTENT_TYPE = "text/plain; version=0.0.4"


def consumer_lag(app: faust.App) -> Mapping[tuple[str, int], int]:
    """Records not yet committed per assigned partition: high watermark - committed offset."""
    consumer = app.consumer
    committed: Mapping[Any, int] = app.monitor.tp_committed_offsets
    out: dict[tuple[str, int], int] = {}
    for tp in consumer.assignment():
        try:
            high = consumer.highwater(tp)
        except Exception:  # noqa: BLE001, S112 - unknown until the first fetch
            continue
        if high is None:
            continue
        done = committed.get(tp)
        out[(tp.topic, tp.partition)] = int(high) - int(done if done is not None else 0)
    return out


def register_pages(app: faust.App, ctx: FlowContext) -> None:
    metrics: Metrics = ctx.metrics
    client = client_kwargs(ctx.settings)
    bootstrap = client.pop("bootstrap_servers")
    metrics.set_lag_source(lambda: consumer_lag(app), ctx.settings.app_id)

    @app.page("/health")
    async def health(view: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        ok = await asyncio.to_thread(broker_answers, bootstrap, 2.0, client)
        if ok:
            return view.bytes(b"", status=204)
        return view.text("kafka unreachable\n", status=500)

    @app.page("/metrics")
    async def prometheus(view: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return view.bytes(metrics.render(), content_type=PROM_CONTENT_TYPE)

    _ = (health, prometheus)
