"""The route flow's result does not depend on how the demand and decision topics interleave
(docs/policy.md, Ordering): the same records give every actor the same deliveries, whether an
application's decisions came before its first Demande or after it."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from gateway.codec.avro import decode_single_object, load_schemas
from gateway.flows.dlq import DeadLetters
from gateway.flows.route import MAX_PENDING, RouteCore
from gateway.policy import PolicyStore
from gateway.policy.model import DEFAULT_ACTORS_FILE, DEFAULT_POLICY_FILE
from gateway.policy.router import H_SOURCE
from gateway.policy.samples import sample_decision, sample_demande
from gateway.policy.scope import DECISION_FIELDS, ScopeState, before_decisions, update_state
from gateway.topics import actor_topic, audit_topic

KEY = b"035260100000000001"  # a Rennes application (sample_demande)
RENNES_HABITAT, NANTES_LOGEMENT, SIAO_35, CIA = "200000001", "200000002", "300000035", "CIA-243500139"
Input = tuple[str, dict[str, Any], str, str]  # (schema, record, ce_id, source)


def _core(tmp_path: Path) -> RouteCore:
    shutil.copy(DEFAULT_POLICY_FILE, tmp_path / "policy.yaml")
    shutil.copy(DEFAULT_ACTORS_FILE, tmp_path / "demo-actors.yaml")
    return RouteCore(PolicyStore(tmp_path / "policy.yaml"), load_schemas(), DeadLetters(), "t")


def _entered(kind: str, saisie: str, **sub: Any) -> dict[str, Any]:
    record = sample_decision(kind, origine=saisie, event_id=f"evt-{kind}-{saisie}", **sub)
    record["provenance"]["saisie"] = saisie
    return record


DEMANDE: Input = ("fr.gp.Demande", sample_demande(), "dem-1", "rennes-habitat-erp")
DECISIONS: list[Input] = [
    # Nantes Logement names the Rennes CIA: the territories do not overlap, the link is unconfirmed
    ("fr.gp.Decision", _entered("AVIS_COMMISSION", NANTES_LOGEMENT, commission=CIA), "d-1",
     "nantes-logement-erp"),
    ("fr.gp.Decision", _entered("ORIENTATION_SIAO", SIAO_35), "d-2", "siao-35"),  # links SIAO 35
    ("fr.gp.Decision", _entered("AVIS_COMMISSION", CIA), "d-3", "cia-rennes"),  # the CIA confirms
    ("fr.gp.Decision", _entered("DECISION_CAL", RENNES_HABITAT), "d-4", "rennes-habitat-erp"),
]  # fmt: skip


def _route(core: RouteCore, inputs: list[Input]) -> tuple[Counter[tuple[str, str, bytes]], Counter[str]]:
    """(topic, ce_id, value) of every actor delivery, and the number of audit entries per actor."""
    state: bytes | None = None
    delivered: Counter[tuple[str, str, bytes]] = Counter()
    audited: Counter[str] = Counter()
    audit_codec = load_schemas().codec("fr.gp.AuditEntry")
    codecs = {audit_codec.fingerprint: audit_codec}
    for offset, (schema, record, ce_id, source) in enumerate(inputs):
        out = core.process(
            topic=f"t.canonical.{schema}", partition=0, offset=offset, key=KEY,
            value=load_schemas().codec(schema).encode_framed(record),
            headers=[("ce_id", ce_id.encode()), (H_SOURCE, source.encode())], state=state,
        )  # fmt: skip
        assert out.dead is None
        for o in out:
            if o.topic == audit_topic("t"):
                audited[str(decode_single_object(o.value, codecs)[1]["actor"])] += 1
            else:
                delivered[o.topic, dict(o.headers)["ce_id"].decode(), o.value] += 1
        state = out.state if out.state is not None else state
    return delivered, audited


def _interleavings() -> list[list[Input]]:
    """The Demande at every place among the decisions (each topic keeps its own order)."""
    return [[*DECISIONS[:i], DEMANDE, *DECISIONS[i:]] for i in range(len(DECISIONS) + 1)]


@pytest.mark.parametrize("demande_at", range(1, len(DECISIONS) + 1))
def test_every_actor_gets_the_same_deliveries_whatever_the_interleaving(
    tmp_path: Path, demande_at: int
) -> None:
    core = _core(tmp_path)
    first = _route(core, _interleavings()[0])  # the Demande first: the order the application was made in
    assert _route(core, _interleavings()[demande_at]) == first


def test_the_demande_first_result_is_the_named_party_rule(tmp_path: Path) -> None:
    """What the interleavings all give: the CIA, named unconfirmed then confirming, receives from its
    own event on; SIAO 35 from its orientation on; the territory every record."""
    delivered, audited = _route(_core(tmp_path), _interleavings()[-1])  # every decision before the Demande
    per_topic = Counter(topic for topic, _, _ in delivered.elements())
    ids = {(topic, ce.split("/")[0]) for topic, ce, _ in delivered}
    assert (actor_topic(CIA, "t"), "d-1") not in ids  # not retroactive: the unconfirmed avis stays unsent
    assert (actor_topic(CIA, "t"), "dem-1") not in ids  # the Demande came before any CIA link
    assert {(actor_topic(CIA, "t"), "d-3"), (actor_topic(CIA, "t"), "d-4")} <= ids
    assert (actor_topic(SIAO_35, "t"), "dem-1") not in ids and (actor_topic(SIAO_35, "t"), "d-2") in ids
    assert per_topic[actor_topic("243500139", "t")] == 5  # Rennes Métropole (territory): all five
    assert audited[CIA] == 2 and audited["243500139"] == 5
    assert max(delivered.values()) == 1  # nobody receives a record twice


def test_the_early_recipients_of_a_decision_still_get_it_before_the_demande(tmp_path: Path) -> None:
    core = _core(tmp_path)
    delivered, _ = _route(core, [DECISIONS[1]])  # the orientation, its Demande not routed yet
    assert {topic for topic, _, _ in delivered} >= {actor_topic(SIAO_35, "t"), actor_topic("STAT-35", "t")}
    assert actor_topic("243500139", "t") not in {topic for topic, _, _ in delivered}


def test_before_decisions_resets_exactly_what_a_decision_sets() -> None:
    decisions = [record for _, record, _, _ in DECISIONS]
    decisions.append(_entered("LABEL_PRIORITAIRE", SIAO_35, _field="labelViolences"))
    decisions.append(_entered("DESIGNATION", RENNES_HABITAT))
    blank = ScopeState(pending=("kept",))
    state = blank
    for record in decisions:
        state = update_state(state, "fr.gp.Decision", record, lambda org: org != CIA, speakers=())
    changed = {f for f in ScopeState.__dataclass_fields__ if getattr(state, f) != getattr(blank, f)}
    assert changed and changed <= set(DECISION_FIELDS)
    assert before_decisions(state) == blank


def test_past_max_pending_the_decisions_keep_their_links(tmp_path: Path) -> None:
    """Decisions beyond MAX_PENDING are not kept for replay: the links they made stay in the state
    (routed in arrival order, the documented limit)."""
    core = _core(tmp_path)
    filler = ("fr.gp.Decision", _entered("DECISION_CAL", RENNES_HABITAT), "f", "rennes-habitat-erp")
    inputs = [filler] * MAX_PENDING + [DECISIONS[1], DEMANDE]
    delivered, _ = _route(core, inputs)
    ids = {(topic, ce.split("/")[0]) for topic, ce, _ in delivered}
    assert (actor_topic(SIAO_35, "t"), "dem-1") in ids  # linked by the orientation not kept pending
