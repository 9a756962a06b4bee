"""`gateway demo`: the gateway on its bundled sample data, from a bare machine, then stop.

Steps (each a callable taking the DemoContext, listed in STEPS; the worker runs FLOWS):
  broker   start the local, secured Kafka broker unless one answers (stopped again at the end)
  topics   create the topics of the flows
  acl      apply the ACLs derived from the actors file for the demo's prefix and app id
  kits     create the connection kits of every actor and source, and the worker's own credential
  worker   start `gateway run --flows <FLOWS>` as a subprocess
  sources  drop samples/<format>/* and samples/bad/* in one folder per declared source, run file-drop
  drain    wait until the worker has committed every raw input
  route    summarise what the route flow delivered to each actor and audited
  sne      start the SNE simulator (mutual TLS) and the SNE connector; report its answers
then print a table of what flowed where (records per topic), the command each recipient would run
with its kit, and stop everything cleanly; or, --keep-running, leave the broker, the worker and the
SNE simulator running detached and print how to reach them (`gateway demo stop` stops them).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from connectors.sne.demo import sne_report_topics, step_sne

from gateway.broker.local import free_port
from gateway.cli.demo_secure import (
    print_kit_commands,
    running_file,
    start_detached_console,
    start_detached_simulator,
    step_acl,
    step_kits,
    stop_demo,
    write_running,
)
from gateway.cli.signals import demo_report_topics as signals_report_topics
from gateway.cli.signals import demo_step as signals_demo_step
from gateway.errors import GatewayError
from gateway.formats import INPUT_FORMATS
from gateway.kafka_config import client_kwargs, explicit_security, local_admin_client_file
from gateway.policy.demo import route_report_topics, step_route
from gateway.registry_local.demo import step_registry, stop_registry
from gateway.settings import GatewaySettings
from gateway.topics import ingest_group

__all__ = ["FLOWS", "REPORT_TOPICS", "STEPS", "TOPIC_LABELS", "DemoContext", "DemoStep", "demo"]

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
BAD_PREFIX = {f"{f.short}-": f.name for f in INPUT_FORMATS}  # samples/bad/<short name>-...


@dataclass
class DemoContext:
    settings: GatewaySettings
    workdir: Path
    samples: Path
    flows: list[str]
    worker: subprocess.Popen[bytes] | None = None
    started_broker: bool = False
    started_registry: bool = False
    files_emitted: int = 0
    files_rejected: int = 0
    consumed: list[str] = field(default_factory=list)  # topics the worker's agents read
    ingested: tuple[int, int] = (0, 0)  # canonical records, dead letters once the sources are drained
    notes: list[str] = field(default_factory=list)
    keep_running: bool = False
    worker_client_file: Path | None = None  # the worker's own credential (principal <app id>.ingest)
    kit_ids: list[str] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return self.settings.bootstrap_servers

    def say(self, text: str) -> None:
        click.echo(f"[demo] {text}")


DemoStep = Callable[[DemoContext], None]


def step_broker(ctx: DemoContext) -> None:
    from gateway.cli.broker import ensure_local_broker  # noqa: PLC0415

    bootstrap, started = ensure_local_broker(ctx.settings)
    ctx.started_broker = started
    ctx.say(f"Kafka on {bootstrap} ({'started for the demo' if started else 'already running'})")


def step_topics(ctx: DemoContext) -> None:
    from gateway.flows.admin import ensure_topics  # noqa: PLC0415
    from gateway.flows.app import create_app, flow_topics  # noqa: PLC0415

    app = create_app(ctx.settings, ctx.flows)
    consumed = {t for agent in app.agents.values() for t in getattr(agent.channel, "topics", ())}
    runner = getattr(app, "gp_ingest_runner", None)  # the ingest loop is not a faust agent
    ctx.consumed = sorted(consumed | set(runner.formats if runner is not None else ()))
    created = ensure_topics(ctx.bootstrap, flow_topics(app))
    ctx.say(f"{len(created)} topics created (prefix {ctx.settings.topic_prefix!r})")


def worker_env(settings: GatewaySettings) -> dict[str, str]:
    import os  # noqa: PLC0415

    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    for name, value in settings.model_dump(exclude_none=True).items():
        plain = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        env[f"GATEWAY_{name.upper()}"] = str(plain)
    return env


def step_worker(ctx: DemoContext) -> None:
    log = ctx.workdir / "worker.log"
    cmd = [sys.executable, "-m", "gateway", "run", "--flows", ",".join(ctx.flows)]
    env = worker_env(ctx.settings)
    who = "admin principal"
    if ctx.worker_client_file is not None:  # the worker's own principal: only the gateway's ACLs
        env = {k: v for k, v in env.items() if not k.startswith("GATEWAY_KAFKA_")}
        env["GATEWAY_KAFKA_CLIENT_FILE"] = str(ctx.worker_client_file)
        who = f"principal {ctx.settings.app_id}.ingest"
    with log.open("ab") as out:
        ctx.worker = subprocess.Popen(  # noqa: S603
            cmd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # --keep-running leaves it running after the demo's terminal
        )
    ctx.say(f"gateway worker started: flows {','.join(ctx.flows)} as {who} (pid {ctx.worker.pid}, log {log})")


def step_sources(ctx: DemoContext) -> None:
    from connectors.file_drop.demo import step_sources as drop_samples  # noqa: PLC0415

    drop_samples(ctx)  # one file-drop connector per declared source (connectors/file_drop/demo.py)


def _left(consumer: Any, reader: Any, group: Any, tps: list[Any], *, look_s: float = 1.0) -> int:
    """Records of `tps` the group has not committed yet (0 when only transaction markers are left)."""
    committed = {tp: group.committed(tp) or 0 for tp in tps}  # read first: see step_drain
    ends = consumer.end_offsets(tps)
    behind = [tp for tp in tps if committed[tp] < ends[tp]]
    if not behind:
        return 0
    # on a transactional topic the last offsets are commit markers, never "processed": look at every
    # partition behind at once (one poll loop, not one wait a partition) for a record past the commit
    reader.assign(behind)
    for tp in behind:
        reader.seek(tp, committed[tp])
    found: set[Any] = set()
    unsure = set(behind)
    deadline = time.monotonic() + look_s
    while unsure and time.monotonic() < deadline:
        found |= {tp for tp, records in reader.poll(timeout_ms=100).items() if records}
        unsure = {tp for tp in unsure - found if reader.position(tp) < ends[tp]}
    # a record seen, or no answer yet: still to process (as before, never drained on a guess)
    return sum(ends[tp] - committed[tp] for tp in behind if tp in found or tp in unsure)


def step_drain(ctx: DemoContext, timeout_s: float = 180.0) -> None:
    """Wait until the worker's consumer group has committed every record of every topic it reads.

    Committed offsets are read before end offsets: when an upstream flow has committed its input,
    its outputs are already in the topics, so a downstream topic is never seen drained too early."""
    from kafka import KafkaConsumer, TopicPartition  # noqa: PLC0415

    topics = ctx.consumed or [t for t in _ingest_topics(ctx.settings) if ".raw." in t and ".dlq" not in t]
    client = client_kwargs(ctx.settings)
    consumer = KafkaConsumer(**client, enable_auto_commit=False)
    reader = KafkaConsumer(**client, enable_auto_commit=False, isolation_level="read_committed")
    # consumers of the worker's groups that never subscribe: they only read the committed offsets
    # (the ingest loop has its own group for the raw topics, the faust flows the app's)
    raw = {t for t in topics if ".raw." in t}  # <prefix>.raw.<format>.<source>
    groups = {
        name: KafkaConsumer(**client, group_id=name, enable_auto_commit=False)
        for name in (ctx.settings.app_id, ingest_group(ctx.settings.app_id))
    }
    try:
        by_group: dict[str, list[Any]] = {}
        for t in topics:
            name = ingest_group(ctx.settings.app_id) if t in raw else ctx.settings.app_id
            by_group.setdefault(name, []).extend(
                TopicPartition(t, p) for p in sorted(consumer.partitions_for_topic(t) or ())
            )
        deadline = time.monotonic() + timeout_s
        while True:
            if ctx.worker is not None and ctx.worker.poll() is not None:
                raise GatewayError(f"the gateway worker exited ({ctx.worker.returncode}); see its log")
            left = sum(_left(consumer, reader, groups[name], tps) for name, tps in by_group.items())
            if left == 0:
                break
            if time.monotonic() > deadline:
                raise GatewayError(f"the worker still has {left} records to process after {timeout_s:.0f}s")
            time.sleep(0.5)
    finally:
        for group in groups.values():
            group.close()
        reader.close()
        consumer.close()
    ctx.say(f"every input processed and committed ({len(topics)} topics read by the worker)")
    # what ingest made of the sources, before later steps (the SNE poller) add records of their own
    from gateway.testing.kafka import count_records  # noqa: PLC0415

    counts = count_records(ctx.bootstrap, _ingest_topics(ctx.settings))
    ctx.ingested = (
        sum(n for t, n in counts.items() if ".canonical." in t),
        sum(n for t, n in counts.items() if t.endswith(".dlq")),
    )


def _ingest_topics(settings: GatewaySettings) -> list[str]:
    from connectors.file_drop.demo import ingest_report_topics  # noqa: PLC0415

    return ingest_report_topics(settings)


# (part of a topic name, what the report says about it); first match wins, "$" marks the end
TOPIC_LABELS: list[tuple[str, str]] = [
    (".dlq$", "dead letters (original bytes + error headers)"),
    (".raw.", "raw inputs"),
    (".canonical.", "canonical records (Avro)"),
    (".actor.", "an actor's view (its own Avro schema)"),
    (".audit.", "disclosure audit entries"),
    (".feedback.", "SNE answers"),
]


def step_settle(ctx: DemoContext, timeout_s: float = 180.0) -> None:
    """Wait until every consumer group of the demo's gateway has nothing left to deliver (the lag a
    read_committed consumer would see) at two checks in a row, so the summary and the table that
    follow count the same, complete topics: the same samples give the same figures."""
    from gateway.console.sources import group_offsets  # noqa: PLC0415

    deadline = time.monotonic() + timeout_s
    quiet = 0
    while quiet < 2 and time.monotonic() < deadline:
        lags = {
            g: lag for g, (_, lag) in group_offsets(ctx.settings).items() if g.startswith(ctx.settings.app_id)
        }
        quiet = quiet + 1 if lags and all(lag == 0 for lag in lags.values()) else 0
        time.sleep(2.0)
    ctx.say(
        "every flow settled (nothing left to deliver)" if quiet >= 2 else "flows still busy: figures may move"
    )


FLOWS: list[str] = ["ingest", "route", "signals", "retention"]
STEPS: list[tuple[str, DemoStep]] = [
    ("broker", step_broker),
    ("registry", step_registry),
    ("topics", step_topics),
    ("acl", step_acl),
    ("kits", step_kits),
    ("worker", step_worker),
    ("sources", step_sources),
    ("drain", step_drain),
    ("signals", signals_demo_step),
    ("sne", step_sne),
    ("settle", step_settle),
    ("route", step_route),
]
# functions naming the topics to report on
REPORT_TOPICS: list[Callable[[GatewaySettings], list[str]]] = [
    _ingest_topics,
    route_report_topics,
    signals_report_topics,
    sne_report_topics,
]


def report(ctx: DemoContext) -> None:
    from gateway.testing.kafka import count_records  # noqa: PLC0415

    topics: list[str] = []
    for names in REPORT_TOPICS:
        topics += [t for t in names(ctx.settings) if t not in topics]
    counts = count_records(ctx.bootstrap, topics)
    width = max(len(t) for t in topics) + 2
    click.echo("")
    click.echo(f"{'topic':{width}} {'records':>8}  what")
    click.echo(f"{'-' * width} {'-' * 8}  {'-' * 30}")
    for topic in topics:
        n = counts.get(topic, 0)
        if n == 0 and (topic.endswith(".dlq") or ".raw." in topic):
            continue
        what = next((label for part, label in TOPIC_LABELS if part in topic + "$"), "")
        click.echo(f"{topic:{width}} {n:8d}  {what}")
    canonical, dead = ctx.ingested
    click.echo("")
    click.echo(
        f"files: {ctx.files_emitted} published, {ctx.files_rejected} rejected by the source; "
        f"ingest records: {canonical} canonical, {dead} dead-lettered"
    )
    for note in ctx.notes:
        click.echo(note)


def _stop(ctx: DemoContext) -> None:
    if ctx.worker is not None and ctx.worker.poll() is None:
        ctx.worker.terminate()
        try:
            ctx.worker.wait(30)
        except subprocess.TimeoutExpired:
            ctx.worker.kill()
            ctx.worker.wait()
        ctx.say("gateway worker stopped")
    stop_registry(ctx)
    if ctx.started_broker:
        from gateway.cli.broker import stop_local_broker  # noqa: PLC0415

        if stop_local_broker(ctx.settings) is not None:
            ctx.say("Kafka stopped")


@click.group("demo", invoke_without_command=True)
@click.option("--prefix", default=None, help="Topic prefix (default: a fresh demo-<time> prefix per run).")
@click.option("--keep", is_flag=True, help="Keep the work folder (drop folder, worker log).")
@click.option(
    "--keep-running",
    is_flag=True,
    help="Leave the broker, the worker and the SNE simulator running (`gateway demo stop` stops them).",
)
@click.pass_context
def demo(click_ctx: click.Context, prefix: str | None, keep: bool, keep_running: bool) -> None:
    """Run the gateway on the bundled samples: broker, flows, sources; print what flowed where; stop."""
    if click_ctx.invoked_subcommand is not None:
        return
    if keep_running and running_file(GatewaySettings()).is_file():
        raise click.ClickException("a kept demo is running already: `gateway demo stop` first")
    # the demo's short-lived admin/consumer clients log benign close-time noise (e.g. a cancelled
    # metadata refresh); the worker and the SNE connector keep their own logs in the work folder
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    if not SAMPLES.is_dir():
        raise click.ClickException(f"no samples folder at {SAMPLES} (run the demo from a source checkout)")
    base = GatewaySettings()
    run_id = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    topic_prefix = prefix or f"demo-{run_id}"
    updates: dict[str, Any] = {
        "topic_prefix": topic_prefix,
        "app_id": f"{topic_prefix}-gateway",
        "web_port": free_port(),
    }
    if not explicit_security(base) and base.kafka_client_file is None and not base.kafka_allow_plaintext:
        # the local broker's admin client file, named explicitly: the SNE connector's process runs
        # with a state dir of its own
        updates["kafka_client_file"] = local_admin_client_file(base)
    settings = base.model_copy(update=updates)
    if keep_running:
        workdir = Path(settings.state_dir).expanduser() / "demo" / topic_prefix
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="gp-demo-"))
    ctx = DemoContext(
        settings=settings, workdir=workdir, samples=SAMPLES, flows=list(FLOWS), keep_running=keep_running
    )
    kept = False
    try:
        for name, step in STEPS:
            try:
                step(ctx)
            except GatewayError as exc:
                raise click.ClickException(f"demo step {name!r} failed: {exc}") from exc
        report(ctx)
        from gateway.cli.cotation import demo_lines  # noqa: PLC0415 - cotation and 25 % of the samples

        click.echo("\n".join(demo_lines(SAMPLES)))
        print_kit_commands(ctx)
        if keep_running:
            write_running(ctx, start_detached_simulator(ctx), start_detached_console(ctx))
            kept = True
    finally:
        if not kept:
            _stop(ctx)
            if keep:
                click.echo(f"[demo] work folder kept: {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)


@demo.command("stop")
def stop() -> None:
    """Stop everything `gateway demo --keep-running` started (exit 0 when nothing runs)."""
    stopped = stop_demo(GatewaySettings())
    click.echo("nothing to stop: no kept demo runs" if not stopped else f"stopped: {', '.join(stopped)}")
