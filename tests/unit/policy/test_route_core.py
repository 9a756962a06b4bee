"""The route flow's core without Kafka: bytes in, actor-topic and audit outputs out; hot reload."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from gateway.codec.avro import load_schemas
from gateway.errors import ConfigError
from gateway.flows.dlq import DeadLetters
from gateway.flows.route import RouteCore
from gateway.policy import PolicyStore
from gateway.policy.model import DEFAULT_ACTORS_FILE, DEFAULT_POLICY_FILE
from gateway.policy.samples import sample_decision, sample_demande
from gateway.topics import actor_topic, audit_topic


def _core(tmp_path: Path) -> RouteCore:
    shutil.copy(DEFAULT_POLICY_FILE, tmp_path / "policy.yaml")
    shutil.copy(DEFAULT_ACTORS_FILE, tmp_path / "demo-actors.yaml")
    return RouteCore(PolicyStore(tmp_path / "policy.yaml"), load_schemas(), DeadLetters(), "t")


def _process(core: RouteCore, schema: str, record: dict[str, object], state: bytes | None = None):  # type: ignore[no-untyped-def]
    value = load_schemas().codec(schema).encode_framed(record)
    return core.process(
        topic="t.canonical.x", partition=0, offset=7, key=b"035260100000000001", value=value,
        headers=[("ce_id", b"c1")], state=state,
    )  # fmt: skip


def test_outputs_go_to_actor_topics_and_audit(tmp_path: Path) -> None:
    core = _core(tmp_path)
    out = _process(core, "fr.gp.Demande", sample_demande())
    topics = [o.topic for o in out.outputs]
    assert actor_topic("243500139", "t") in topics and actor_topic("200000002", "t") not in topics
    assert topics.count(audit_topic("t")) == 6  # nominative recipients of a Rennes demand
    assert out.state is not None
    decision = _process(core, "fr.gp.Decision", sample_decision("DECISION_CAL"), out.state)
    assert actor_topic("243500139", "t") in [o.topic for o in decision.outputs]
    orphan = _process(core, "fr.gp.Decision", sample_decision("DECISION_CAL"), None)
    assert actor_topic("243500139", "t") not in [o.topic for o in orphan.outputs]


def test_undecodable_input_is_dead_lettered_with_its_original_bytes(tmp_path: Path) -> None:
    core = _core(tmp_path)
    out = core.process(
        topic="t.canonical.demande",
        partition=0,
        offset=3,
        key=b"k",
        value=b"not avro",
        headers=[],
        state=None,
    )
    assert out.dead is not None and out.dead.topic == "t.canonical.demande.dlq"
    assert out.dead.value == b"not avro" and not out.outputs


def test_hot_reload_refuses_a_bad_policy_and_takes_a_good_one(tmp_path: Path) -> None:
    core = _core(tmp_path)
    before = core.router.policy.version
    path = tmp_path / "policy.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("    handicap: sante_handicap\n", ""), encoding="utf-8")
    os.utime(path, (1, 1))
    assert core.maybe_reload() is False
    assert core.router.policy.version == before
    assert isinstance(core.store.last_error, ConfigError)
    assert any("handicap.etat" in p.path for p in core.store.last_error.problems)
    path.write_text(text.replace('version: "2026.1"', 'version: "2026.2"'), encoding="utf-8")
    os.utime(path, (2, 2))
    assert core.maybe_reload() is True
    assert core.router.policy.version.startswith("2026.2+")
    with pytest.raises(ConfigError):
        path.write_text("version: [", encoding="utf-8")
        core.store.reload()
    assert core.router.policy.version.startswith("2026.2+")


def test_decisions_before_their_application_reach_its_actors_once_it_is_known(tmp_path: Path) -> None:
    core = _core(tmp_path)
    early = _process(core, "fr.gp.Decision", sample_decision("DECISION_CAL", origine="200000001"))
    first = {o.topic for o in early.outputs}
    assert actor_topic("243500139", "t") not in first  # the application's communes are not known yet
    assert actor_topic("200000001", "t") in first  # its causer always sees it
    demand = _process(core, "fr.gp.Demande", sample_demande(), early.state)
    topics = [o.topic for o in demand.outputs]
    # Rennes Métropole now gets the demand and the earlier decision; the causer does not get it twice.
    assert topics.count(actor_topic("243500139", "t")) == 2
    assert topics.count(actor_topic("200000001", "t")) == 1
    assert topics.count(actor_topic("STAT-35", "t")) == 1
    audit_actors = [o for o in demand.outputs if o.topic == audit_topic("t")]
    assert (
        len(audit_actors) == 6 + 4
    )  # the demand to 6 actors, the decision to 4 new ones (RM, ALS, etat, gest.)
    assert demand.state is not None and b'"pending": []' in demand.state
    again = _process(core, "fr.gp.Demande", sample_demande(), demand.state)
    assert [o.topic for o in again.outputs].count(actor_topic("243500139", "t")) == 1


def test_unreadable_scope_state_fails_closed(tmp_path: Path) -> None:
    core = _core(tmp_path)
    out = _process(core, "fr.gp.Decision", sample_decision("DECISION_CAL", origine="200000002"), b"{not json")
    topics = {o.topic for o in out.outputs}
    assert actor_topic("243500139", "t") not in topics
    assert actor_topic("200000002", "t") in topics


@pytest.mark.parametrize(
    "state",
    [
        b"[]",  # JSON, but not an object
        b'{"communes": 75}',  # a field of the wrong type
        b'{"communes": ["35238"], "elargie": "yes"}',
        b'{"designataires": [1, 2]}',
        b"[" * 100_000,  # nested beyond the recursion limit
    ],
)
def test_scope_state_of_the_wrong_shape_fails_closed(tmp_path: Path, state: bytes) -> None:
    core = _core(tmp_path)
    out = _process(core, "fr.gp.Decision", sample_decision("DECISION_CAL", origine="200000002"), state)
    topics = {o.topic for o in out.outputs}
    assert out.dead is None
    assert actor_topic("243500139", "t") not in topics
    assert actor_topic("200000002", "t") in topics


def test_an_unreadable_pending_decision_does_not_dead_letter_the_demand(tmp_path: Path) -> None:
    core = _core(tmp_path)
    early = _process(core, "fr.gp.Decision", sample_decision("DECISION_CAL", origine="200000001"))
    assert early.state is not None
    damaged = early.state.replace(b'"pending": [', b'"pending": ["{not json", "{\\"v\\": \\"!!\\"}", ')
    assert damaged != early.state
    demand = _process(core, "fr.gp.Demande", sample_demande(), damaged)
    topics = [o.topic for o in demand.outputs]
    assert demand.dead is None
    # the demand itself, and the one readable earlier decision, still reach Rennes Métropole
    assert topics.count(actor_topic("243500139", "t")) == 2
    assert demand.state is not None and b'"pending": []' in demand.state


def test_a_source_id_header_that_is_not_utf8_is_routed_not_raised(tmp_path: Path) -> None:
    core = _core(tmp_path)
    inputs = (("fr.gp.Decision", sample_decision("DECISION_CAL")), ("fr.gp.Demande", sample_demande()))
    for schema, record in inputs:
        value = load_schemas().codec(schema).encode_framed(record)
        out = core.process(
            topic="t.canonical.x", partition=0, offset=7, key=b"035260100000000001", value=value,
            headers=[("ce_id", b"\xff\xfe")], state=None,
        )  # fmt: skip
        assert out.dead is None and out.outputs


def test_metric_labels_of_actor_topics_name_the_role_never_the_actor(tmp_path: Path) -> None:
    core = _core(tmp_path)
    out = _process(core, "fr.gp.Demande", sample_demande())
    labels = {core.metric_topic(o.topic) for o in out.outputs}
    assert "t.actor.[demandeur]" in labels and "t.actor.[collectivite]" in labels
    assert audit_topic("t") in labels
    assert not [label for label in labels if "035260100000000001" in label]  # the demandeur's actor id
    assert core.metric_topic("t.actor.nobody") == "t.actor.[unknown]"
