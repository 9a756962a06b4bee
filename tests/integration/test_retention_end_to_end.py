"""Issue 16 end to end, on the real secured broker, the schema registry, PostgreSQL, files and the
SNE simulator: marker values in a radiated application go through every store (raw, canonical,
actor topics, route / signals / cotation state, the SNE ledger, a file sink and a PostgreSQL sink);
the gateway's clock is moved 366 days past the radiation (injected: the broker's time retention does
not age with it); `gateway retention run` erases it; the sinks take the Effacement from the actor's
topic; compaction is forced. Then a scan of every readable record of every topic of the gateway
(read_uncommitted: aborted records too), of the state, ledger (database and WAL) and sink folders,
and of every PostgreSQL row finds no marker; the erasure is in the audit topic once, naming every
store; the déradiated application keeps its data everywhere."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from connectors.file_drop.demo import assign_samples
from connectors.sne.simulator.certs import ensure_certs
from connectors.sne.testing import SimulatorProcess
from gateway.broker.local import free_port
from gateway.codec.avro import load_schemas
from gateway.codec.framing import decoder_for
from gateway.policy.model import load_policy
from gateway.settings import GatewaySettings
from gateway.testing.background import Background
from gateway.testing.erasure import (
    compacted_topics,
    counts,
    force_compaction,
    scan_files,
    scan_topics,
    topics_of,
)
from gateway.testing.kafka import cli_env, consume_all, produce, start_worker, stop_worker, worker_env
from gateway.testing.samples import SAMPLES
from gateway.topics import actor_topic, audit_topic, canonical_topic, source_raw_topic

SAMPLE = SAMPLES / "sne-xml" / "demande-rad-attribution-rennes.xml"
ERASED, KEPT = "035260100000009901", "035260100000009902"
MARK_ERASED, MARK_KEPT = b"Qzeffacemarq", b"Qzgardemarq"
RADIATION = date(2026, 2, 27)  # the sample's dateRadiation
LATER = date(2027, 2, 28)  # 366 days later
ACTOR = "200000001"  # Rennes Habitat: its guichet entered the application
STORES = "canonical,raw,route,signals,cotation,sne"
PARTITIONS = 2


def _xml(num: str, marker: bytes, *, radiated: bool = True, day: str = "2026-03-09") -> bytes:
    text = SAMPLE.read_text(encoding="utf-8")
    text = text.replace("035260100000000001", num).replace(
        "<nom>Morvan</nom>", f"<nom>{marker.decode()}</nom>"
    )
    if not radiated:  # the same application, modified on `day` without its radiation
        text = re.sub(r"<radiation>.*?</radiation>", "", text, flags=re.S)
        text = text.replace("<typeFichier>RAD</typeFichier>", "<typeFichier>MOD</typeFichier>")
        text = text.replace("2026-03-02T09", f"{day}T09")
    return text.encode()


@dataclass
class Gateway:
    bootstrap: str
    prefix: str
    app_id: str
    env: dict[str, str]
    cli: dict[str, str]
    clock: Path
    tmp: Path

    def gateway(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", *args],
            env=self.cli,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def sink(self, name: str, *options: str) -> None:
        """`gateway connectors run NAME --actor ACTOR --until-idle`: drains the actor's stream."""
        cmd = [sys.executable, "-m", "gateway", "connectors", "run", name, "--actor", ACTOR]
        cmd += ["--web-port", "-1", "--until-idle", *options]
        log = self.tmp / f"sink-{name}.log"
        with log.open("ab") as out:
            done = subprocess.run(cmd, env=self.env, stdout=out, stderr=out, timeout=300, check=False)
        assert done.returncode == 0, log.read_text(errors="replace")[-3000:]


@pytest.fixture
def gw(kafka_bootstrap: str, schema_registry_url: str, tmp_path: Path) -> Iterator[Gateway]:
    prefix = f"e2e{uuid.uuid4().hex[:8]}"
    clock = tmp_path / "clock"
    clock.write_text(date.today().isoformat(), encoding="utf-8")
    env = worker_env(
        kafka_bootstrap,
        prefix=prefix,
        state_dir=str(tmp_path / "state"),
        web_port=free_port(),
        partitions=PARTITIONS,
    )
    env |= {
        "GATEWAY_SCHEMA_REGISTRY_URL": schema_registry_url,
        "GATEWAY_RETENTION_CLOCK": f"file:{clock}",
        "GATEWAY_RETENTION_CLOCK_INTERVAL": "3600",
        "GATEWAY_RETENTION_STORES": STORES,
        "GATEWAY_COTATION_GRID": str(Path("gateway/data/cotation/grille-exemple.yaml").resolve()),
    }
    cli = cli_env(kafka_bootstrap)
    for name in (
        "GATEWAY_TOPIC_PREFIX",
        "GATEWAY_APP_ID",
        "GATEWAY_PARTITIONS",
        "GATEWAY_RETENTION_STORES",
        "GATEWAY_RETENTION_CLOCK",
        "GATEWAY_STATE_DIR",
        "GATEWAY_SCHEMA_REGISTRY_URL",
    ):
        cli[name] = env[name]
    gw = Gateway(kafka_bootstrap, prefix, env["GATEWAY_APP_ID"], env, cli, clock, tmp_path)
    applied = gw.gateway("acl", "apply")
    assert applied.returncode == 0, applied.stderr[-2000:]
    yield gw


def _sne(gw: Gateway, sim: SimulatorProcess, certs: Path, state: Path) -> Background:
    """The SNE connector (`gateway sne run` code path) in a thread, as the worker `<app id>.sne`,
    talking to the simulator; its ledger under `state`."""
    from gateway.cli.sne import run_sne, sne_config  # noqa: PLC0415

    settings = GatewaySettings(
        bootstrap_servers=gw.bootstrap,
        topic_prefix=gw.prefix,
        app_id=gw.app_id,
        partitions=PARTITIONS,
        state_dir=state,
        schema_registry_url=gw.env["GATEWAY_SCHEMA_REGISTRY_URL"],
    )
    cfg = sne_config(
        {
            "certs": str(certs),
            "guichet": "G3501",
            "url": f"https://127.0.0.1:{sim.port}/services/DemandeLogementImplService/",
            "topic_prefix": gw.prefix,
        }
    )
    return Background(lambda stop: run_sne(cfg, settings, poll=False, stop=stop))


def _wait(what: str, check: Any, max_wait: float = 180) -> None:
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def _pg_rows(dsn: str) -> bytes:
    """Every row of every table of the sink's database, as text."""
    out = []
    with psycopg.connect(dsn) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'"
        ).fetchall()
        for schema, table in tables:
            for (row,) in conn.execute(f'SELECT t::text FROM "{schema}"."{table}" t'):  # noqa: S608
                out.append(row)
    return "\n".join(out).encode()


def test_an_application_radiated_a_year_ago_leaves_no_readable_byte_anywhere(
    gw: Gateway, postgres_dsn: str, tmp_path: Path
) -> None:
    policy = load_policy(GatewaySettings().policy_file)
    [source] = {
        s for s, fmt, path, _n in assign_samples(policy, SAMPLES) if path == SAMPLE and fmt == "sne-xml"
    }
    raw = source_raw_topic("sne-xml", source, gw.prefix)
    certs, sne_state, files = tmp_path / "certs", tmp_path / "sne-state", tmp_path / "files"
    ensure_certs(certs)
    sim = SimulatorProcess(certs, tmp_path / "sim-state").start()
    worker = start_worker(gw.env, "ingest,route,signals,cotation,retention", str(tmp_path / "worker.log"))
    try:
        with _sne(gw, sim, certs, sne_state):
            # the worker creates its topics at start: the raw topic exists once it answers
            _wait("the raw topic", lambda: raw in topics_of(gw.bootstrap, [raw]))
            # the erased one: modified (sent to the SNE: a ledger row), then radiated; the kept one:
            # radiated, then modified without its radiation a week later (déradiated); one source
            # key per application, so that its files stay in order (one raw partition)
            produce(
                gw.bootstrap,
                raw,
                [(b"erased", _xml(ERASED, MARK_ERASED, radiated=False, day="2026-02-20"))],
            )
            produce(gw.bootstrap, raw, [(b"kept", _xml(KEPT, MARK_KEPT))])
            produce(gw.bootstrap, raw, [(b"kept", _xml(KEPT, MARK_KEPT, radiated=False))])
            _wait(
                "the SNE ledger to hold the application", lambda: scan_files([sne_state], [ERASED.encode()])
            )
            produce(gw.bootstrap, raw, [(b"erased", _xml(ERASED, MARK_ERASED))])
            actor = actor_topic(ACTOR, gw.prefix)
            _wait(
                "both applications on the actor's topic",
                lambda: (
                    {ERASED.encode(), KEPT.encode()}
                    <= {m.key for m in consume_all(gw.bootstrap, actor, quiet_ms=500, max_wait_s=10)}
                ),
            )
            planned: list[list[str]] = []

            def plan() -> bool:
                done = gw.gateway("retention", "plan", "--now", LATER.isoformat())
                assert done.returncode == 0, done.stderr
                planned[:] = [line.split()[:2] for line in done.stdout.splitlines()]
                return planned == [[ERASED, "2027-02-27"]]  # the déradiated one is not due

            _wait("the radiation alone in the retention plan", plan, max_wait=120)
            settled = consume_all(gw.bootstrap, actor, quiet_ms=3000, max_wait_s=60)  # the route settled
            # the kept application's latest record on the actor's topic: what compaction keeps of it
            # (a demand, or a decision when the route published one after its latest demand)
            [kept_last, *_] = [
                (m.offset, m.header("ce_type")) for m in reversed(settled) if m.key == KEPT.encode()
            ]
            gw.sink("file", "--set", f"dir={files}")
            gw.sink("postgres", "--set", f"dsn={postgres_dsn}")
            markers = [MARK_ERASED]
            # before: the scans see the marker where it was written (they can fail)
            everywhere = topics_of(gw.bootstrap, [f"{gw.prefix}.", f"{gw.app_id}-"])
            before = scan_topics(gw.bootstrap, everywhere, markers)
            for topic in (raw, canonical_topic("demande", gw.prefix), actor):
                assert topic in before, counts(before)
            assert scan_files([files], markers), "the file sink holds the application"
            assert MARK_ERASED in _pg_rows(postgres_dsn)

            gw.clock.write_text(LATER.isoformat(), encoding="utf-8")
            run = gw.gateway("retention", "run", "--timeout", "240")
            assert run.returncode == 0, run.stdout + run.stderr
            assert "1 completed" in run.stdout, run.stdout
            # the recipient's tools take the Effacement from its topic
            gw.sink("file", "--set", f"dir={files}")
            gw.sink("postgres", "--set", f"dsn={postgres_dsn}")
    finally:
        stop_worker(worker)
        sim.stop()

    everywhere = topics_of(gw.bootstrap, [f"{gw.prefix}.", f"{gw.app_id}-"])
    force_compaction(gw.bootstrap, compacted_topics(gw.bootstrap, everywhere), gone=[MARK_ERASED])
    left = scan_topics(gw.bootstrap, everywhere, [MARK_ERASED])
    assert left == {}, f"readable records still holding the erased application: {counts(left)}"
    assert scan_files([sne_state, files, tmp_path / "state"], [MARK_ERASED]) == {}
    assert scan_files([sne_state], [ERASED.encode()]) == {}  # the ledger's rows of it, WAL included
    assert MARK_ERASED not in _pg_rows(postgres_dsn)
    # the déradiated application is not erased: its demand on the canonical topic; on the actor's
    # topic, where its demands and decisions share the key (compaction keeps the latest record of an
    # application, docs/recipients.md), its latest record, and no Effacement of it
    assert canonical_topic("demande", gw.prefix) in scan_topics(
        gw.bootstrap, [canonical_topic("demande", gw.prefix)], [MARK_KEPT]
    )
    on_actor = [
        (m.offset, m.header("ce_type"))
        for m in consume_all(gw.bootstrap, actor_topic(ACTOR, gw.prefix), read_committed=False)
        if m.key == KEPT.encode()
    ]
    assert on_actor[-1:] == [kept_last], on_actor
    assert MARK_KEPT in _pg_rows(postgres_dsn)
    assert scan_files([files], [MARK_KEPT])
    # the erasure is in the audit log, once, naming every store
    codec = load_schemas().codec("fr.gp.Effacement")
    decoder = decoder_for(gw.env["GATEWAY_SCHEMA_REGISTRY_URL"], {codec.fingerprint: codec})
    audit = consume_all(gw.bootstrap, audit_topic(gw.prefix), quiet_ms=1500)
    erasures = [
        decoder.decode(m.value or b"")[1] for m in audit if m.header("gp.schema.name") == b"fr.gp.Effacement"
    ]
    assert [(e["numUnique"], e["dateRadiation"]) for e in erasures] == [(ERASED, RADIATION)]
    assert sorted(erasures[0]["stores"]) == sorted(STORES.split(","))
