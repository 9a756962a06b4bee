"""`gateway connectors list|describe|check|run`: the connector plug-ins (entry points)."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import click
import yaml

from gateway import registry
from gateway.connectors import Source
from gateway.errors import ConfigError
from gateway.settings import GatewaySettings

__all__ = ["connectors"]


def _config(config_file: Path | None, sets: tuple[str, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            loaded = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
            raise ConfigError(f"{config_file}: not a readable YAML file ({type(exc).__name__})") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{config_file}: a mapping of options is expected")
        values.update(loaded)
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"--set {item!r}: expected KEY=VALUE")
        try:
            values[key.strip()] = yaml.safe_load(value)
        except (yaml.YAMLError, RecursionError) as exc:
            reason = f"not a YAML value ({type(exc).__name__})"
            raise click.BadParameter(f"--set {key.strip()!r}: {reason}") from exc
    return values


@click.group("connectors")
def connectors() -> None:
    """Connector plug-ins registered in the `gateway.connectors` entry-point group."""


@connectors.command("list")
def list_() -> None:
    """Installed connectors, their kind and delivery guarantee."""
    for name in registry.available():
        cls = registry.load(name)
        kind = "source" if hasattr(cls, "run") else "sink"
        click.echo(f"{name:12} {kind:6} {getattr(cls, 'guarantee', '?'):14} {cls.__module__}.{cls.__name__}")


@connectors.command("describe")
@click.argument("name")
def describe(name: str) -> None:
    """JSON Schema of a connector's configuration."""
    cls = registry.load(name)
    click.echo(json.dumps(cls.Config.model_json_schema(), indent=2, ensure_ascii=False))


_CONFIG_OPTS = [
    click.option("--config", "config_file", type=click.Path(path_type=Path, exists=True), help="YAML file."),
    click.option("--set", "sets", multiple=True, help="KEY=VALUE option (repeatable, YAML value)."),
]


def _with_config(f: Any) -> Any:
    for opt in reversed(_CONFIG_OPTS):
        f = opt(f)
    return f


@connectors.command("check")
@click.argument("name")
@_with_config
def check(name: str, config_file: Path | None, sets: tuple[str, ...]) -> None:
    """Validate a connector's config and reachability without moving data."""
    result = registry.build(name, _config(config_file, sets)).check()
    click.echo(("ok: " if result.ok else "not ok: ") + result.detail)
    if not result.ok:
        raise SystemExit(1)


@connectors.command("run")
@click.argument("name")
@_with_config
@click.option(
    "--actor", help="Sink: the actor whose filtered stream it delivers (it connects as that actor)."
)
@click.option("--until-idle", is_flag=True, help="Sink: drain the topic, then exit 0 (a nightly job).")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Sink: records per poll and write [default: the sink's own: 500, postgres 2000].",
)
@click.option(
    "--retry-attempts",
    default=0,
    show_default=True,
    help="Sink: tries of a record the sink cannot take for now before dead-lettering it (0: until it works).",
)
@click.option(
    "--web-port",
    type=int,
    default=None,
    help="Sink: port of /health and /metrics (default GATEWAY_WEB_PORT, 0 any free port, -1 none).",
)
@click.option(
    "--allow-no-erasure",
    is_flag=True,
    help="Sink: run a sink that cannot erase (erasures reach it as records; erase the copy otherwise).",
)
def run(  # noqa: PLR0917 - one parameter per click option
    name: str,
    config_file: Path | None,
    sets: tuple[str, ...],
    actor: str | None,
    until_idle: bool,
    batch_size: int | None,
    retry_attempts: int,
    web_port: int | None,
    allow_no_erasure: bool,
) -> None:
    """Run a connector until stopped (Ctrl-C / SIGTERM): a SOURCE publishes to its raw topics; a SINK
    delivers one actor's stream (--actor) with retries, dead letters, /health and /metrics."""
    connector = registry.build(name, _config(config_file, sets))
    settings = GatewaySettings()
    if isinstance(connector, Source):
        if actor or until_idle:
            raise click.UsageError(f"{name} is a source connector: --actor and --until-idle are for sinks")
        _run_source(name, connector, settings)
        return
    from gateway.flows.sinks import SinkOptions, run_sink  # noqa: PLC0415
    from gateway.retry import RetryPolicy  # noqa: PLC0415

    options = SinkOptions(
        actor=actor,
        until_idle=until_idle,
        batch_size=batch_size,
        retry=RetryPolicy(attempts=retry_attempts, base_delay=0.5, max_delay=30.0),
        web_port=web_port,
        on_web=lambda port: click.echo(f"{name}: /health and /metrics on port {port}", err=True),
        allow_no_erasure=allow_no_erasure,
    )
    try:
        runner = asyncio.run(run_sink(connector, settings, options))
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    click.echo(f"{name}: {runner.processed} record(s) read", err=True)


def _run_source(name: str, source: Source, settings: GatewaySettings) -> None:
    from gateway.broker.emit import run_source  # noqa: PLC0415

    async def main() -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(source.stop()))
        return await run_source(source, settings)

    count = asyncio.run(main())
    click.echo(f"{name}: {count} event(s) published")
