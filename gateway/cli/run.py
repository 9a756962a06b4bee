"""`gateway run --flows ingest,route,...`: run the gateway's faust worker.

Before the worker starts: wait for the broker (clear message, retry with backoff, no traceback),
then create the topics the flows declare. SIGTERM / Ctrl-C stop the worker cleanly.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from gateway.errors import RetriableError
from gateway.flows.admin import ensure_topics
from gateway.flows.app import DEFAULT_FLOWS, create_app, flow_topics
from gateway.kafka_config import as_client_kwargs, bootstrap_of, client_kwargs
from gateway.security.preflight import preflight
from gateway.settings import GatewaySettings

__all__ = ["run", "run_worker", "wait_for_broker"]

_log = logging.getLogger(__name__)


def _answers(kwargs: dict[str, object]) -> bool:
    try:
        preflight(kwargs)
    except RetriableError:
        return False
    return True


def wait_for_broker(target: str | Mapping[str, Any], *, max_wait: float = 0.0, quiet: bool = False) -> None:
    """Return once a broker answers `target` (kafka-python kwargs, or a bootstrap string reached
    with this process's security) and accepts its credentials; back off 1 s, 2 s, 4 s ... 30 s
    between tries. Refused credentials or certificates: ConfigError naming the principal and the
    reason (retrying cannot help).

    max_wait 0 waits forever; otherwise RetriableError after `max_wait` seconds."""
    kwargs = as_client_kwargs(target)
    bootstrap = bootstrap_of(target)
    delay = 1.0
    started = time.monotonic()
    while not _answers(kwargs):
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
    wait_for_broker(client_kwargs(settings), max_wait=max_wait)
    created = ensure_topics(client_kwargs(settings), flow_topics(app), reconcile=True)
    if created:
        _log.info("created topics: %s", ", ".join(created))
    click.echo(
        f"gateway worker: flows {', '.join(flows)} on {settings.bootstrap_servers}, "
        f"guarantee {settings.processing_guarantee}, web http://{settings.web_host}:{settings.web_port}",
        err=True,
    )

    # override_logging=False: faust keeps the command's logging (its filters: gateway.cli)
    worker = Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False, override_logging=False)
    worker.execute_from_commandline()


@click.command("run")
@click.option(
    "--flows",
    default=",".join(DEFAULT_FLOWS),
    show_default=True,
    help="Comma-separated flows (modules under gateway.flows), e.g. ingest,route.",
)
@click.option(
    "--sinks",
    "sinks_file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="YAML file of sinks to run next to the flows (connector, actor, config): see docs/sinks.md.",
)
@click.option(
    "--max-wait", default=0.0, show_default=True, help="Give up if Kafka does not answer (s, 0 = never)."
)
@click.option("--worker-log-level", default="warning", show_default=True, help="faust worker log level.")
def run(flows: str, max_wait: float, worker_log_level: str, sinks_file: Path | None) -> None:
    """Run the gateway flows (faust worker), and the sinks of --sinks, until SIGTERM or Ctrl-C."""
    names = [f.strip() for f in flows.split(",") if f.strip()]
    if "egress" in names:
        raise click.UsageError(
            "egress is not a flow: a sink runs with `gateway connectors run NAME --actor ACTOR`, "
            "or next to the flows with `gateway run --sinks FILE`"
        )
    settings = GatewaySettings()
    threads = None
    if sinks_file is not None:
        from gateway.flows.sinks import SinkThreads, load_sinks_file  # noqa: PLC0415

        threads = SinkThreads(settings, load_sinks_file(sinks_file))  # every config checked first
        wait_for_broker(settings.bootstrap_servers, max_wait=max_wait)
        threads.start()
    try:
        run_worker(settings, names, max_wait=max_wait, loglevel=worker_log_level)
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        if threads is not None:
            threads.stop()
