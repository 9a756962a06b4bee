"""/health and /metrics of a sink process (`gateway connectors run`), on a small aiohttp server.

/health answers 204 when the broker answers and the sink has no current problem, otherwise 500 with
one line per problem (the retrying sink's reason, "kafka unreachable"); never a payload value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from gateway.monitoring.metrics import CONTENT_TYPE, Metrics

__all__ = ["SinkWeb"]


class SinkWeb:
    """Serves `problems()` on /health and `metrics` on /metrics until `stop()`."""

    def __init__(
        self,
        metrics: Metrics,
        problems: Callable[[], list[str]],
        broker_ok: Callable[[], bool],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.metrics = metrics
        self.problems = problems
        self.broker_ok = broker_ok
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def _health(self, request: web.Request) -> web.Response:
        problems = list(self.problems())
        if not await asyncio.to_thread(self.broker_ok):
            problems.insert(0, "kafka unreachable")
        if not problems:
            return web.Response(status=204)
        return web.Response(status=500, text="\n".join(problems) + "\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        body = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def start(self) -> int:
        """Start serving; returns the bound port (port 0 picks a free one)."""
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
