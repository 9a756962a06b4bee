"""The worker with a schema registry (issue 12), on a real broker and a real Apicurio Registry:
every topic it writes uses the Confluent wire format, a recipient decodes its actor topic with
confluent-kafka only, and the Python example of docs/recipients.md runs as written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from gateway.broker.local import free_port
from gateway.codec.avro import load_schemas
from gateway.codec.framing import ConfluentFramer
from gateway.codec.registry_client import RegistryClient
from gateway.flows.admin import ensure_topics, ingest_topics
from gateway.flows.route import route_topics
from gateway.policy import load_policy
from gateway.policy.samples import sample_decision, sample_demande
from gateway.settings import GatewaySettings
from gateway.testing.kafka import consume_all, produce, start_worker, stop_worker, wait_for_count, worker_env
from gateway.topics import actor_topic, audit_topic, canonical_topic

NUM = "035260100000000001"
RM, B35, ALS = "243500139", "200000001", "824541148"
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "recipients.md"


def _guide_example() -> str:
    found = re.search(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    assert found, "docs/recipients.md has no Python example"
    return found.group(1)


def test_actor_topic_decoded_with_confluent_kafka_only_and_the_guide_example_runs(
    kafka_bootstrap: str, schema_registry_url: str, tmp_path: Path
) -> None:
    prefix = f"sr{uuid.uuid4().hex[:8]}"
    env = worker_env(
        kafka_bootstrap, prefix=prefix, state_dir=str(tmp_path), web_port=free_port(), partitions=2
    )
    env["GATEWAY_SCHEMA_REGISTRY_URL"] = schema_registry_url
    settings = GatewaySettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, partitions=2)
    ensure_topics(kafka_bootstrap, [*ingest_topics(settings), *route_topics(settings, load_policy())])
    # the canonical input itself in the Confluent wire format (what ingest writes with a registry)
    framer = ConfluentFramer(RegistryClient(schema_registry_url))
    schemas = load_schemas()

    def framed(kind: str, schema: str, record: dict[str, Any]) -> bytes:
        topic, codec = canonical_topic(kind, prefix), schemas.codec(schema)
        framer.prepare([(topic, codec)])
        return framer.reframe(topic, codec.encode_framed(record))

    decisions = [
        sample_decision("DESIGNATION", NUM, origine=ALS),
        sample_decision("DECISION_CAL", NUM, origine=B35),
    ]
    log = tmp_path / "worker.log"
    worker = start_worker(env, flows="route", log_path=str(log))
    try:
        produce(
            kafka_bootstrap,
            canonical_topic("demande", prefix),
            [(NUM.encode(), framed("demande", "fr.gp.Demande", sample_demande(NUM)), [("ce_id", b"d1")])],
        )
        wait_for_count(kafka_bootstrap, audit_topic(prefix), 5, max_wait_s=180)
        produce(
            kafka_bootstrap,
            canonical_topic("decision", prefix),
            [
                (NUM.encode(), framed("decision", "fr.gp.Decision", d), [("ce_id", f"e{i}".encode())])
                for i, d in enumerate(decisions)
            ],
        )
        topic = actor_topic(RM, prefix)
        messages = consume_all(kafka_bootstrap, topic, expect=3, max_wait_s=120)
        audit = consume_all(kafka_bootstrap, audit_topic(prefix), quiet_ms=1000)
    finally:
        stop_worker(worker)
    assert len(messages) == 3, log.read_text()[-3000:]
    # a recipient: confluent-kafka only
    decoded = []
    with SchemaRegistryClient({"url": schema_registry_url}) as client:
        deserialize = AvroDeserializer(client)
        for m in messages:
            assert m.value is not None and m.value[:1] == b"\x00"
            record = deserialize(m.value, SerializationContext(topic, MessageField.VALUE))
            assert isinstance(record, dict) and record["numUnique"] == NUM
            decoded.append(record)
        for m in audit:
            assert m.value is not None and m.value[:1] == b"\x00"
            entry = deserialize(m.value, SerializationContext(audit_topic(prefix), MessageField.VALUE))
            assert isinstance(entry, dict) and entry["numUnique"] == NUM
    assert {r.get("typeEvenement") for r in decoded} == {None, "DESIGNATION", "DECISION_CAL"}
    # the guide's example, as written, with the actor's own kit (`gateway actors client-config`:
    # its credential, the broker's CA, its group, the registry) after `gateway acl apply`
    script = tmp_path / "decode.py"
    script.write_text(_guide_example(), encoding="utf-8")
    gateway = [sys.executable, "-m", "gateway"]
    applied = subprocess.run([*gateway, "acl", "apply"], env=env, capture_output=True, text=True, check=False)
    assert applied.returncode == 0, applied.stderr[-2000:]
    made = subprocess.run(
        [*gateway, "actors", "client-config", RM, "--format", "librdkafka"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr[-2000:]
    assert f"schema.registry.url={schema_registry_url}" in made.stdout
    kit = tmp_path / "client.properties"
    kit.write_text(made.stdout, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(script), str(kit), topic, "--until-idle", "8"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    assert len(lines) == 3
    assert {line["record"].get("typeEvenement") for line in lines} == {None, "DESIGNATION", "DECISION_CAL"}
    assert all(line["headers"]["gp.view.schema"].startswith("fr.gp.view.") for line in lines)
