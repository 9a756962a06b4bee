"""The route flow's erasure on a real broker and a real schema registry: an application routed to
its actors, then erased -> each actor that received anything gets a fr.gp.Effacement (decoded with
the registry by confluent-kafka, as a recipient would), the scope table's changelog a tombstone, the
retention flow a receipt; a tombstone without the erasure header, and a decision tombstone, change
nothing and are not dead-lettered."""

from __future__ import annotations

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
from gateway.flows.route import TABLE, route_topics
from gateway.policy import load_policy
from gateway.policy.router import H_VIEW_SCHEMA
from gateway.policy.samples import sample_decision, sample_demande
from gateway.retention import protocol
from gateway.settings import GatewaySettings
from gateway.testing.kafka import (
    consume_all,
    consume_topics,
    create_topics,
    produce,
    start_worker,
    stop_worker,
    wait_for_count,
    worker_env,
)
from gateway.topics import actor_topic, audit_topic, canonical_topic, dlq_topic, retention_topic

NUM = "035260100000000001"
B35, B44, ETAT, RM, ALS, SIAO, GEST, STAT, DEMO = (
    "200000001", "200000002", "130000035", "243500139", "824541148", "300000035", "300000099", "STAT-35",
    "DEM-7K2Q9X4M",
)  # fmt: skip
NOMINATIVE_IN_SCOPE = {B35, ETAT, RM, ALS, GEST, DEMO}
ERASURE = [
    (protocol.ERASURE_HEADER, b"run-42"),
    (protocol.RADIATION_HEADER, b"2025-06-01"),
    (protocol.DUE_HEADER, b"2026-06-01"),
]


def test_an_erased_application_reaches_every_recipient_as_an_effacement(
    kafka_bootstrap: str, schema_registry_url: str, tmp_path: Path
) -> None:
    prefix = f"er{uuid.uuid4().hex[:8]}"
    env = worker_env(
        kafka_bootstrap, prefix=prefix, state_dir=str(tmp_path), web_port=free_port(), partitions=2
    )
    env["GATEWAY_SCHEMA_REGISTRY_URL"] = schema_registry_url
    settings = GatewaySettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, partitions=2)
    policy = load_policy()
    ensure_topics(kafka_bootstrap, [*ingest_topics(settings), *route_topics(settings, policy)])
    demande_topic, decision_topic = canonical_topic("demande", prefix), canonical_topic("decision", prefix)
    create_topics(kafka_bootstrap, [dlq_topic(demande_topic), dlq_topic(decision_topic)], partitions=2)
    framer = ConfluentFramer(RegistryClient(schema_registry_url))
    schemas = load_schemas()

    def framed(kind: str, schema: str, record: dict[str, Any]) -> bytes:
        topic, codec = canonical_topic(kind, prefix), schemas.codec(schema)
        framer.prepare([(topic, codec)])
        return framer.reframe(topic, codec.encode_framed(record))

    log = tmp_path / "worker.log"
    worker = start_worker(env, flows="route", log_path=str(log))
    try:
        produce(
            kafka_bootstrap,
            demande_topic,
            [(NUM.encode(), framed("demande", "fr.gp.Demande", sample_demande(NUM)), [("ce_id", b"d1")])],
        )
        wait_for_count(kafka_bootstrap, audit_topic(prefix), len(NOMINATIVE_IN_SCOPE), max_wait_s=180)
        # not erasures: a tombstone without the header (the state must survive it: the decision
        # after it still reaches the application's actors) and a decision tombstone (compaction)
        produce(kafka_bootstrap, demande_topic, [(NUM.encode(), None)])
        produce(kafka_bootstrap, decision_topic, [(NUM.encode(), None, ERASURE)])
        decision = framed("decision", "fr.gp.Decision", sample_decision("DECISION_CAL", NUM, origine=B35))
        produce(kafka_bootstrap, decision_topic, [(NUM.encode(), decision, [("ce_id", b"e1")])])
        wait_for_count(kafka_bootstrap, audit_topic(prefix), 2 * len(NOMINATIVE_IN_SCOPE), max_wait_s=180)
        produce(kafka_bootstrap, demande_topic, [(NUM.encode(), None, ERASURE)])
        receipts = wait_for_count(kafka_bootstrap, retention_topic("receipts", prefix), 1, max_wait_s=180)
        by_topic = consume_topics(
            kafka_bootstrap, [actor_topic(a, prefix) for a in policy.actors], quiet_ms=1500, max_wait_s=60
        )
        got = {a: by_topic[actor_topic(a, prefix)] for a in policy.actors}
        changelog = consume_all(kafka_bootstrap, f"{prefix}-app-{TABLE}-changelog", quiet_ms=1000)
        dead = [
            m
            for t in (demande_topic, decision_topic)
            for m in consume_all(kafka_bootstrap, dlq_topic(t), quiet_ms=500, max_wait_s=5)
        ]
    finally:
        stop_worker(worker)
    trace = log.read_text(encoding="utf-8")[-3000:]
    assert [(m.key, m.value, m.headers) for m in receipts] == [
        (NUM.encode(), b"route", ((protocol.ERASURE_HEADER, b"run-42"),))
    ], trace
    assert dead == []
    # every recipient: its view of the demand, of the decision, then the Effacement (last: compaction
    # keeps it and drops the rest); the actors that never received anything get nothing
    receivers = NOMINATIVE_IN_SCOPE | {STAT}
    assert {a for a, msgs in got.items() if msgs} == receivers, trace
    with SchemaRegistryClient({"url": schema_registry_url}) as client:
        deserialize = AvroDeserializer(client)
        for actor in receivers:
            messages = got[actor]
            assert len(messages) == 3, (actor, trace)
            last = messages[-1]
            assert last.header(H_VIEW_SCHEMA) == b"fr.gp.Effacement"
            assert last.value is not None and last.value[:1] == b"\x00"  # Confluent framed
            topic = actor_topic(actor, prefix)
            record = deserialize(last.value, SerializationContext(topic, MessageField.VALUE))
            assert isinstance(record, dict)
            assert set(record) == {"numUnique", "dateRadiation", "dateEffacement", "time", "par", "stores"}
            assert (
                str(record["dateRadiation"]) == "2025-06-01" and str(record["dateEffacement"]) == "2026-06-01"
            )
            assert record["stores"] == [] and "run-42" in record["par"]
            assert last.key == messages[0].key == record["numUnique"].encode()  # the key it holds
            if actor == STAT:
                assert record["numUnique"] != NUM  # its pseudonym: it never saw the numéro unique
            else:
                assert record["numUnique"] == NUM
    # the scope table: its changelog's last record for the application is a tombstone
    mine = [m for m in changelog if m.key == NUM.encode()]
    assert mine and mine[0].value is not None and mine[-1].value is None, trace
