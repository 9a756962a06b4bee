"""`gateway broker install|start|stop|status`: the local single-node Kafka broker.

Jars are cached under <state_dir>/kafka/<version>/libs; the broker's data, pid file and log live
under <state_dir>/broker/<version>/. The listener is the port of GATEWAY_BOOTSTRAP_SERVERS
(127.0.0.1:9092 by default).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import click

from gateway.broker import LocalBroker, broker_answers, install_kafka, kafka_libs, libs_present
from gateway.errors import GatewayError, RetriableError
from gateway.jvm_process import running_pid, stop_running
from gateway.kafka_config import client_kwargs
from gateway.security.preflight import preflight
from gateway.settings import GatewaySettings

__all__ = ["broker", "broker_dir", "ensure_local_broker", "stop_local_broker"]


def broker_dir(settings: GatewaySettings) -> Path:
    return Path(settings.state_dir).expanduser() / "broker" / settings.kafka_version


def _running_pid(settings: GatewaySettings) -> int | None:
    return running_pid(broker_dir(settings) / "broker.pid")


def ensure_local_broker(settings: GatewaySettings, *, echo: bool = True) -> tuple[str, bool]:
    """Make sure a broker answers at settings.bootstrap_servers, starting the local one if needed.

    A broker that listens is checked with this process's credentials: refused ones are a clear
    error (ConfigError naming the principal and the reason), not a second broker started.
    Returns (bootstrap, started_here)."""
    with _start_lock(settings):  # two starts at once: the second finds the first's broker
        return _ensure_local_broker(settings, echo=echo)


@contextlib.contextmanager
def _start_lock(settings: GatewaySettings) -> Iterator[None]:
    """An exclusive lock on <broker dir>/start.lock for the check-then-start of the local broker (two
    `gateway broker start` at the same moment used to leave a broker `broker stop` could not stop)."""
    folder = broker_dir(settings)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(folder / "start.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _ensure_local_broker(settings: GatewaySettings, *, echo: bool) -> tuple[str, bool]:
    bootstrap = settings.bootstrap_servers
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    if _listens(bootstrap):
        preflight(client_kwargs(settings))
        return bootstrap, False
    if host not in ("127.0.0.1", "localhost"):
        raise click.ClickException(f"no broker answers at {bootstrap} (a remote cluster is not started here)")
    if not libs_present(settings.state_dir, settings.kafka_version):
        if echo:
            click.echo(f"fetching Apache Kafka {settings.kafka_version} from Maven Central (once)...")
        install_kafka(settings.state_dir, settings.kafka_version)
    libs = kafka_libs(settings.state_dir, settings.kafka_version)
    local = LocalBroker(libs, broker_dir(settings), port=int(port), secure=_secure(settings))
    if echo:
        click.echo(f"starting Kafka {settings.kafka_version} on {local.host}:{port} ...")
    started = local.start(wait=90)
    return started, True


def _secure(settings: GatewaySettings) -> bool:
    """The local broker is secured unless the development flag asks for PLAINTEXT explicitly."""
    return not (settings.kafka_allow_plaintext and settings.kafka_security_protocol == "PLAINTEXT")


def _listens(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",", maxsplit=1)[0].rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=2.0):
            return True
    except OSError:
        return False


def _answers(settings: GatewaySettings) -> bool:
    """The broker answers this process's client (False also when the credentials are refused)."""
    try:
        client = client_kwargs(settings)
    except GatewayError:
        return False
    bootstrap = client.pop("bootstrap_servers")
    return broker_answers(bootstrap, client=client)


@click.group("broker")
def broker() -> None:
    """Drive the local single-node Kafka broker (KRaft, loopback)."""


@broker.command("install")
def install() -> None:
    """Fetch Apache Kafka from Maven Central into the cache (once per version)."""
    settings = GatewaySettings()
    libs = install_kafka(settings.state_dir, settings.kafka_version)
    click.echo(f"Kafka {settings.kafka_version}: {len(list(libs.glob('*.jar')))} jars in {libs}")


@broker.command("start")
def start() -> None:
    """Start the broker (if none answers) and wait until it is ready."""
    settings = GatewaySettings()
    bootstrap, started = ensure_local_broker(settings)
    if started:
        click.echo(f"Kafka ready on {bootstrap} (data and log in {broker_dir(settings)})")
    else:
        click.echo(f"a broker already answers on {bootstrap}")


def stop_local_broker(settings: GatewaySettings) -> int | None:
    """Stop the broker started by `broker start` / `demo`; return its pid (None if none was running)."""
    try:
        return stop_running(broker_dir(settings) / "broker.pid", "broker")
    except RetriableError as exc:
        raise click.ClickException(str(exc)) from None


@broker.command("stop")
def stop() -> None:
    """Stop the local broker cleanly (SIGTERM, SIGKILL after 20 s)."""
    pid = stop_local_broker(GatewaySettings())
    click.echo("no local broker is running" if pid is None else f"Kafka stopped (pid {pid})")


@broker.command("status")
def status() -> None:
    """Say whether the broker runs, where it listens and where its files are (exit 1 if down)."""
    settings = GatewaySettings()
    pid = _running_pid(settings)
    bootstrap = settings.bootstrap_servers
    answers = _answers(settings)
    libs = kafka_libs(settings.state_dir, settings.kafka_version)
    click.echo(f"kafka version : {settings.kafka_version}")
    installed = libs_present(settings.state_dir, settings.kafka_version)
    click.echo(f"jars          : {libs if installed else 'not installed'}")
    click.echo(f"data dir      : {broker_dir(settings)}")
    click.echo(f"log           : {broker_dir(settings) / 'broker.log'}")
    secured = (broker_dir(settings) / "secured").exists()
    admin_file = broker_dir(settings) / "security" / "admin-client.json"
    click.echo(f"security      : {f'SASL_SSL, admin client file {admin_file}' if secured else 'PLAINTEXT'}")
    click.echo(f"local pid     : {pid if pid is not None else '-'}")
    click.echo(f"bootstrap     : {bootstrap} ({'answers' if answers else 'not answering'})")
    if not answers:
        raise SystemExit(1)


@broker.command("init-security")
@click.option(
    "--dir", "directory", type=click.Path(path_type=Path), required=True, help="Where to create it."
)
@click.option(
    "--host", "hosts", multiple=True, help="Another host name of the broker (its certificate's SAN)."
)
def init_security(directory: Path, hosts: tuple[str, ...]) -> None:
    """Create a broker's security material (CA, key, SCRAM secrets, admin client file; 0600) once,
    for a broker this command does not start (docker/compose.yaml). Prints paths, never a secret."""
    from gateway.broker.tls import BrokerSecurity, write_private  # noqa: PLC0415

    sec = BrokerSecurity(directory, tuple(hosts)).ensure()
    write_private(directory / "admin.secret", sec.admin_secret())  # for the broker's --add-scram
    click.echo(
        f"security material in {directory} (CA {sec.ca_cert}, admin client file {sec.admin_client_file})"
    )
