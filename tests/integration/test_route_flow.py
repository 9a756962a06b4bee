"""Route flow on a real broker: one demand and its decisions reach exactly the expected actor topics
with exactly the expected fields, and the audit topic holds one entry per nominative disclosure."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import yaml
from click.testing import CliRunner
from gateway.broker.local import free_port
from gateway.cli import cli
from gateway.codec.avro import decode_single_object, load_schemas
from gateway.flows.admin import ensure_topics, ingest_topics
from gateway.flows.route import route_topics
from gateway.policy import Router, load_policy
from gateway.policy.model import DEFAULT_ACTORS_FILE, DEFAULT_POLICY_FILE
from gateway.policy.router import H_POLICY_VERSION, H_SOURCE_CE_ID, H_VIEW_FINGERPRINT
from gateway.policy.samples import sample_decision, sample_demande
from gateway.policy.views import schema_leaf_paths
from gateway.settings import GatewaySettings
from gateway.testing.kafka import (
    consume_topics,
    produce,
    start_worker,
    stop_worker,
    wait_for_count,
    worker_env,
)
from gateway.topics import actor_topic, audit_topic, canonical_topic

NUM = "035260100000000001"
B35, B44, ETAT, RM, ALS, SIAO, CIA, GEST, STAT = (
    "200000001", "200000002", "130000035", "243500139", "824541148", "300000035", "CIA-243500139",
    "300000099", "STAT-35",
)  # fmt: skip
DEMO = "DEM-7K2Q9X4M"
NOMINATIVE_IN_SCOPE = {B35, ETAT, RM, ALS, GEST, DEMO}


def _framed(schema: str, record: dict[str, object]) -> bytes:
    return load_schemas().codec(schema).encode_framed(record)


def test_demand_and_decisions_reach_exactly_the_expected_actors(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = f"route{uuid.uuid4().hex[:8]}"
    env = worker_env(
        kafka_bootstrap, prefix=prefix, state_dir=str(tmp_path), web_port=free_port(), partitions=2
    )
    settings = GatewaySettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, partitions=2)
    policy = load_policy()
    ensure_topics(kafka_bootstrap, [*ingest_topics(settings), *route_topics(settings, policy)])
    demande = sample_demande(NUM, ("35238",))
    decisions = [
        sample_decision("DESIGNATION", NUM, origine=ALS),
        sample_decision("DECISION_CAL", NUM, origine=B35),
        sample_decision("AVIS_COMMISSION", NUM, origine=CIA),
    ]
    log = str(tmp_path / "worker.log")
    worker = start_worker(env, flows="route", log_path=log)
    try:
        produce(
            kafka_bootstrap,
            canonical_topic("demande", prefix),
            [(NUM.encode(), _framed("fr.gp.Demande", demande), [("ce_id", b"dem-1")])],
        )
        # Decisions are produced once the demand is routed: the two canonical topics are not ordered
        # with each other (see docs/policy.md, "ordering").
        wait_for_count(kafka_bootstrap, audit_topic(prefix), len(NOMINATIVE_IN_SCOPE), max_wait_s=180)
        produce(
            kafka_bootstrap,
            canonical_topic("decision", prefix),
            [
                (NUM.encode(), _framed("fr.gp.Decision", d), [("ce_id", f"dec-{i}".encode())])
                for i, d in enumerate(decisions)
            ],
        )
        # Expected, per actor: the demand + each decision in its scope (CIA from its own avis on).
        expected = Counter(dict.fromkeys(NOMINATIVE_IN_SCOPE | {STAT}, 4))
        expected[CIA] = 1
        audit = wait_for_count(
            kafka_bootstrap, audit_topic(prefix), sum(expected.values()) - 4, max_wait_s=180
        )
        by_topic = consume_topics(
            kafka_bootstrap,
            [actor_topic(a, prefix) for a in policy.actors],
            expect={actor_topic(a, prefix): expected.get(a) for a in policy.actors},
            quiet_ms=1000,
            max_wait_s=60,
        )
        got = {a: by_topic[actor_topic(a, prefix)] for a in policy.actors}
    finally:
        stop_worker(worker)

    assert {a: len(msgs) for a, msgs in got.items() if msgs} == dict(expected), Path(log).read_text()[-3000:]
    for absent in (B44, SIAO):
        assert got[absent] == []
    router = Router(policy)  # the views the worker must have used (same policy file)
    for actor, messages in got.items():
        for m in messages:
            assert m.header(H_POLICY_VERSION) == policy.version.encode()
            fp = bytes.fromhex((m.header(H_VIEW_FINGERPRINT) or b"").decode())
            assert m.value is not None and m.value[2:10] == fp
            # a non-nominative recipient gets no source id (it would lead back to the record)
            sources = {None} if actor == STAT else {b"dem-1", b"dec-0", b"dec-1", b"dec-2"}
            assert m.header(H_SOURCE_CE_ID) in sources
    # Exactly the expected fields: Rennes Métropole's demand has no health data, the bailleur's has.
    router.route("fr.gp.Demande", NUM.encode(), demande, None)
    views = {v.codec.fingerprint: v for v in router.views()}
    rm_demand = next(m for m in got[RM] if m.header(H_SOURCE_CE_ID) == b"dem-1")
    rm_view = views[rm_demand.value[2:10]]  # type: ignore[index]
    _, rm_record = decode_single_object(rm_demand.value or b"", {rm_view.codec.fingerprint: rm_view.codec})
    assert "handicap" not in rm_record and rm_record["besoinLogementAdapte"] is True
    assert rm_record["demandeur"]["nom"] == demande["demandeur"]["nom"]  # type: ignore[index]
    assert not any(p.startswith("handicap") for p in schema_leaf_paths(rm_view.avro))
    b35_demand = next(m for m in got[B35] if m.header(H_SOURCE_CE_ID) == b"dem-1")
    assert b35_demand.value is not None and b35_demand.value[2:10] in views
    assert "handicap.etat" in schema_leaf_paths(views[b35_demand.value[2:10]].avro)
    stat = got[STAT][0]
    assert stat.key != NUM.encode()
    # One audit entry per nominative disclosure (statistique is not nominative).
    codec = load_schemas().codec("fr.gp.AuditEntry")
    entries = [decode_single_object(m.value or b"", {codec.fingerprint: codec})[1] for m in audit]
    assert Counter(e["actor"] for e in entries) == Counter({a: n for a, n in expected.items() if a != STAT})
    assert {e["numUnique"] for e in entries} == {NUM}
    assert all(e["policyVersion"] == policy.version for e in entries)
    # `gateway audit who-received` answers from the audit topic.
    args = ["audit", "who-received", NUM, "--bootstrap", kafka_bootstrap, "--prefix", prefix]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0, out.output
    assert f"{NUM}: {len(entries)} disclosure(s)" in out.output
    assert "CIA-243500139" in out.output and "commission:linked" in out.output
    assert STAT not in out.output and B44 not in out.output
    other = CliRunner().invoke(cli, [*args[:2], "044260100000000001", *args[3:]])
    assert "044260100000000001: 0 disclosure(s)" in other.output
    # `gateway policy diff --traffic` dry-runs a policy change on the canonical records of the broker.
    changed = yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    changed["roles"]["collectivite"]["grants"]["sante_handicap"] = True
    new_policy = tmp_path / "new-policy.yaml"
    new_policy.write_text(yaml.safe_dump(changed), encoding="utf-8")
    env = {"GATEWAY_BOOTSTRAP_SERVERS": kafka_bootstrap, "GATEWAY_TOPIC_PREFIX": prefix}
    diff_args = [
        "policy",
        "diff",
        str(DEFAULT_POLICY_FILE),
        str(new_policy),
        "--actors",
        str(DEFAULT_ACTORS_FILE),
    ]
    dry = CliRunner().invoke(cli, [*diff_args, "--traffic"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "dry run on 4 canonical records" in dry.output
    assert "243500139: records 4 -> 4 (+0 new, -0 no longer sent)" in dry.output
    assert "+ Demande:handicap.etat" in dry.output
