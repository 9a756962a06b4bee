"""Sink benchmark on a real Kafka broker (prints figures; asserts nothing).

One actor topic (6 partitions, GATEWAY_PARTITIONS' default: as the route flow creates it; --partitions)
holds N records of a real actor stream (the samples routed by the default policy, fresh ids).
Measured in one run, each from its first polled batch to its last write:
1. the raw baseline: a kafka-python consumer of the same topic doing nothing with the records
   (read_committed, max 500 records a poll), read as the sink runtime reads (offsets committed
   asynchronously after each poll, a partition's next fetch sent as soon as its records are taken:
   gateway.flows.egress), so a sink's ratio is what its own work costs;
2. the runtime alone: a sink that writes nothing (reading and decoding, in the sink's process or in
   reading processes that render nothing, still run): the floor under every sink;
3. each sink on the sink runtime (`run_sink`, --until-idle, batches of 500): file (JSON Lines, then
   CSV), PostgreSQL (a real server: GATEWAY_TEST_POSTGRES_DSN or one started like the tests do; in
   batches of 2000, its default, then of 500), webhook (keep-alive, a local receiver in another
   process; one event a request, then batch mode). A raw run polls as many records at a time as the
   sink it is compared with takes a batch.
Figures: records/s, the ratio to the raw baseline (goals: file and PostgreSQL >= 0.5, webhook >= 0.3)
and the CPU time of this process per record (the sink's own, the receiver and PostgreSQL excluded:
steadier than rates on a shared machine), then that of the sink's reading processes
(GATEWAY_SINK_PROCESSES: they fetch, decode and render; their whole life, start-up included, which
is about 0.2 s plus the import of this script, as a spawned process imports its parent's main
module). The raw consumer
runs once to warm up (the first consumer of a process pays one-off costs: printed, not used), then
before the first sink and again after each one: a sink's ratio is to the mean of the raw runs just
before and just after it (the load of a shared machine moves within a run; every raw rate is
printed at the end); `CPU ratio` is raw CPU per record / the sink's (this process and its reading
processes: what the ratio would be where both are CPU-bound on one core).
A plain consumer (offsets committed synchronously after each poll, default fetching) runs at the
start and at the end, printed, not a baseline: some of its runs wait out a fetch held for
fetch_max_wait_ms (500 ms) and halve their rate (docs/sinks.md), which made ratios swing with it.
Each sink's line also gives the CPU, per record, of the servers this bench started, over the sink's
whole run (its start-up included): the broker's, and PostgreSQL's for the PostgreSQL sink (the
server's process tree: its backends, WAL writer, checkpointer); a server given from outside
(KAFKA_BOOTSTRAP_SERVERS, GATEWAY_TEST_POSTGRES_DSN) is not measured. On a machine where they all
share the cores, they are what a sink's rate is bounded by too.
The webhook's receiver (another process: asyncio, HTTP/1.1 keep-alive and pipelining, answering 200
to each request as it is read) prints its CPU per record: it shares the machine's cores with the
sink, the broker and PostgreSQL.
`--processes 0,2` (the default) runs each sink once per GATEWAY_SINK_PROCESSES value, in the same run.

Broker: KAFKA_BOOTSTRAP_SERVERS if set (its security from GATEWAY_KAFKA_*), else a local secured
broker from the cached jars (SASL/SCRAM over TLS, as the tests and production run it). Every
consumer connects as the actor (its connection kit, after `acl apply`), so the raw baseline pays the
same TLS and authentication as the sinks.
`--repeat N` runs each sink N times, each between two raw runs, and prints the median of its ratios.
Usage: python bench/bench_sinks.py [--records 20000] [--partitions 6] [--only TEXT] [--processes 0,2]
       [--repeat 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from gateway import registry
from gateway.broker import LocalBroker, install_kafka
from gateway.cli.acl import apply_acls
from gateway.connectors import (
    CheckResult,
    ConnectorConfig,
    Erasure,
    Partition,
    Sink,
    SinkContext,
    SinkOutput,
    SinkRecord,
)
from gateway.flows.sinks import SinkOptions, principal_client_kwargs, run_sink
from gateway.settings import GatewaySettings
from gateway.testing.actor_stream import actor_stream
from gateway.testing.kafka import create_topics, produce, register_broker
from gateway.topics import actor_group_prefix, actor_topic, dlq_topic
from kafka import KafkaConsumer

SECRET = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # noqa: S105 - a bench receiver's key
RECEIVER = """
import asyncio, socket
OK = b"HTTP/1.1 200 OK\\r\\nContent-Length: 0\\r\\n\\r\\n"
class Receiver(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buf, self.body = transport, bytearray(), -1
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def data_received(self, data):
        buf = self.buf
        buf += data
        answered = 0
        while True:
            if self.body < 0:
                end = buf.find(b"\\r\\n\\r\\n")
                if end < 0:
                    break
                head = bytes(buf[:end]).lower() + b"\\r\\n"
                at = head.find(b"\\r\\ncontent-length:")
                self.body = int(head[at + 17 : head.index(b"\\r\\n", at + 2)]) if at >= 0 else 0
                del buf[: end + 4]
            if len(buf) < self.body:
                break
            del buf[: self.body]
            self.body = -1
            answered += 1
        if answered:
            self.transport.write(OK * answered)
async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Receiver, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


class Timed(Sink):
    """Delegates to a sink and notes when its first write started and its last one ended."""

    name: ClassVar[str] = "timed"
    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    guarantee = "at-least-once"
    reads: ClassVar[Literal["actor", "canonical"]] = "actor"

    def __init__(self, inner: Sink) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]  # reported as the inner sink
        self.headers_in_write = inner.headers_in_write  # type: ignore[misc]  # as the inner sink reads
        self.first = self.last = self.cpu_first = self.cpu_last = 0.0
        self.count = self.writes = 0

    def check(self) -> CheckResult:
        return self.inner.check()

    async def open(self, context: SinkContext) -> None:
        await self.inner.open(context)

    def resume_offsets(self, partitions: Sequence[Partition]) -> Mapping[Partition, int]:
        return self.inner.resume_offsets(partitions)

    def renderer(self) -> Callable[[SinkRecord], Any] | None:
        return self.inner.renderer()

    async def write(self, batch: Sequence[SinkRecord]) -> Sequence[SinkOutput]:
        if not self.first:
            self.first, self.cpu_first = time.perf_counter(), time.process_time()
        out = await self.inner.write(batch)
        self.last, self.cpu_last = time.perf_counter(), time.process_time()
        self.count += len(batch)
        self.writes += 1
        return out

    async def flush(self) -> None:
        await self.inner.flush()

    erases: ClassVar[bool] = True  # the built-in sinks erase: erasures go to the inner sink

    async def erase(self, erasures: Sequence[Erasure]) -> Sequence[SinkOutput]:
        return await self.inner.erase(erasures)


def raw_rate(
    settings: GatewaySettings, actor: str, topic: str, n: int, *, tuned: bool = False, batch: int = 500
) -> tuple[float, float]:
    """records/s and CPU µs per record (this process) of a consumer doing nothing with the records
    (connected as the actor, in a group its ACLs grant, like the sinks): a plain consumer committing
    after each poll, or (`tuned`) one read as the sink runtime reads (asynchronous commits, a
    partition's next fetch sent as soon as its records are taken: gateway.flows.egress); `batch`
    records at most a poll, as the sink it is compared with takes them."""
    client = principal_client_kwargs(settings, actor)
    consumer = KafkaConsumer(
        topic,
        **client,
        group_id=actor_group_prefix(actor, settings.app_id) + f"bench-raw-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    seen = 0
    first = cpu = 0.0
    try:
        while seen < n:
            polled = consumer.poll(timeout_ms=500, max_records=batch)
            if tuned and polled:
                consumer._fetcher.send_fetches()  # as EgressRunner._poll does
            got = sum(len(v) for v in polled.values())
            if got and not first:
                first, cpu = time.perf_counter(), time.process_time()
            seen += got
            if got:
                consumer.commit_async() if tuned else consumer.commit()
        return n / (time.perf_counter() - first), (time.process_time() - cpu) / n * 1e6
    finally:
        consumer.close()


def sink_rate(  # noqa: PLR0917 - one sink's run
    name: str, config: dict[str, Any], settings: GatewaySettings, actor: str, n: int, batch: int
) -> tuple[float, float, float, float]:
    """records/s, CPU µs per record of this process (runtime + sink) and of its reading processes
    (GATEWAY_SINK_PROCESSES: their whole life, start-up included), and records a write, of a sink
    on the runtime."""
    timed = Timed(NullSink() if name == NullSink.name else registry.build(name, config))
    options = SinkOptions(actor=actor, until_idle=True, batch_size=batch, web_port=-1)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    asyncio.run(run_sink(timed, settings, options, signals=False))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the reading processes have exited
    worker = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    assert timed.count >= n, (name, timed.count)
    cpu = (timed.cpu_last - timed.cpu_first) / timed.count * 1e6
    per_write = timed.count / max(1, timed.writes)
    return timed.count / (timed.last - timed.first), cpu, worker / timed.count * 1e6, per_write


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc; 0.0 elsewhere)."""
    return _stat_seconds(pid, 2)


def _stat_seconds(pid: int, fields: int) -> float:
    """The sum of the first `fields` CPU fields of /proc/PID/stat (utime, stime, cutime, cstime),
    in seconds; 0.0 where /proc does not tell (not Linux, or the process is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in stat[11 : 11 + fields]) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and of its descendants, the live ones and those it reaped (a
    PostgreSQL server's backends, a broker's JVM); 0.0 where /proc does not tell (not Linux)."""
    total = _stat_seconds(pid, 4)  # its own and its reaped children's
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children = task.read_text().split()
        except OSError:
            continue
        total += sum(tree_cpu(int(child)) for child in children)
    return total


def servers_cpu(broker: LocalBroker | None) -> dict[str, float]:
    """CPU seconds so far of the servers this bench started, by name: the PostgreSQL server (once
    started) and the broker (external ones are not measured)."""
    from gateway.testing.postgres import postgres_server_pid  # noqa: PLC0415

    out = {}
    pg = postgres_server_pid()
    if pg is not None:
        out["PostgreSQL"] = tree_cpu(pg)
    if broker is not None and broker.process is not None:
        out["broker"] = tree_cpu(broker.process.pid)
    return out


def quiet_server(server: str, databases: list[str]) -> None:
    """Drop `databases` (DSNs of earlier runs) and make a checkpoint on `server`."""
    import psycopg  # noqa: PLC0415 - the postgres extra
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

    with psycopg.connect(server, autocommit=True) as conn:
        for made in databases:
            name = conninfo_to_dict(made)["dbname"]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute("CHECKPOINT")
    databases.clear()


def render_nothing(rec: SinkRecord) -> bytes:
    """NullSink's renderer: reading and decoding still happen (in the reading processes when there are)."""
    return b""


class NullSink(Sink):
    """A sink that writes nothing: what the runtime alone costs (polling, decoding or reading
    processes, committing), the floor under every sink's figures."""

    name: ClassVar[str] = "null"
    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    guarantee = "at-least-once"
    reads: ClassVar[Literal["actor", "canonical"]] = "actor"
    erases: ClassVar[bool] = True

    def check(self) -> CheckResult:
        return CheckResult(ok=True)

    def renderer(self) -> Callable[[SinkRecord], Any] | None:
        return render_nothing

    async def write(self, batch: Sequence[SinkRecord]) -> Sequence[SinkOutput]:
        return []

    async def flush(self) -> None:
        return None

    async def erase(self, erasures: Sequence[Erasure]) -> Sequence[SinkOutput]:
        return []


def report(  # noqa: PLR0917 - one line of figures
    label: str,
    rate: float,
    cpu: float,
    worker: float,
    raws: list[tuple[float, float]],
    goal: float,
    receiver: float = 0.0,
    per_write: float = 0.0,
    servers: Mapping[str, float] | None = None,
) -> float:
    """One sink's line (its ratio returned): its ratio to the raw consumer measured just before and
    just after it (the load of a shared machine moves within a run), and the ratio of CPU per record
    (the steadier one: what the ratio would be where both are CPU-bound on one core; reading
    processes included)."""
    base = sum(r for r, _ in raws) / len(raws)
    base_cpu = sum(c for _, c in raws) / len(raws)
    verdict = "met" if rate / base >= goal else "NOT met"
    goal_text = f"goal {goal}: {verdict}" if goal else "no goal: the runtime's floor"
    print(
        f"{label:50} {rate:9.0f} records/s  {cpu:5.0f} µs CPU a record  ratio {rate / base:4.2f}"
        f" ({goal_text}; raw around it {base:.0f}/s)  CPU ratio {base_cpu / (cpu + worker):4.2f}"
        f"  + reading processes {worker:4.0f} µs CPU a record"
        + (f"  + receiver {receiver:3.0f} µs CPU a record" if receiver else "")
        + "".join(f"  + {what} {us:3.0f} µs CPU a record" for what, us in (servers or {}).items())
        + f"  ({per_write:.0f} records a write)"
    )
    return rate / base


def start_broker(tmp: Path) -> tuple[LocalBroker, str]:
    """A local secured broker, its admin client file registered for the test kit."""
    settings = GatewaySettings()
    broker = LocalBroker(
        install_kafka(settings.state_dir, settings.kafka_version),
        tmp / "kafka",
        watch_parent=True,
    )
    bootstrap = broker.start()
    client_file = broker.security.admin_client_file
    register_broker(bootstrap, client_file)
    os.environ["GATEWAY_KAFKA_CLIENT_FILE"] = str(client_file)
    return broker, bootstrap


Run = tuple[str, str, dict[str, Any], float, int]


def sinks(tmp: Path, dsn: Callable[[], str], hook: str) -> list[Run]:
    """(label, connector, config, goal, batch size) of each sink measured; a config value that is a
    function is called for each run (PostgreSQL: a database of its own)."""
    return [
        ("runtime alone (a sink writing nothing)", NullSink.name, {}, 0.0, 500),
        ("file (JSON Lines)", "file", {"dir": str(tmp / "jsonl")}, 0.5, 500),
        ("file (CSV)", "file", {"dir": str(tmp / "csv"), "format": "csv"}, 0.5, 500),
        # a transaction, its statements and a commit per batch: the sink asks for batches of 2000
        # (Sink.batch_size); the raw runs around it poll as many records at a time
        ("postgres (batches of 2000, its default)", "postgres", {"dsn": dsn}, 0.5, 2000),
        ("postgres (batches of 500)", "postgres", {"dsn": dsn}, 0.5, 500),
        ("webhook (one event a request)", "webhook", {"url": hook, "secret": SECRET}, 0.3, 500),
        (
            "webhook (batch mode, 100 a request)",
            "webhook",
            {"url": hook, "secret": SECRET, "batch": True},
            0.3,
            500,
        ),
    ]


def measure(  # noqa: PLR0917 - the bench's one measuring pass
    n: int,
    actor: str,
    records: Sequence[Any],
    raw_now: Callable[..., tuple[float, float]],
    fresh_settings: Callable[[], GatewaySettings],
    runs: list[Run],
    only: str,
    receiver_cpu: Callable[[], float],
    repeat: int = 1,
    servers_cpu: Callable[[], dict[str, float]] = dict,
) -> None:
    """The raw runs and each sink's (`repeat` times, a raw run after each), printed (see the
    module's docstring)."""
    cold = raw_now(tuned=True)  # the first consumer of the process pays one-off costs: not a baseline
    plain = [raw_now()]
    raws = [raw_now(tuned=True)]
    batches = [500]  # the records a poll of each raw run
    size = sum(len(r.value) for r in records) // len(records)
    parts = os.environ.get("GATEWAY_PARTITIONS", "?")
    print(f"{n} records of actor {actor}'s stream (views of {size} bytes on average), {parts} partitions")
    print(
        f"{'raw consumer (the baseline)':36} {raws[0][0]:9.0f} records/s  {raws[0][1]:5.0f} µs CPU a"
        " record (read as the runtime reads: asynchronous commits, early fetches)"
    )
    print(f"{'plain raw consumer':36} {plain[0][0]:9.0f} records/s  {plain[0][1]:5.0f} µs CPU a record")
    for label, name, config, goal, batch in [r for r in runs if only in r[0]]:
        if "[processes " in label:  # --processes: GATEWAY_SINK_PROCESSES for this run
            os.environ["GATEWAY_SINK_PROCESSES"] = label.rsplit("[processes ", 1)[1].rstrip("]")
        if batches[-1] != batch:  # the raw run before it polls as many records at a time as it does
            raws.append(raw_now(tuned=True, batch=batch))
            batches.append(batch)
        ratios = []
        for _ in range(repeat):  # each run between two raw runs: its own ratio
            given = {k: v() if callable(v) else v for k, v in config.items()}
            settings = fresh_settings()
            before, servers_before = receiver_cpu(), servers_cpu()
            rate, cpu, worker, per_write = sink_rate(name, given, settings, actor, n, batch)
            receiver = (receiver_cpu() - before) / n * 1e6 if name == "webhook" else 0.0
            servers = {
                k: (v - servers_before[k]) / n * 1e6 for k, v in servers_cpu().items() if k in servers_before
            }
            if name != "postgres":
                servers.pop("PostgreSQL", None)
            raws.append(raw_now(tuned=True, batch=batch))
            batches.append(batch)
            ratios.append(report(label, rate, cpu, worker, raws[-2:], goal, receiver, per_write, servers))
        if repeat > 1:
            mid = statistics.median(ratios)
            verdict = f"goal {goal}: {'met' if mid >= goal else 'NOT met'}" if goal else "no goal"
            listed = ", ".join(f"{r:.2f}" for r in ratios)
            print(f"{label:50} median ratio {mid:4.2f} of its {repeat} runs ({listed}; {verdict})")
    plain.append(raw_now())
    polls = [f" ({b} a poll)" if b != 500 else "" for b in batches]
    rates = ", ".join(f"{r:.0f}{p}" for (r, _), p in zip(raws, polls, strict=True))
    cpus = ", ".join(f"{c:.0f}" for _, c in raws)
    print(f"raw consumer (the baseline), each time it ran: {rates} records/s; {cpus} µs CPU a record")
    rates = ", ".join(f"{r:.0f}" for r, _ in plain)
    print(f"plain raw consumer, first and last: {rates} records/s (not a baseline: some runs stall)")
    print(f"(the first consumer in this process, not counted: {cold[0]:.0f} records/s, {cold[1]:.0f} µs CPU)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument(
        "--partitions",
        type=int,
        default=GatewaySettings.model_fields["partitions"].default,
        help="partitions of the actor topic (default: GATEWAY_PARTITIONS' default, as the route flow has)",
    )
    parser.add_argument("--only", default="", help="run only the sinks whose label holds this text")
    parser.add_argument(
        "--processes",
        default="0,2",
        help="run each sink once per GATEWAY_SINK_PROCESSES value of this list, in one run ('': the"
        " environment's value)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each sink this many times, each between two raw runs, and print the median of its"
        " ratios too (this machine's load moves: one run's ratio swings with the raw runs around it)",
    )
    args = parser.parse_args()
    n = args.records
    tmp = Path(tempfile.mkdtemp(prefix="gp-bench-sinks-"))
    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        broker, bootstrap = start_broker(tmp)
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    try:
        port = int((receiver.stdout.readline() if receiver.stdout else "0").strip())
        actor, records = actor_stream(count=n)
        hook = f"http://127.0.0.1:{port}/"

        def fresh_topic() -> tuple[str, GatewaySettings]:
            """The same N records on a topic of their own (each sink starts from the beginning)."""
            prefix = f"bench{uuid.uuid4().hex[:6]}"
            topic = actor_topic(actor, prefix)
            create_topics(bootstrap, [topic, dlq_topic(topic)], partitions=args.partitions)
            produce(bootstrap, topic, [(r.key, r.value, r.headers) for r in records])
            os.environ.update(
                GATEWAY_BOOTSTRAP_SERVERS=bootstrap,
                GATEWAY_TOPIC_PREFIX=prefix,
                GATEWAY_APP_ID=f"{prefix}-app",
                GATEWAY_STATE_DIR=str(tmp / "state"),
                GATEWAY_PARTITIONS=str(args.partitions),
            )
            settings = GatewaySettings()
            apply_acls(settings)  # the actor's rights on its topic, groups and dead letters
            return topic, settings

        from gateway.testing.postgres import fresh_database, postgres_server  # noqa: PLC0415

        made: list[str] = []  # the databases of earlier PostgreSQL runs

        def dsn() -> str:
            """A new database for each PostgreSQL run: every run fills the same empty tables (one
            after another in one database, a later run updated the demand rows an earlier one had
            inserted, the same keys: repeated runs did not measure the same thing). The earlier
            runs' databases are dropped and a checkpoint made first: their autovacuum and the
            writing of their pages would otherwise run during this run, on the same cores."""
            server = postgres_server()
            quiet_server(server, made)
            made.append(fresh_database(server))
            return made[-1]

        def raw_now(tuned: bool = False, batch: int = 500) -> tuple[float, float]:
            topic, settings = fresh_topic()
            return raw_rate(settings, actor, topic, n, tuned=tuned, batch=batch)

        runs = sinks(tmp, dsn, hook)
        if args.processes:
            values = [v.strip() for v in args.processes.split(",") if v.strip()]
            runs = [
                (f"{label} [processes {v}]", name, config, goal, batch)
                for label, name, config, goal, batch in runs
                for v in values
            ]
        measure(
            n,
            actor,
            records,
            raw_now,
            lambda: fresh_topic()[1],
            runs,
            args.only,
            lambda: process_cpu(receiver.pid),
            max(1, args.repeat),
            lambda: servers_cpu(broker),
        )
    finally:
        receiver.terminate()
        receiver.wait()
        if broker is not None:
            broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
