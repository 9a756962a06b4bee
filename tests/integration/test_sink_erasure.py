"""Erasure through the sinks, end to end: `gateway connectors run NAME --actor ACTOR --until-idle` as
subprocesses on the real secured broker with the real schema registry, delivering an actor topic
that holds records of two applications then the `fr.gp.Effacement` of one (Confluent-framed, subject
`<topic>-fr.gp.Effacement`, as the route flow writes it with a registry) to a real PostgreSQL, real
files and a real HTTP receiver: nothing of the erased application is left, the other is untouched."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from gateway.codec.framing import ConfluentFramer, subject_name
from gateway.codec.registry_client import RegistryClient
from gateway.connectors import ERASURE_SCHEMA, to_json
from gateway.flows.sinks import view_codecs
from gateway.settings import GatewaySettings
from gateway.testing.actor_stream import ActorRecord, actor_stream, sink_records
from gateway.testing.effacement import effacement
from gateway.testing.erasure import counts, scan_files
from gateway.testing.http_receiver import Receiver
from gateway.testing.kafka import apply_acls, create_topics, produce, worker_env
from gateway.topics import actor_topic, dlq_topic
from psycopg import sql

SECRET = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
ACTOR = "200000002"


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict | list):
        items = value.values() if isinstance(value, dict) else value
        return set().union(set(), *(_strings(v) for v in items))
    return set()


@dataclass
class Erased:
    env: dict[str, str]
    tmp: Path
    erased: str  # the erased application's numéro unique
    kept: str  # the other application's
    markers: list[bytes]  # values only the erased application's records hold
    ids: dict[str, list[str]]  # ce_ids of each application's records
    erasure_id: str

    def run(self, name: str, *options: str) -> None:
        cmd = [sys.executable, "-m", "gateway", "connectors", "run", name, "--actor", ACTOR]
        cmd += ["--web-port", "-1", "--batch-size", "7", "--until-idle", *options]
        out = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=240, check=False)
        assert out.returncode == 0, out.stderr[-3000:]


@pytest.fixture
def erased(
    kafka_bootstrap: str, schema_registry_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Erased]:
    """The actor topic, framed as the route flow frames it: with the registry (Confluent wire
    format; the default), or without one (`single-object`, the project's own framing)."""
    confluent = getattr(request, "param", "confluent") == "confluent"
    _, stream = actor_stream(ACTOR)
    decoded = {str(r.header("ce_id")): r for r in sink_records(ACTOR)}
    demands = {r.key for r in decoded.values() if ".Demande" in r.schema}
    by_key = Counter(r.key for r in decoded.values() if r.key in demands)
    (erased_key, _), (kept_key, _) = by_key.most_common(2)
    mine = [r for r in stream if (r.key or b"").decode() == erased_key]
    theirs = [r for r in stream if (r.key or b"").decode() == kept_key]
    others = "".join(to_json(r.record) for r in decoded.values() if r.key != erased_key)
    values = set().union(*(_strings(r.record) for r in decoded.values() if r.key == erased_key))
    markers = sorted(v.encode() for v in values if len(v) >= 6 and v not in others and v != erased_key)
    assert markers
    prefix = f"e{uuid.uuid4().hex[:8]}"
    topic = actor_topic(ACTOR, prefix)
    create_topics(kafka_bootstrap, [topic, dlq_topic(topic)], partitions=3)
    erasure = effacement(erased_key)
    records: list[ActorRecord] = [*mine, *theirs, erasure]
    env = worker_env(kafka_bootstrap, prefix=prefix, state_dir=str(tmp_path / "state"), web_port=0)
    if confluent:  # the route flow's framing with a registry: TopicRecordNameStrategy subjects
        framer = ConfluentFramer(RegistryClient(schema_registry_url))
        codecs = view_codecs(GatewaySettings())
        framer.prepare([(topic, codecs[r.value[2:10]]) for r in records])
        values = [framer.reframe(topic, r.value) for r in records]
        assert (topic, codecs[erasure.value[2:10]].fingerprint) in framer.ids
        assert subject_name(topic, ERASURE_SCHEMA) == f"{topic}-fr.gp.Effacement"
        assert all(v[:1] == b"\x00" for v in values)
        env["GATEWAY_SCHEMA_REGISTRY_URL"] = schema_registry_url
    else:
        values = [r.value for r in records]
    produce(kafka_bootstrap, topic, [(r.key, v, r.headers) for r, v in zip(records, values, strict=True)])
    apply_acls(env)
    ids = {
        erased_key: [str(dict(r.headers)["ce_id"].decode()) for r in mine],
        kept_key: [str(dict(r.headers)["ce_id"].decode()) for r in theirs],
    }
    erasure_id = dict(erasure.headers)["ce_id"].decode()
    yield Erased(env, tmp_path, erased_key, kept_key, markers, ids, erasure_id)


def test_postgres_holds_no_row_of_the_erased_application(erased: Erased, postgres_dsn: str) -> None:
    erased.run("postgres", "--set", f"dsn={postgres_dsn}")
    with psycopg.connect(postgres_dsn) as conn:
        tables = [
            str(t)
            for (t,) in conn.execute(
                "SELECT DISTINCT table_name FROM information_schema.columns"
                " WHERE column_name = 'gp_key' AND table_name <> 'gp_erasures'"
            )
        ]
        count = sql.SQL("SELECT count(*) FROM {} WHERE gp_key = %s")
        left = {t: conn.execute(count.format(sql.Identifier(t)), (erased.erased,)).fetchone() for t in tables}
        kept = conn.execute("SELECT count(*) FROM gp_demande WHERE gp_key = %s", (erased.kept,)).fetchone()
        proof = conn.execute("SELECT gp_key, gp_event_id FROM gp_erasures").fetchall()
        dumped = "".join(
            json.dumps(row, default=str)
            for t in tables
            for row in conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(t))).fetchall()
        ).encode()
    assert {"gp_demande", "gp_decision"} <= set(tables)
    assert all(n == (0,) for n in left.values()), left
    assert kept == (1,)
    assert proof == [(erased.erased, erased.erasure_id)]
    assert not [m for m in erased.markers if m in dumped]


@pytest.mark.parametrize(
    ("erased", "fmt"),
    [("confluent", "jsonl"), ("confluent", "csv"), ("single-object", "jsonl")],
    indirect=["erased"],
)
def test_the_folder_holds_no_byte_of_the_erased_application(erased: Erased, fmt: str) -> None:
    out = erased.tmp / "files"
    erased.run("file", "--set", f"dir={out}", "--set", f"format={fmt}")
    folder = out / ACTOR
    found = scan_files([folder], erased.markers)
    assert not found, counts(found)
    text = "".join(p.read_text() for p in sorted(folder.glob(f"*.{fmt}")))
    assert all(i in text for i in erased.ids[erased.kept])  # the other application untouched
    assert not [i for i in erased.ids[erased.erased] if i in text]
    assert erased.erasure_id in "".join(p.read_text() for p in folder.glob(f"effacement-*.{fmt}"))


def test_the_receiver_gets_the_erasure_after_the_applications_events(erased: Erased) -> None:
    with Receiver() as rx:
        erased.run("webhook", "--set", f"url={rx.url}", "--set", f"secret={SECRET}")
    events = [e for r in rx.requests if 200 <= r.status < 300 for e in r.events()]
    ids = [str(e["id"]) for e in events]
    (erasure,) = [e for e in events if e["type"] == "fr.gp.effacement"]
    assert erasure["id"] == erased.erasure_id
    assert erasure["subject"] == erasure["data"]["numUnique"] == erased.erased
    at = ids.index(erased.erasure_id)
    assert set(erased.ids[erased.erased]) <= set(ids[:at])
    assert set(erased.ids[erased.kept]) <= set(ids)
