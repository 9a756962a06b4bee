"""`gateway run --flows ingest,route,...`: run the gateway's faust worker.

Before the worker starts: wait for the broker (clear message, retry with backoff, no traceback),
then create the topics the flows declare. SIGTERM / Ctrl-C stop the worker cleanly.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import click

from gateway.broker.local import broker_answers
from gateway.errors import RetriableError
from gateway.flows.admin import ensure_topics
from gateway.flows.app import DEFAULT_FLOWS, create_app, flow_topics
from gateway.monitoring.logs import install_repeat_filter
from gateway.settings import GatewaySettings

__all__ = ["run", "run_worker", "wait_for_broker"]

_log = logging.getLogger(__name__)


def wait_for_broker(bootstrap: str, *, max_wait: float = 0.0, quiet: bool = False) -> None:
    """Return once a broker answers at `bootstrap`; back off 1 s, 2 s, 4 s ... 30 s between tries.

    max_wait 0 waits forever; otherwise RetriableError after `max_wait` seconds."""
    delay = 1.0
    started = time.monotonic()
    while not broker_answers(bootstrap):
        waited = time.monotonic() - started
        if max_wait and waited >= max_wait:
            raise RetriableError(f"no Kafka broker answers at {bootstrap} (waited {waited:.0f}s)")
        if not quiet:
            click.echo(
                f"Kafka is not reachable at {bootstrap}; retrying in {delay:.0f}s "
                "(start it with `gateway broker start`, or set GATEWAY_BOOTSTRAP_SERVERS)",
                err=True,
            )
        time.sleep(delay)
        delay = min(delay * 2, 30.0)


def run_worker(
    settings: GatewaySettings, flows: Sequence[str], *, max_wait: float = 0.0, loglevel: str = "warning"
) -> None:
    """Wait for the broker, create the declared topics, run the worker until it is stopped."""
    from faust.worker import Worker  # noqa: PLC0415 - heavy import

    app = create_app(settings, flows)
    Path(app.conf.datadir).parent.mkdir(parents=True, exist_ok=True)
    wait_for_broker(settings.bootstrap_servers, max_wait=max_wait)
    created = ensure_topics(settings.bootstrap_servers, flow_topics(app))
    if created:
        _log.info("created topics: %s", ", ".join(created))
    click.echo(
        f"gateway worker: flows {', '.join(flows)} on {settings.bootstrap_servers}, "
        f"guarantee {settings.processing_guarantee}, web http://{settings.web_host}:{settings.web_port}",
        err=True,
    )

    class CalmWorker(Worker):  # faust ships no type hints: Worker is Any
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            install_repeat_filter(logger)

    worker = CalmWorker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False, override_logging=False)
    worker.execute_from_commandline()


@click.command("run")
@click.option(
    "--flows",
    default=",".join(DEFAULT_FLOWS),
    show_default=True,
    help="Comma-separated flows (modules under gateway.flows), e.g. ingest,route,egress.",
)
@click.option(
    "--max-wait", default=0.0, show_default=True, help="Give up if Kafka does not answer (s, 0 = never)."
)
@click.option("--worker-log-level", default="warning", show_default=True, help="faust worker log level.")
def run(flows: str, max_wait: float, worker_log_level: str) -> None:
    """Run the gateway flows (faust worker) until SIGTERM or Ctrl-C."""
    names = [f.strip() for f in flows.split(",") if f.strip()]
    try:
        run_worker(GatewaySettings(), names, max_wait=max_wait, loglevel=worker_log_level)
    except KeyboardInterrupt:
        sys.exit(130)
