"""The secured parts of `gateway demo`: the demo's ACLs and connection kits, the command each
recipient would run with its kit, and `--keep-running` / `gateway demo stop`.

With --keep-running the broker, the worker and the SNE simulator stay up, detached and idle; what
runs is recorded in `<state_dir>/demo/running.json` (pids, prefix, URLs: no secret), which
`gateway demo stop` reads to stop exactly those processes."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from gateway.broker.local import free_port, pid_alive
from gateway.settings import GatewaySettings

__all__ = [
    "print_kit_commands",
    "running_file",
    "start_detached_simulator",
    "step_acl",
    "step_kits",
    "stop_demo",
    "write_running",
]


def step_acl(ctx: Any) -> None:
    """Apply the demo's ACLs (derived from the actors file) for its prefix and app id."""
    from gateway.cli.acl import apply_acls  # noqa: PLC0415

    change = apply_acls(ctx.settings)
    ctx.say(f"ACLs applied for prefix {ctx.settings.topic_prefix!r}: {len(change.missing)} added")


def step_kits(ctx: Any) -> None:
    """Create a credential for every actor and source (0600 client files in the state dir), and one
    for the worker, which then runs as principal `<app id>.ingest` with only the gateway's ACLs."""
    from gateway.policy.model import load_policy  # noqa: PLC0415
    from gateway.security.kits import credential_file, ensure_credential  # noqa: PLC0415

    settings: GatewaySettings = ctx.settings
    pol = load_policy(settings.policy_file, secret=settings.pseudonymisation_secret)
    ids = [*sorted(pol.actors), *sorted(pol.sources)]
    for pid in ids:
        ensure_credential(settings, pid)
    worker = f"{settings.app_id}.ingest"
    ensure_credential(settings, worker)
    ctx.worker_client_file = credential_file(settings, worker)
    ctx.kit_ids = ids
    ctx.say(f"{len(ids) + 1} connection kits ready ({credential_file(settings, 'x').parent}, 0600)")


def print_kit_commands(ctx: Any) -> None:
    """Per actor: the command a recipient runs with its kit (librdkafka: kcat / confluent-kafka)."""
    from gateway.policy.model import load_policy  # noqa: PLC0415
    from gateway.security.acl import actor_group_prefix  # noqa: PLC0415
    from gateway.topics import actor_topic  # noqa: PLC0415

    settings: GatewaySettings = ctx.settings
    pol = load_policy(settings.policy_file, secret=settings.pseudonymisation_secret)
    click.echo("")
    click.echo(
        "each recipient reads its own topic with its kit (with the demo's GATEWAY_* settings: the export"
        " lines of --keep-running; umask 077: the kit holds its secret):"
    )
    for aid in sorted(pol.actors):
        conf = f"{aid}.conf"
        group = actor_group_prefix(aid, settings.app_id) + "main"
        click.echo(
            f"  {aid:24} gateway actors client-config {shlex.quote(aid)} > {conf}"
            f" && kcat -F {conf} -G {group} {actor_topic(aid, settings.topic_prefix)}"
        )


def running_file(settings: GatewaySettings) -> Path:
    return Path(settings.state_dir).expanduser() / "demo" / "running.json"


def start_detached_simulator(ctx: Any) -> tuple[int, str] | None:
    """Restart the SNE simulator of the demo's work folder, detached (its state kept)."""
    work = Path(ctx.workdir) / "sne"
    certs, state = work / "certs", work / "sim-state"
    if not certs.is_dir():
        return None
    port = free_port()
    log = work / "simulator.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own CLI
            [
                sys.executable,
                "-m",
                "gateway",
                "sne",
                "simulate",
                "--port",
                str(port),
                "--certs",
                str(certs),
                "--state",
                str(state),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return proc.pid, f"https://127.0.0.1:{port}/services/DemandeLogementImplService/"


def write_running(ctx: Any, sim: tuple[int, str] | None) -> dict[str, Any]:
    """Record what the kept demo runs; print the prefix, the export lines and the URLs."""
    from gateway.kafka_config import local_admin_client_file  # noqa: PLC0415

    settings: GatewaySettings = ctx.settings
    client_file = settings.kafka_client_file or local_admin_client_file(settings)
    exports = {
        "GATEWAY_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "GATEWAY_TOPIC_PREFIX": settings.topic_prefix,
        "GATEWAY_APP_ID": settings.app_id,
        "GATEWAY_STATE_DIR": str(Path(settings.state_dir).expanduser()),
        "GATEWAY_KAFKA_CLIENT_FILE": str(client_file),  # a path to a 0600 file, never the secret
    }
    urls = {
        "worker health": f"http://{settings.web_host}:{settings.web_port}/health",
        "worker metrics": f"http://{settings.web_host}:{settings.web_port}/metrics",
    }
    pids = {"worker": ctx.worker.pid if ctx.worker is not None else None}
    if sim is not None:
        pids["sne simulator"] = sim[0]
        urls["SNE simulator"] = sim[1]
    state = {
        "prefix": settings.topic_prefix,
        "pids": pids,
        "broker_started": bool(ctx.started_broker),
        "workdir": str(ctx.workdir),
        "exports": exports,
        "urls": urls,
    }
    path = running_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=1), encoding="utf-8")
    click.echo("")
    click.echo(f"prefix: {settings.topic_prefix}")
    for name, value in exports.items():
        click.echo(f"export {name}={shlex.quote(value)}")
    for name, url in urls.items():
        click.echo(f"# {name}: {url}")
    click.echo("# stop everything with: gateway demo stop")
    return state


def _terminate(pid: int, timeout: float = 30.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def stop_demo(settings: GatewaySettings) -> list[str]:
    """Stop what a kept demo runs (worker, simulator, the broker if the demo started it); the names
    of what was stopped (empty when nothing ran)."""
    import shutil  # noqa: PLC0415

    path = running_file(settings)
    if not path.is_file():
        return []
    state = json.loads(path.read_text(encoding="utf-8"))
    stopped = []
    for name, pid in state.get("pids", {}).items():
        if pid and pid_alive(int(pid)):
            _terminate(int(pid))
            stopped.append(name)
    if state.get("broker_started"):
        from gateway.cli.broker import stop_local_broker  # noqa: PLC0415

        if stop_local_broker(settings) is not None:
            stopped.append("Kafka broker")
    workdir = state.get("workdir")
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    path.unlink(missing_ok=True)
    return stopped
