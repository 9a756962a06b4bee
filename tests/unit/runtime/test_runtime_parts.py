"""Runtime pieces without a broker: topic declarations, dead-letter helpers, metrics, app factory,
local broker configuration, wait-for-broker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from gateway.broker import LocalBroker, free_port, libs_present
from gateway.broker import install as install_mod
from gateway.broker.emit import KafkaEmitter
from gateway.cli.run import wait_for_broker
from gateway.errors import ConfigError, Problem, RetriableError
from gateway.flows.admin import ingest_topics
from gateway.flows.app import create_app, flow_topics
from gateway.flows.dlq import DeadLetters, original_topic, replay_headers
from gateway.model.deadletter import ERR
from gateway.monitoring.metrics import Metrics
from gateway.policy.model import load_policy
from gateway.settings import GatewaySettings


def test_ingest_topics_declare_partitions_replication_and_cleanup() -> None:
    specs = {
        s.name: s
        for s in ingest_topics(GatewaySettings(topic_prefix="x", partitions=4, replication_factor=1))
    }
    assert specs["x.canonical.demande"].all_configs()["cleanup.policy"] == "compact"
    assert specs["x.canonical.decision"].all_configs()["cleanup.policy"] == "compact"
    week = str(7 * 24 * 3600 * 1000)
    assert specs["x.canonical.decision"].all_configs()["min.compaction.lag.ms"] == week
    pairs = [(fmt, src.id) for src in load_policy().sources.values() for fmt in src.formats]
    for fmt, source in pairs:  # one raw topic per (source, format) the actors file declares
        assert specs[f"x.raw.{fmt}.{source}"].cleanup_policy == "delete"
        assert specs[f"x.raw.{fmt}.{source}.dlq"].cleanup_policy == "delete"
    assert {s.partitions for s in specs.values()} == {4}
    assert len(specs) == 2 * len(pairs) + 2


def test_dead_letter_helpers_round_trip() -> None:
    letter = DeadLetters().build(
        source_topic="gp.raw.cal-csv", partition=1, offset=9, key=b"k", original=b"line 3",
        problems=[Problem("ligne[3].date", "not a date", "str")], message="m", stage="normalise",
        locator="line 3",
    )  # fmt: skip
    assert letter.topic == "gp.raw.cal-csv.dlq"
    assert original_topic(letter.topic, letter.headers) == "gp.raw.cal-csv"
    assert original_topic("gp.raw.sne-xml.dlq", []) == "gp.raw.sne-xml"
    replayed = dict(replay_headers((*letter.headers, ("ce_id", b"1")), letter.topic, 5))
    assert not [k for k in replayed if k.startswith(ERR) or k.startswith("gp.errors.")]
    assert replayed["gp.replayed.from"] == b"gp.raw.cal-csv.dlq@5"
    assert replayed["ce_id"] == b"1"


def test_metrics_render_prometheus_text_with_kafka_exporter_lag() -> None:
    m = Metrics("grp")
    m.records_in.labels(flow="ingest", source="sne-xml").inc(3)
    m.dead_lettered.labels(flow="ingest", source="sne-xml").inc()
    m.processing.labels(flow="ingest").observe(0.01)
    m.set_lag_source(lambda: {("gp.raw.sne-xml", 0): 4, ("gp.raw.sne-xml", 1): -2})
    text = m.render().decode()
    assert 'gp_records_in_total{flow="ingest",source="sne-xml"} 3.0' in text
    assert 'gp_records_dead_lettered_total{flow="ingest",source="sne-xml"} 1.0' in text
    assert 'gp_processing_seconds_count{flow="ingest"} 1.0' in text
    assert 'kafka_consumergroup_lag{consumergroup="grp",partition="0",topic="gp.raw.sne-xml"} 4.0' in text
    assert 'kafka_consumergroup_lag{consumergroup="grp",partition="1",topic="gp.raw.sne-xml"} 0.0' in text


def test_lag_of_several_consumer_groups_of_one_process() -> None:
    m = Metrics(consumer_group="app")
    m.set_lag_source(lambda: {("gp.canonical.demande", 0): 2})
    m.add_lag_source(lambda: {("gp.raw.sne-xml", 1): 5}, "app.ingest")
    text = m.render().decode()
    assert (
        'kafka_consumergroup_lag{consumergroup="app",partition="0",topic="gp.canonical.demande"} 2.0' in text
    )
    assert (
        'kafka_consumergroup_lag{consumergroup="app.ingest",partition="1",topic="gp.raw.sne-xml"} 5.0' in text
    )


def test_a_failing_lag_source_does_not_break_a_scrape() -> None:
    m = Metrics()

    def broken() -> dict[tuple[str, int], int]:
        raise RuntimeError("rebalancing")

    m.set_lag_source(broken)
    assert b"kafka_consumergroup_lag" in m.render()


def test_create_app_registers_flows_and_declares_their_topics(tmp_path: Path) -> None:
    settings = GatewaySettings(
        topic_prefix="u", app_id="a", instance_id="i-1", state_dir=tmp_path, kafka_allow_plaintext=True
    )
    app = create_app(settings, ["ingest"])
    runner = app.gp_ingest_runner  # type: ignore[attr-defined]  # the ingest loop, run as an app service
    assert runner.group_id == "a.ingest"
    assert runner.transactional_id == "a.ingest.i-1"
    declared = {f"u.raw.{fmt}.{src.id}": fmt for src in load_policy().sources.values() for fmt in src.formats}
    assert runner.formats == declared
    assert {t: (s.fmt, s.source) for t, s in runner.sources.items()} == {
        t: (fmt, t.rsplit(".", 1)[1]) for t, fmt in declared.items()
    }
    assert runner.exactly_once
    assert len(app._extra_services) == 1  # the thread is started and stopped with the app
    names = {s.name for s in flow_topics(app)}
    assert "u.canonical.demande" in names
    assert "u.raw.sne-xml.rennes-habitat-erp.dlq" in names
    assert app.conf.processing_guarantee.value == "exactly_once"
    alo = create_app(
        GatewaySettings(state_dir=tmp_path, processing_guarantee="at_least_once", kafka_allow_plaintext=True),
        ["ingest"],
    )
    assert alo.conf.processing_guarantee.value == "at_least_once"
    assert not alo.gp_ingest_runner.exactly_once  # type: ignore[attr-defined]


def test_create_app_refuses_unknown_flows_and_a_registry_url_that_is_not_http(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown flow"):
        create_app(GatewaySettings(state_dir=tmp_path, kafka_allow_plaintext=True), ["no_such_flow"])
    with pytest.raises(ConfigError, match="not a"):
        create_app(GatewaySettings(state_dir=tmp_path, kafka_allow_plaintext=True), ["../x"])
    with pytest.raises(ConfigError, match="SCHEMA_REGISTRY_URL"):
        create_app(
            GatewaySettings(
                state_dir=tmp_path, schema_registry_url="registry:8081", kafka_allow_plaintext=True
            ),
            ["ingest"],
        )


def test_local_broker_configuration(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "libs", tmp_path / "data", port=free_port(), controller_port=free_port())
    broker.data_dir.mkdir()
    plain = broker._write_config(broker._plaintext_props()).read_text()
    assert f"PLAINTEXT://127.0.0.1:{broker.port}" in plain
    broker.security.ensure()
    props = broker._write_config(broker._secure_props()).read_text()
    assert f"BROKER://127.0.0.1:{broker.port}" in props
    assert "listener.security.protocol.map=BROKER:SASL_SSL,CONTROLLER:SSL" in props
    assert "allow.everyone.if.no.acl.found=false" in props
    assert "auto.create.topics.enable=false" in props
    assert "super.users=User:broker;User:gateway-admin" in props
    assert (broker.data_dir / "server.properties").stat().st_mode & 0o777 == 0o600  # holds a secret
    assert f"controller.quorum.voters=1@127.0.0.1:{broker.controller_port}" in props
    assert "transaction.state.log.min.isr=1" in props
    assert "process.roles=broker,controller" in props
    with pytest.raises(ConfigError, match="broker install"):
        broker.start()


def test_install_needs_maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not libs_present(tmp_path, "3.9.1")
    monkeypatch.setattr(install_mod.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match="mvn"):
        install_mod.install_kafka(tmp_path, "3.9.1")


def test_wait_for_broker_gives_up_with_a_clear_error() -> None:
    with pytest.raises(RetriableError, match="no Kafka broker answers"):
        wait_for_broker({"bootstrap_servers": f"127.0.0.1:{free_port()}"}, max_wait=0.5, quiet=True)


def test_the_source_emitter_reports_an_unreachable_broker_as_retriable() -> None:
    async def main() -> None:
        async with KafkaEmitter(
            GatewaySettings(bootstrap_servers=f"127.0.0.1:{free_port()}", kafka_allow_plaintext=True),
            source="rennes-habitat-erp",
        ):
            pass

    with pytest.raises(RetriableError, match="cannot reach Kafka"):
        asyncio.run(main())


def test_the_source_emitter_refuses_an_event_too_large_for_the_broker() -> None:
    from aiokafka.errors import MessageSizeTooLargeError  # type: ignore[import-untyped]  # noqa: PLC0415
    from gateway.connectors import RawEvent  # noqa: PLC0415
    from gateway.errors import RejectedMessage  # noqa: PLC0415

    class _Producer:
        async def send_and_wait(self, *args: object, **kwargs: object) -> None:
            raise MessageSizeTooLargeError("The message is 2000000 bytes")

    emitter = KafkaEmitter(GatewaySettings(), source="rennes-habitat-erp")
    emitter._producer = _Producer()
    event = RawEvent(format="sne-xml", payload=b"x" * 10, key=None, origin="a.xml", headers=())
    with pytest.raises(RejectedMessage) as info:
        asyncio.run(emitter(event))
    assert [(p.reason, p.value) for p in info.value.problems] == [("too large for the broker", "10 bytes")]


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid  # noqa: PLC0415

    from gateway.broker import local  # noqa: PLC0415

    ids = iter([uuid.UUID(bytes=b"\xf8" + b"\x00" * 15), uuid.UUID(bytes=b"\x01" * 16)])
    monkeypatch.setattr(local.uuid, "uuid4", lambda: next(ids))
    assert local._cluster_id() == "AQEBAQEBAQEBAQEBAQEBAQ"
