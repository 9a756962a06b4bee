"""The sink runtime end to end: `gateway connectors run NAME --actor ACTOR` as a subprocess on a real
broker, delivering an actor's stream to a real HTTP receiver, real files and a real PostgreSQL;
SIGKILLed mid-stream and restarted with --until-idle."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from gateway.testing.actor_stream import ActorRecord, actor_stream
from gateway.testing.http_receiver import Receiver
from gateway.testing.kafka import apply_acls, consume_all, create_topics, produce, worker_env
from gateway.topics import actor_topic, dlq_topic

SECRET = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
COUNT = 800


@dataclass
class Stream:
    bootstrap: str
    env: dict[str, str]
    actor: str
    topic: str
    records: list[ActorRecord]
    tmp: Path

    def ids(self) -> list[str]:
        return [dict(r.headers)["ce_id"].decode() for r in self.records]

    def run(self, name: str, *options: str, until_idle: bool = True) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "gateway", "connectors", "run", name, "--actor", self.actor]
        cmd += ["--web-port", "-1", "--batch-size", "25", *options]
        if until_idle:
            cmd.append("--until-idle")
        with (self.tmp / f"{name}.log").open("ab") as log:  # the child keeps its own descriptor
            return subprocess.Popen(cmd, env=self.env, stdout=log, stderr=log, start_new_session=True)

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")


@pytest.fixture
def stream(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stream]:
    prefix = f"s{uuid.uuid4().hex[:8]}"
    actor, records = actor_stream(count=COUNT)
    topic = actor_topic(actor, prefix)
    # the actor topic and its sinks' dead-letter topic, as the route flow creates them
    create_topics(kafka_bootstrap, [topic, dlq_topic(topic)], partitions=3)
    produce(kafka_bootstrap, topic, [(r.key, r.value, r.headers) for r in records])
    env = worker_env(kafka_bootstrap, prefix=prefix, state_dir=str(tmp_path / "state"), web_port=0)
    # each sink renders in a process of its own (killed with it): the path of GATEWAY_SINK_PROCESSES;
    # the sink's own process renders in the other tests that run sinks (the default)
    env["GATEWAY_SINK_PROCESSES"] = "1"
    # the sink connects as the actor (its kit): the actor's ACLs are what let it read and dead-letter
    apply_acls(env)
    yield Stream(kafka_bootstrap, env, actor, topic, records, tmp_path)


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _kill_mid_stream(stream: Stream, name: str, progress: Callable[[], int], *options: str) -> int:
    """Start the sink, SIGKILL it once it delivered something, return what it had delivered."""
    proc = stream.run(name, *options, until_idle=False)
    deadline = time.monotonic() + 90
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        done = progress()
        if done >= 50:
            break
        time.sleep(0.02)
    assert proc.poll() is None, stream.log(name)
    # GATEWAY_SINK_PROCESSES=1: the sink renders in a process of its own (the resource tracker aside)
    assert len(_children(proc.pid)) >= 2, "no rendering process"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < done < COUNT, f"killed after {done} of {COUNT}: not mid-stream"
    return done


def _finish(stream: Stream, name: str, *options: str) -> None:
    proc = stream.run(name, *options)
    assert proc.wait(timeout=180) == 0, stream.log(name)


def _file_ids(folder: Path) -> list[str]:
    ids = []
    for path in folder.glob("*.jsonl*"):
        ids += [json.loads(line)["id"] for line in path.read_text().splitlines() if line.endswith("}")]
    return ids


def test_file_sink_killed_mid_stream_writes_no_line_twice(stream: Stream) -> None:
    out = stream.tmp / "files"
    folder = out / stream.actor
    _kill_mid_stream(stream, "file", lambda: len(_file_ids(folder)), "--set", f"dir={out}")
    _finish(stream, "file", "--set", f"dir={out}")
    ids = _file_ids(folder)
    assert Counter(ids) == Counter(stream.ids())
    assert not list(folder.glob("*.part"))  # drained: every file completed


def test_postgres_sink_killed_mid_stream_holds_exactly_the_expected_rows(
    stream: Stream, postgres_dsn: str
) -> None:
    def rows() -> int:
        try:
            with psycopg.connect(postgres_dsn) as conn:
                found = conn.execute("SELECT coalesce(sum(next_offset), 0) FROM gp_offsets").fetchone()
        except psycopg.Error:
            return 0
        return int(found[0]) if found else 0

    _kill_mid_stream(stream, "postgres", rows, "--set", f"dsn={postgres_dsn}")
    _finish(stream, "postgres", "--set", f"dsn={postgres_dsn}")
    demandes = {r.key for r in stream.records if ".Demande" in r.view}
    decisions = [dict(r.headers)["ce_id"].decode() for r in stream.records if ".Decision" in r.view]
    with psycopg.connect(postgres_dsn) as conn:
        keys = [r[0] for r in conn.execute("SELECT gp_key FROM gp_demande").fetchall()]
        events = [r[0] for r in conn.execute("SELECT gp_event_id FROM gp_decision").fetchall()]
        offsets = conn.execute("SELECT sum(next_offset) FROM gp_offsets").fetchone()
    assert sorted(keys) == sorted(k.decode() for k in demandes if k)
    assert Counter(events) == Counter(decisions)
    assert offsets == (COUNT,)


def test_webhook_sink_killed_mid_stream_delivers_every_record_with_a_stable_id(stream: Stream) -> None:
    with Receiver() as rx:
        rx.delay = 0.002
        rx.script(500)  # the first request fails: retried, then delivered
        refused = stream.ids()[7]
        rx.refuse(400, when=f'"{refused}"')  # this event only (quoted: not a prefix of another id)
        options = ("--set", f"url={rx.url}", "--set", f"secret={SECRET}")
        _kill_mid_stream(stream, "webhook", lambda: len(rx.requests), *options)
        _finish(stream, "webhook", *options)
    delivered = Counter(rx.delivered_ids())
    assert set(delivered) == set(stream.ids()) - {refused}
    for r in rx.requests:  # webhook-id is the event's id, whatever the attempt
        assert r.webhook_id == r.events()[0]["id"]
    assert rx.requests[0].status == 500
    assert delivered[rx.requests[0].webhook_id] >= 1
    dead = consume_all(stream.bootstrap, dlq_topic(stream.topic))
    assert [d.header("ce_id") for d in dead] == [refused.encode()]
    assert b"HTTP 400" in (dead[0].header("__connect.errors.exception.message") or b"")
    assert dead[0].value == stream.records[7].value  # the original bytes


def test_a_delivery_sink_needs_an_actor_and_an_existing_topic(stream: Stream) -> None:
    cmd = [sys.executable, "-m", "gateway", "connectors", "run", "file", "--set", f"dir={stream.tmp}"]
    out = subprocess.run(cmd, env=stream.env, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2
    assert "--actor ACTOR is required" in out.stderr
    out = subprocess.run(
        [*cmd, "--actor", "no-such-actor"],
        env=stream.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2
    assert "not an actor" in out.stderr


def test_health_says_postgres_is_down_and_nothing_is_committed(stream: Stream) -> None:
    proc = stream.run(
        "postgres", "--set", "dsn=postgresql://gp@127.0.0.1:1/gp", "--web-port", "0", until_idle=False
    )
    try:
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            found = re.search(r"/health and /metrics on port (\d+)", stream.log("postgres"))
            port = int(found.group(1)) if found else None
            time.sleep(0.2)
        assert port, stream.log("postgres")
        status, text = 0, ""
        while time.monotonic() < deadline and "PostgreSQL unreachable" not in text:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
                    status, text = resp.status, ""
            except urllib.error.HTTPError as exc:
                status, text = exc.code, exc.read().decode()
            time.sleep(0.3)
        assert status == 500
        assert "sink postgres: RetriableError: PostgreSQL unreachable" in text
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        assert 'gp_records_dead_lettered_total{flow="sink",source="postgres"}' not in metrics
        assert stream.actor not in metrics  # labels name roles, never actor ids
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    assert not consume_all(stream.bootstrap, dlq_topic(stream.topic), quiet_ms=500)  # retried, not dropped


def test_a_row_postgres_refuses_is_dead_lettered_whole_though_its_bytes_stayed_in_the_reading_process(
    stream: Stream, postgres_dsn: str
) -> None:
    """The PostgreSQL sink does not read a rendered record's headers (headers_in_write = False): its
    reading process keeps them and the original bytes. A row the database refuses is dead-lettered
    with them all the same (read again from the topic), and every other row is written."""
    at = next(i for i, r in enumerate(stream.records) if ".Decision" in r.view and i > 100)
    refused = stream.ids()[at]
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:  # this table refuses that one row
        conn.execute(
            psycopg.sql.SQL(
                'CREATE TABLE gp_decision (gp_key text COLLATE "C", gp_event_id text, gp_view text,'
                ' gp_topic text COLLATE "C", gp_partition integer, gp_offset bigint,'
                " gp_received_at timestamp with time zone NOT NULL DEFAULT now(),"
                " PRIMARY KEY (gp_topic, gp_partition, gp_offset), CHECK (gp_event_id <> {}))"
            ).format(psycopg.sql.Literal(refused))
        )
    _finish(stream, "postgres", "--set", f"dsn={postgres_dsn}")
    dead = consume_all(stream.bootstrap, dlq_topic(stream.topic))
    assert [d.header("ce_id") for d in dead] == [refused.encode()]
    original = stream.records[at]
    assert dead[0].value == original.value  # the original bytes
    assert tuple(dead[0].headers[: len(original.headers)]) == original.headers  # then the error's
    assert dead[0].header("gp.errors.original") is None
    assert b"CheckViolation" in (dead[0].header("__connect.errors.exception.message") or b"")
    decisions = [i for i, r in zip(stream.ids(), stream.records, strict=True) if ".Decision" in r.view]
    with psycopg.connect(postgres_dsn) as conn:
        events = [r[0] for r in conn.execute("SELECT gp_event_id FROM gp_decision").fetchall()]
    assert Counter(events) == Counter(set(decisions) - {refused})
