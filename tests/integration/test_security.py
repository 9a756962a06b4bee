"""The trust boundary on the real, secured broker: authentication refused for unknown or wrong
credentials, ACLs derived from the actors file enforced per principal (actors, sources), drift
detected by `gateway acl check`, credentials rotated and revoked, secrets kept out of outputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from gateway.errors import ConfigError
from gateway.flows.admin import TopicSpec, ensure_topics
from gateway.kafka_config import client_kwargs
from gateway.policy.model import DEFAULT_ACTORS_FILE, DEFAULT_POLICY_FILE
from gateway.security.acl import Acl, diff, plan
from gateway.security.admin import AdminSession
from gateway.security.kits import actor_client_kwargs, credential_file
from gateway.security.preflight import preflight
from gateway.settings import GatewaySettings
from gateway.testing.kafka import client_kwargs as admin_kwargs
from gateway.testing.kafka import produce
from gateway.topics import actor_topic, audit_topic, canonical_topic, dlq_topic, raw_topic, source_raw_topic
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAuthorizationFailedError

B35, B44, RM, GEST = "200000001", "200000002", "243500139", "300000099"
SRC_S, SRC_T = "erp-rennes", "erp-nantes"


@pytest.fixture
def secured(kafka_bootstrap: str, tmp_path: Path) -> GatewaySettings:
    """Settings of a fresh prefix and app id, with a policy whose actors file declares two sources,
    its ACLs applied and one record in each topic the tests read."""
    from gateway.cli.acl import apply_acls  # noqa: PLC0415

    actors = yaml.safe_load(DEFAULT_ACTORS_FILE.read_text(encoding="utf-8"))
    actors["sources"] = [
        {"id": SRC_S, "name": "ERP Rennes Habitat", "formats": ["cdc-json"], "speaks_for": [B35]},
        {"id": SRC_T, "name": "ERP Nantes Logement", "formats": ["cdc-json"], "speaks_for": [B44]},
    ]
    actors.pop("trusted", None)
    (tmp_path / "demo-actors.yaml").write_text(yaml.safe_dump(actors, allow_unicode=True), encoding="utf-8")
    shutil.copy(DEFAULT_POLICY_FILE, tmp_path / "policy.yaml")
    prefix = f"sec{uuid.uuid4().hex[:8]}"
    settings = GatewaySettings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
        app_id=f"{prefix}-app",
        state_dir=tmp_path / "state",
        policy_file=tmp_path / "policy.yaml",
        partitions=1,
    )
    readable = [
        actor_topic(B35, prefix),
        actor_topic(B44, prefix),
        canonical_topic("demande", prefix),
        dlq_topic(raw_topic("cdc-json", prefix)),
        f"{settings.app_id}-scope-changelog",
        audit_topic(prefix),
    ]
    ensure_topics(client_kwargs(settings), [TopicSpec(t, 1, 1) for t in readable])
    for topic in readable:
        produce(kafka_bootstrap, topic, [(b"k", b"v")])
    apply_acls(settings)
    return settings


def _read(kwargs: dict[str, Any], topic: str, group: str | None = None) -> int:
    """Records read from `topic` (partition 0) as the principal of `kwargs`; raises on refusal."""
    consumer = KafkaConsumer(
        **kwargs,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=15000,
    )
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        got = 0
        for _ in range(20):
            got += sum(len(r) for r in consumer.poll(timeout_ms=500).values())
            if got:
                break
        if group is not None and got:
            consumer.commit()
        return got
    finally:
        consumer.close()


def _denied(kwargs: dict[str, Any], topic: str) -> bool:
    """True when the broker answers a topic authorisation error to this principal for `topic`."""
    consumer = KafkaConsumer(**kwargs, enable_auto_commit=False, request_timeout_ms=15000)
    try:
        consumer.end_offsets([TopicPartition(topic, 0)])
    except TopicAuthorizationFailedError:
        return True
    finally:
        consumer.close()
    return False


def test_unauthenticated_and_wrong_password_clients_are_refused_naming_the_principal(
    secured: GatewaySettings,
) -> None:
    bootstrap = secured.bootstrap_servers
    with pytest.raises(ConfigError, match="needs TLS and authentication"):
        preflight({"bootstrap_servers": bootstrap}, timeout_s=5)
    good = actor_client_kwargs(secured, B35)
    wrong_secret = "not-the-password-" + uuid.uuid4().hex
    with pytest.raises(ConfigError) as info:
        preflight({**good, "sasl_plain_password": wrong_secret}, timeout_s=10)
    assert f"refused principal '{B35}'" in str(info.value) and "authentication" in str(info.value)
    assert wrong_secret not in str(info.value)
    assert good["sasl_plain_password"] not in str(info.value)
    foreign_ca = Path(secured.state_dir) / "foreign-ca.pem"
    from gateway.broker.tls import BrokerSecurity  # noqa: PLC0415

    foreign = BrokerSecurity(Path(secured.state_dir) / "foreign").ensure()
    shutil.copy(foreign.ca_cert, foreign_ca)
    with pytest.raises(ConfigError, match="certificate is refused"):
        preflight({**good, "ssl_cafile": str(foreign_ca)}, timeout_s=5)


def test_an_actor_reads_its_own_topic_and_nothing_else(secured: GatewaySettings) -> None:
    a = actor_client_kwargs(secured, B35)
    prefix, app = secured.topic_prefix, secured.app_id
    assert _read(a, actor_topic(B35, prefix), group=f"{app}.actor.{B35}.main") == 1
    assert _denied(a, actor_topic(B44, prefix))
    assert _denied(a, canonical_topic("demande", prefix))
    assert _denied(a, f"{app}-scope-changelog")
    assert _denied(a, dlq_topic(raw_topic("cdc-json", prefix)))
    assert _denied(a, audit_topic(prefix))
    with pytest.raises(KafkaError):  # a group outside its own group prefix
        _read(a, actor_topic(B35, prefix), group=f"{app}.actor.{B44}.main")


def test_gestionnaire_reads_the_audit_topic_and_collectivite_cannot(secured: GatewaySettings) -> None:
    topic = audit_topic(secured.topic_prefix)
    assert _read(actor_client_kwargs(secured, GEST), topic) == 1
    assert _denied(actor_client_kwargs(secured, RM), topic)


def test_a_source_writes_its_own_raw_topic_and_not_another_sources(secured: GatewaySettings) -> None:
    prefix = secured.topic_prefix
    s = actor_client_kwargs(secured, SRC_S)
    producer = KafkaProducer(**s, acks="all", max_block_ms=15000)
    try:
        producer.send(source_raw_topic("cdc-json", SRC_S, prefix), b"mine").get(timeout=30)
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(source_raw_topic("cdc-json", SRC_T, prefix), b"theirs").get(timeout=30)
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(canonical_topic("demande", prefix), b"forged").get(timeout=30)
    finally:
        producer.close(timeout=5)
    # the refused records went nowhere; the accepted one is in S's raw topic
    assert _read(admin_kwargs(secured.bootstrap_servers), source_raw_topic("cdc-json", SRC_S, prefix)) == 1
    assert _read(admin_kwargs(secured.bootstrap_servers), source_raw_topic("cdc-json", SRC_T, prefix)) == 0


def _cli(settings: GatewaySettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GATEWAY_") or k == "GATEWAY_KAFKA_CLIENT_FILE"
    }
    env.update(
        GATEWAY_BOOTSTRAP_SERVERS=settings.bootstrap_servers,
        GATEWAY_TOPIC_PREFIX=settings.topic_prefix,
        GATEWAY_APP_ID=settings.app_id,
        GATEWAY_STATE_DIR=str(settings.state_dir),
        GATEWAY_POLICY_FILE=str(settings.policy_file),
    )
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_acl_check_detects_an_acl_added_and_one_removed_by_hand(secured: GatewaySettings) -> None:
    assert _cli(secured, "acl", "check").returncode == 0
    prefix = secured.topic_prefix
    added = Acl("TOPIC", "LITERAL", canonical_topic("demande", prefix), f"User:{B35}", "READ")
    removed = Acl("TOPIC", "LITERAL", audit_topic(prefix), f"User:{GEST}", "READ")
    other_prefix = Acl("TOPIC", "LITERAL", "someone-else.actor.x", f"User:{B35}", "READ")
    with AdminSession(client_kwargs(secured)) as admin:
        admin.apply(diff([added, other_prefix], [removed], prefix, secured.app_id))
    try:
        check = _cli(secured, "acl", "check")
        assert check.returncode == 1
        assert f"+ ALLOW User:{GEST}" in check.stdout and audit_topic(prefix) in check.stdout
        assert f"- ALLOW User:{B35}" in check.stdout and canonical_topic("demande", prefix) in check.stdout
        assert "someone-else" not in check.stdout  # another prefix's ACLs are not ours
        assert _cli(secured, "acl", "apply").returncode == 0
        assert _cli(secured, "acl", "check").returncode == 0
        assert _denied(actor_client_kwargs(secured, B35), canonical_topic("demande", prefix))
    finally:
        with AdminSession(client_kwargs(secured)) as admin:
            admin.apply(diff([], [other_prefix], "someone-else", "none"))


def test_kits_rotation_revocation_file_modes_and_no_secret_in_outputs(secured: GatewaySettings) -> None:
    out = _cli(secured, "actors", "client-config", B44, "--format", "librdkafka")
    assert out.returncode == 0, out.stderr
    props = dict(line.split("=", 1) for line in out.stdout.splitlines())
    assert props["sasl.username"] == B44
    assert props["group.id"] == f"{secured.app_id}.actor.{B44}.main"
    secret = props["sasl.password"]
    kit_file = credential_file(secured, B44)
    assert kit_file.stat().st_mode & 0o777 == 0o600
    assert json.loads(kit_file.read_text())["sasl_password"] == secret
    old = actor_client_kwargs(secured, B44)
    assert old["sasl_plain_password"] == secret
    assert _read(old, actor_topic(B44, secured.topic_prefix)) == 1
    rotated = _cli(secured, "actors", "credentials", B44, "--format", "json")
    assert rotated.returncode == 0, rotated.stderr
    new_secret = json.loads(rotated.stdout)["sasl.password"]
    assert new_secret != secret and secret not in rotated.stdout + rotated.stderr
    with pytest.raises(ConfigError, match=f"refused principal '{B44}'"):
        preflight(old, timeout_s=10)
    assert _read(actor_client_kwargs(secured, B44), actor_topic(B44, secured.topic_prefix)) == 1
    revoked = _cli(secured, "actors", "credentials", B44, "--revoke")
    assert revoked.returncode == 0 and new_secret not in revoked.stdout + revoked.stderr
    with pytest.raises(ConfigError, match=f"refused principal '{B44}'"):
        preflight({**old, "sasl_plain_password": new_secret}, timeout_s=10)
    unknown = _cli(secured, "actors", "client-config", "no-such-actor")
    assert unknown.returncode == 2 and "unknown principal 'no-such-actor'" in unknown.stderr
    plan_out = _cli(secured, "acl", "plan")
    assert plan_out.returncode == 0
    for text in (plan_out.stdout, plan_out.stderr, unknown.stdout, unknown.stderr):
        assert new_secret not in text and secret not in text
        assert admin_kwargs(secured.bootstrap_servers)["sasl_plain_password"] not in text
    sec_dir = Path(os.environ["GATEWAY_KAFKA_CLIENT_FILE"]).parent
    for name in ("ca.key", "server.pem", "broker.secret", "admin-client.json"):
        assert (sec_dir / name).stat().st_mode & 0o777 == 0o600, name


def test_the_plan_covers_every_principal_of_the_actors_file(secured: GatewaySettings) -> None:
    from gateway.policy.model import load_policy  # noqa: PLC0415

    pol = load_policy(secured.policy_file)
    planned = plan(pol.actors, pol.sources, secured.topic_prefix, secured.app_id)
    users = {a.principal.removeprefix("User:") for a in planned}
    assert set(pol.actors) | set(pol.sources) <= users
    with AdminSession(client_kwargs(secured)) as admin:
        assert diff(planned, admin.acls(), secured.topic_prefix, secured.app_id).clean


def test_a_librdkafka_kit_connects_a_confluent_kafka_consumer_to_its_own_topic(
    secured: GatewaySettings,
) -> None:
    confluent_kafka = pytest.importorskip("confluent_kafka")
    out = _cli(secured, "actors", "client-config", B35, "--format", "librdkafka")
    assert out.returncode == 0, out.stderr
    conf: dict[str, str] = dict(line.split("=", 1) for line in out.stdout.splitlines())
    conf["auto.offset.reset"] = "earliest"
    consumer = confluent_kafka.Consumer(conf)  # an unknown property would raise KafkaException here
    try:
        consumer.subscribe([actor_topic(B35, secured.topic_prefix)])
        got = []
        for _ in range(60):
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
                break
        assert got == [b"v"]
    finally:
        consumer.close()


def test_a_plaintext_data_dir_is_migrated_not_half_configured(tmp_path: Path) -> None:
    from gateway.broker import LocalBroker, install_kafka  # noqa: PLC0415

    base = GatewaySettings()
    libs = install_kafka(base.state_dir, base.kafka_version)
    old = LocalBroker(libs, tmp_path / "k", secure=False, watch_parent=True)
    old.start()
    try:
        admin_plain = KafkaAdminClient(bootstrap_servers=old.bootstrap)  # a plaintext version's client
        admin_plain.create_topics([NewTopic("kept", 1, 1)])
        admin_plain.close()
        produce_plain = KafkaProducer(bootstrap_servers=old.bootstrap, acks="all")
        produce_plain.send("kept", b"before the migration").get(timeout=30)
        produce_plain.close()
    finally:
        old.stop()
    new = LocalBroker(libs, tmp_path / "k", port=old.port, watch_parent=True)
    new.start()
    try:
        assert (tmp_path / "k" / "secured").is_file()
        with pytest.raises(ConfigError, match="needs TLS and authentication"):
            preflight({"bootstrap_servers": new.bootstrap}, timeout_s=5)
        assert _read(new.admin_kwargs(), "kept") == 1  # the data survived, now behind SASL_SSL
    finally:
        new.stop()
    with pytest.raises(ConfigError, match="belongs to a secured broker"):
        LocalBroker(libs, tmp_path / "k", secure=False).start()
