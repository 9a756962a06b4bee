"""`gateway registry install|start|stop|status`: the local schema registry (Apicurio Registry 3).

The application is cached under <state_dir>/registry/<version>/app; its H2 database, pid file and
log live under <state_dir>/registry/<version>/data/ (schema ids survive restarts). It listens on the
loopback port of GATEWAY_SCHEMA_REGISTRY_URL (http://127.0.0.1:8081/apis/ccompat/v7 by default),
its management interface on a free loopback port.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import click

from gateway.errors import RetriableError
from gateway.jvm_process import running_pid, stop_running
from gateway.registry_local import (
    CCOMPAT_PATH,
    REGISTRY_VERSION,
    LocalRegistry,
    install_registry,
    registry_answers,
    registry_home,
    registry_installed,
)
from gateway.settings import GatewaySettings

__all__ = ["DEFAULT_LOCAL_URL", "ensure_local_registry", "registry", "registry_url", "stop_local_registry"]

DEFAULT_LOCAL_URL = f"http://127.0.0.1:8081{CCOMPAT_PATH}"


def registry_url(settings: GatewaySettings) -> str:
    return (settings.schema_registry_url or DEFAULT_LOCAL_URL).rstrip("/")


def data_dir(settings: GatewaySettings) -> Path:
    return registry_home(settings.state_dir, REGISTRY_VERSION) / "data"


def _running_pid(settings: GatewaySettings) -> int | None:
    return running_pid(data_dir(settings) / "registry.pid")


def ensure_local_registry(settings: GatewaySettings, *, echo: bool = True) -> tuple[str, bool]:
    """Make sure a registry answers at the configured URL, starting the local one if needed.

    Returns (url, started_here)."""
    url = registry_url(settings)
    if registry_answers(url):
        return url, False
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost") or parts.path.rstrip("/") != CCOMPAT_PATH:
        raise click.ClickException(
            f"no schema registry answers at {url} (a remote registry is not started here)"
        )
    pid = _running_pid(settings)
    if pid is not None:  # one local registry per state dir (its H2 file is locked by the running one)
        try:
            where = (data_dir(settings) / "url").read_text(encoding="utf-8").strip()
        except OSError:
            where = "?"
        raise click.ClickException(
            f"a local schema registry already runs from {data_dir(settings)} (pid {pid}, at {where}): "
            "point GATEWAY_SCHEMA_REGISTRY_URL at it, or `gateway registry stop` it"
        )
    if not registry_installed(settings.state_dir):
        if echo:
            click.echo(f"fetching Apicurio Registry {REGISTRY_VERSION} from Maven Central (once)...")
        install_registry(settings.state_dir)
    local = LocalRegistry(
        registry_home(settings.state_dir) / "app", data_dir(settings), port=parts.port or 80
    )
    if echo:
        click.echo(f"starting the schema registry on {local.host}:{local.port} ...")
    return local.start(), True


def stop_local_registry(settings: GatewaySettings) -> int | None:
    """Stop the registry started by `registry start` / `demo`; return its pid (None if none ran)."""
    try:
        return stop_running(data_dir(settings) / "registry.pid", "schema registry")
    except RetriableError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("registry")
def registry() -> None:
    """Drive the local schema registry (Apicurio Registry 3, Confluent-compatible API, loopback)."""


@registry.command("install")
def install() -> None:
    """Fetch Apicurio Registry from Maven Central into the cache (once per version)."""
    settings = GatewaySettings()
    app = install_registry(settings.state_dir)
    click.echo(f"Apicurio Registry {REGISTRY_VERSION} in {app}")


@registry.command("start")
def start() -> None:
    """Start the registry (if none answers) and wait until it is ready."""
    settings = GatewaySettings()
    url, started = ensure_local_registry(settings)
    if started:
        click.echo(f"schema registry ready: {url} (data and log in {data_dir(settings)})")
        click.echo(f"browse: {url}/subjects")
    else:
        click.echo(f"a schema registry already answers at {url}")


@registry.command("stop")
def stop() -> None:
    """Stop the local registry cleanly (SIGTERM, SIGKILL after 20 s)."""
    pid = stop_local_registry(GatewaySettings())
    click.echo(
        "no local schema registry is running" if pid is None else f"schema registry stopped (pid {pid})"
    )


@registry.command("status")
def status() -> None:
    """Say whether the registry runs, where it listens and where its files are (exit 1 if down)."""
    settings = GatewaySettings()
    url = registry_url(settings)
    answers = registry_answers(url)
    pid = _running_pid(settings)
    click.echo(f"version       : Apicurio Registry {REGISTRY_VERSION}")
    home = registry_home(settings.state_dir)
    click.echo(
        f"application   : {home / 'app' if registry_installed(settings.state_dir) else 'not installed'}"
    )
    click.echo(f"data dir      : {data_dir(settings)}")
    click.echo(f"log           : {data_dir(settings) / 'registry.log'}")
    click.echo(f"local pid     : {pid if pid is not None else '-'}")
    click.echo(f"url           : {url} ({'answers' if answers else 'not answering'})")
    if not answers:
        raise SystemExit(1)
