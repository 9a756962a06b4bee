"""Schema registry (issue 12) against a real Apicurio Registry: subjects, evolution, refusals, outages.

These tests need no broker: they drive the framing the flows use (`ConfluentFramer`, `output_schemas`,
`RouteCore`) and decode with confluent-kafka's own `AvroDeserializer` (no project code on that side).
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from gateway.broker.local import free_port
from gateway.codec.avro import load_schemas
from gateway.codec.framing import ConfluentFramer, FrameDecoder, SchemaRefused, subject_name
from gateway.codec.registry_client import RegistryClient
from gateway.errors import ConfigError, RetriableError
from gateway.flows.dlq import DeadLetters
from gateway.flows.route import RouteCore, output_schemas
from gateway.policy import Router, load_policy
from gateway.policy.model import DEFAULT_ACTORS_FILE, DEFAULT_POLICY_FILE, PolicyStore
from gateway.policy.samples import sample_demande
from gateway.topics import actor_topic

STAT, RM = "STAT-35", "243500139"


def _deserialize(url: str, topic: str, value: bytes) -> dict[str, Any]:
    """What a recipient does: confluent-kafka only."""
    with SchemaRegistryClient({"url": url}) as client:
        out = AvroDeserializer(client)(value, SerializationContext(topic, MessageField.VALUE))
    assert isinstance(out, dict)
    return out


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - the test registry
        return json.loads(resp.read())


def _policy_variant(tmp_path: Path, name: str, edit: Any) -> Path:
    data = yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    edit(data)
    shutil.copy(DEFAULT_ACTORS_FILE, tmp_path / DEFAULT_ACTORS_FILE.name)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _stat_view_frame(router: Router, framer: ConfluentFramer, topic: str) -> tuple[str, bytes]:
    result = router.route("fr.gp.Demande", b"k", sample_demande(), None)
    delivery = result.for_actor(STAT)
    assert delivery is not None
    return delivery.view.name, framer.reframe(topic, delivery.value)


def test_views_registered_per_topic_and_record_name_and_decoded_by_confluent_tools(
    schema_registry_url: str,
) -> None:
    prefix = f"reg{uuid.uuid4().hex[:8]}"
    router = Router(load_policy())
    framer = ConfluentFramer(RegistryClient(schema_registry_url))
    pairs = output_schemas(router, prefix)
    framer.prepare(pairs)
    subjects = set(_get(f"{schema_registry_url}/subjects"))
    for topic, codec in pairs:
        subject = subject_name(topic, codec.name)
        assert subject in subjects
        config = _get(f"{schema_registry_url}/config/{subject}")
        assert config["compatibilityLevel"] == "BACKWARD"
    # the registered text is self-contained and names the same schema as the frame's fingerprint
    calls = framer.registry_calls
    result = router.route("fr.gp.Demande", b"k", sample_demande(), None)
    decoded = 0
    for delivery in result.deliveries:
        for actor in delivery.actors:
            topic = actor_topic(actor, prefix)
            value = framer.reframe(topic, delivery.value)
            assert value[:1] == b"\x00" and value[5:] == delivery.value[10:]
            out = _deserialize(schema_registry_url, topic, value)
            codec = delivery.view.codec
            assert out == codec.decode(delivery.value[10:])
            decoded += 1
    assert decoded == len(result.recipients) >= 5
    assert framer.registry_calls == calls  # ids cached: no registry call per record
    # and the gateway's own decoder reads it back
    decoder = FrameDecoder({}, RegistryClient(schema_registry_url), any_schema=True)
    stat = result.for_actor(STAT)
    assert stat is not None
    codec, record = decoder.decode(framer.reframe(actor_topic(STAT, prefix), stat.value))
    assert codec.fingerprint == stat.view.codec.fingerprint and "pseudoId" in record


def test_a_grant_is_a_new_compatible_version_and_old_records_still_decode(
    schema_registry_url: str, tmp_path: Path
) -> None:
    prefix = f"reg{uuid.uuid4().hex[:8]}"
    topic = actor_topic(STAT, prefix)
    framer = ConfluentFramer(RegistryClient(schema_registry_url))
    old = Router(load_policy())
    framer.prepare(output_schemas(old, prefix))
    name, old_value = _stat_view_frame(old, framer, topic)

    def grant_surface(data: dict[str, Any]) -> None:
        data["roles"]["statistique"]["withhold_paths"]["fr.gp.Demande"].remove("logementActuel.surface")

    new = Router(load_policy(_policy_variant(tmp_path, "more.yaml", grant_surface)))
    framer.prepare(output_schemas(new, prefix))
    new_name, new_value = _stat_view_frame(new, framer, topic)
    assert new_name == name  # same record, same subject: a new version of it
    versions = _get(f"{schema_registry_url}/subjects/{subject_name(topic, name)}/versions")
    assert versions == [1, 2]
    assert old_value[1:5] != new_value[1:5]
    assert "surface" not in _deserialize(schema_registry_url, topic, old_value)["logementActuel"]
    assert _deserialize(schema_registry_url, topic, new_value)["logementActuel"]["surface"] == 45.0


def test_an_incompatible_view_is_refused_before_anything_is_registered(
    schema_registry_url: str, tmp_path: Path
) -> None:
    prefix = f"reg{uuid.uuid4().hex[:8]}"
    framer = ConfluentFramer(RegistryClient(schema_registry_url))
    framer.prepare(output_schemas(Router(load_policy()), prefix))
    before = {
        s: _get(f"{schema_registry_url}/subjects/{s}/versions")
        for s in _get(f"{schema_registry_url}/subjects")
    }

    def eventid_to_statistique(data: dict[str, Any]) -> None:  # a required field, without default
        data["roles"]["statistique"]["withhold_paths"]["fr.gp.Decision"].remove("eventId")
        data["roles"]["statistique"]["withhold_paths"]["fr.gp.Demande"].remove("logementActuel.surface")

    bad = Router(load_policy(_policy_variant(tmp_path, "bad.yaml", eventid_to_statistique)))
    with pytest.raises(SchemaRefused) as refused:
        framer.prepare(output_schemas(bad, prefix))
    assert refused.value.subject.startswith(actor_topic(STAT, prefix) + "-fr.gp.view.Decision_")
    assert "eventId" in refused.value.reason  # the registry's own reason
    after = {
        s: _get(f"{schema_registry_url}/subjects/{s}/versions")
        for s in _get(f"{schema_registry_url}/subjects")
    }
    assert after == before  # the compatible surface change was not registered either


def test_route_core_keeps_its_policy_when_the_registry_refuses_the_new_one(
    schema_registry_url: str, tmp_path: Path
) -> None:
    policy_path = _policy_variant(tmp_path, "policy.yaml", lambda data: None)
    store = PolicyStore(policy_path)
    framer = ConfluentFramer(RegistryClient(schema_registry_url))
    core = RouteCore(store, load_schemas(), DeadLetters(), f"reg{uuid.uuid4().hex[:8]}", framer=framer)
    running = core.router

    def bad(data: dict[str, Any]) -> None:
        data["roles"]["statistique"]["withhold_paths"]["fr.gp.Decision"].remove("eventId")
        data["version"] = "2026.2"

    _policy_variant(tmp_path, "policy.yaml", bad)
    assert core.maybe_reload() is False
    assert core.router is running


def test_wrong_url_is_a_clear_configuration_error(schema_registry_url: str) -> None:
    base = schema_registry_url.rsplit("/apis/", 1)[0]
    with pytest.raises(ConfigError, match="ccompat"):
        RegistryClient(f"{base}/not-the-api").ping()
    with pytest.raises(RetriableError, match="unreachable"):
        RegistryClient(f"http://127.0.0.1:{free_port()}/apis/ccompat/v7", timeout=2).ping()


def test_registry_down_at_start_waits_then_registers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from gateway.registry_local import LocalRegistry, install_registry  # noqa: PLC0415
    from gateway.settings import GatewaySettings  # noqa: PLC0415

    registry = LocalRegistry(install_registry(GatewaySettings().state_dir), tmp_path / "r", watch_parent=True)
    registry.port = free_port()
    framer = ConfluentFramer(RegistryClient(registry.url, timeout=2), max_delay=2.0)
    codec = load_schemas().codec("fr.gp.Demande")
    done = threading.Event()
    errors: list[BaseException] = []

    def start() -> None:
        try:
            framer.prepare([("gp.canonical.demande", codec)])
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)
        finally:
            done.set()

    with caplog.at_level(logging.WARNING, logger="gateway.codec.framing"):
        thread = threading.Thread(target=start, daemon=True)
        thread.start()
        assert not done.wait(3.0)  # waiting, not failing, while the registry is down
        try:
            registry.start()
            assert done.wait(60.0) and not errors
            retries = [r for r in caplog.records if "retry" in r.getMessage()]
            assert retries and all("unreachable" in r.getMessage() for r in retries)
            prefix = framer.prefix("gp.canonical.demande", codec)
            # lost mid-run: cached ids keep framing, no registry call, never unframed
            registry.stop()
            calls = framer.registry_calls
            frame = framer.reframe("gp.canonical.demande", codec.encode_framed(sample_demande()))
            assert frame.startswith(prefix) and framer.registry_calls == calls
        finally:
            registry.stop()


def test_schemas_check_asks_the_registry(schema_registry_url: str, tmp_path: Path) -> None:
    from click.testing import CliRunner  # noqa: PLC0415
    from gateway.cli import cli  # noqa: PLC0415
    from gateway.codec.avro import DEFAULT_SCHEMA_DIR  # noqa: PLC0415
    from gateway.topics import canonical_topic  # noqa: PLC0415

    prefix = f"reg{uuid.uuid4().hex[:8]}"
    framer = ConfluentFramer(RegistryClient(schema_registry_url))
    framer.prepare([(canonical_topic("demande", prefix), load_schemas().codec("fr.gp.Demande"))])
    current = tmp_path / "avro"
    shutil.copytree(DEFAULT_SCHEMA_DIR, current)
    path = current / "fr.gp.Demande.avsc"
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["fields"].append({"name": "nouveauChamp", "type": "string"})  # required, no default
    path.write_text(json.dumps(raw), encoding="utf-8")
    env = {"GATEWAY_SCHEMA_REGISTRY_URL": schema_registry_url, "GATEWAY_TOPIC_PREFIX": prefix}
    result = CliRunner().invoke(cli, ["schemas", "check", "--current", str(current)], env=env)
    assert result.exit_code == 1
    assert f"BREAKING (schema registry) {canonical_topic('demande', prefix)}-fr.gp.Demande" in result.output
    assert "nouveauChamp" in result.output
