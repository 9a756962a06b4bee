"""The route flow's erasure (no broker): who gets the fr.gp.Effacement, what it holds, the receipt,
and the tombstones it skips."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from gateway.codec.avro import decode_single_object, load_schemas
from gateway.flows.dlq import DeadLetters
from gateway.flows.route import RouteCore, RouteOutcome
from gateway.policy import PolicyStore
from gateway.policy import erasure as erasure_module
from gateway.policy.derive import pseudonym
from gateway.policy.erasure import EFFACEMENT, erasure_notices, recipients_of
from gateway.policy.model import DEFAULT_ACTORS_FILE, DEFAULT_POLICY_FILE
from gateway.policy.samples import sample_decision, sample_demande
from gateway.policy.scope import ScopeState
from gateway.retention import protocol
from gateway.topics import actor_topic, retention_topic

NUM = "035260100000000001"
ERASE = [
    (protocol.ERASURE_HEADER, b"req-1"),
    (protocol.RADIATION_HEADER, b"2025-03-02"),
    (protocol.DUE_HEADER, b"2026-03-02"),
]


def _core(tmp_path: Path) -> RouteCore:
    shutil.copy(DEFAULT_POLICY_FILE, tmp_path / "policy.yaml")
    shutil.copy(DEFAULT_ACTORS_FILE, tmp_path / "demo-actors.yaml")
    return RouteCore(PolicyStore(tmp_path / "policy.yaml"), load_schemas(), DeadLetters(), "t")


def _route(core: RouteCore, schema: str, record: dict[str, Any], state: bytes | None) -> RouteOutcome:
    value = load_schemas().codec(schema).encode_framed(record)
    return core.process(
        topic="t.canonical.demande" if schema.endswith("Demande") else "t.canonical.decision",
        partition=0, offset=1, key=NUM.encode(), value=value, headers=[("ce_id", b"c1")], state=state,
    )  # fmt: skip


def _tombstone(
    core: RouteCore, topic: str, headers: list[tuple[str, bytes]], state: bytes | None
) -> RouteOutcome:
    return core.process(
        topic=topic, partition=0, offset=9, key=NUM.encode(), value=None, headers=headers, state=state
    )


def _effacements(out: RouteOutcome) -> dict[str, tuple[bytes | None, dict[str, Any]]]:
    codecs = {c.fingerprint: c for c in [load_schemas().codec(EFFACEMENT)]}
    found = {}
    for o in out.outputs:
        if o.topic.startswith("t.actor."):
            codec, record = decode_single_object(o.value, codecs)
            assert codec.name == EFFACEMENT
            found[o.topic] = (o.key, record)
    return found


def test_the_router_records_every_recipient_by_the_key_it_received(tmp_path: Path) -> None:
    core = _core(tmp_path)
    out = _route(core, "fr.gp.Demande", sample_demande(), None)
    state = ScopeState.from_bytes(out.state)
    served = {o.topic for o in out.outputs if o.topic.startswith("t.actor.")}
    assert {actor_topic(a, "t") for a in (*state.recipients, *state.pseudonymous)} == served
    assert "STAT-35" in state.pseudonymous and "STAT-35" not in state.recipients
    assert "243500139" in state.recipients  # Rennes Métropole: the wanted commune


def test_a_recipient_is_not_forgotten_when_the_scope_changes(tmp_path: Path) -> None:
    core = _core(tmp_path)
    rennes = _route(core, "fr.gp.Demande", sample_demande(), None)
    nantes = _route(core, "fr.gp.Demande", sample_demande(communes=("44109",)), rennes.state)
    assert actor_topic("243500139", "t") not in {o.topic for o in nantes.outputs}  # out of scope now
    erased = _tombstone(core, "t.canonical.demande", ERASE, nantes.state)
    got = _effacements(erased)
    assert actor_topic("243500139", "t") in got  # it received the Rennes demand: it erases it
    assert actor_topic("200000002", "t") in got  # Nantes Logement: the current scope
    assert actor_topic("300000044", "t") not in got  # SIAO 44: never received anything
    assert actor_topic("CIA-243500139", "t") not in got


def test_the_effacement_holds_only_the_key_and_dates_and_the_receipt_is_written(tmp_path: Path) -> None:
    core = _core(tmp_path)
    state = _route(core, "fr.gp.Demande", sample_demande(), None).state
    state = _route(core, "fr.gp.Decision", sample_decision("DECISION_CAL"), state).state
    out = _tombstone(core, "t.canonical.demande", ERASE, state)
    assert out.erase and out.state is None and out.dead is None
    got = _effacements(out)
    assert got
    fields = {f["name"] for f in load_schemas().raw(EFFACEMENT)["fields"]}
    for topic, (key, record) in got.items():
        assert (
            set(record) == fields == {"numUnique", "dateRadiation", "dateEffacement", "time", "par", "stores"}
        )
        assert record["dateRadiation"] == date(2025, 3, 2) and record["dateEffacement"] == date(2026, 3, 2)
        assert record["stores"] == [] and "req-1" in record["par"]
        assert key == record["numUnique"].encode()
        if topic == actor_topic("STAT-35", "t"):  # a pseudonymised recipient never sees the numéro unique
            secret = core.router.policy.secret
            assert record["numUnique"] == pseudonym(NUM, secret) != NUM
        else:
            assert record["numUnique"] == NUM
    household = str(sample_demande()["demandeur"])  # no value of the household in any output
    for o in out.outputs:
        assert b"Alice" not in o.value and b"DEMO" not in o.value, household
    receipts = [o for o in out.outputs if o.topic == retention_topic("receipts", "t")]
    assert [(r.key, r.value, r.headers) for r in receipts] == [
        (NUM.encode(), b"route", ((protocol.ERASURE_HEADER, b"req-1"),))
    ]
    assert all(
        (protocol.ERASURE_HEADER, b"req-1") in o.headers
        for o in out.outputs
        if o.topic.startswith("t.actor.")
    )


def test_an_application_never_routed_still_gets_its_receipt(tmp_path: Path) -> None:
    out = _tombstone(_core(tmp_path), "t.canonical.demande", ERASE, None)
    assert out.erase and [o.topic for o in out.outputs] == [retention_topic("receipts", "t")]


def test_pending_decisions_are_dropped_with_the_state(tmp_path: Path) -> None:
    core = _core(tmp_path)
    early = _route(core, "fr.gp.Decision", sample_decision("DECISION_CAL", origine="200000001"), None)
    assert ScopeState.from_bytes(early.state).pending
    out = _tombstone(core, "t.canonical.demande", ERASE, early.state)
    assert out.erase and actor_topic("200000001", "t") in _effacements(out)


def test_tombstones_that_are_not_erasures_change_nothing(tmp_path: Path) -> None:
    core = _core(tmp_path)
    state = _route(core, "fr.gp.Demande", sample_demande(), None).state
    for topic, headers in [
        ("t.canonical.demande", []),  # no erasure header: not an erasure
        ("t.canonical.decision", ERASE),  # compaction of the other canonical topics
        ("t.canonical.signal", ERASE),
        ("t.canonical.cotation", ERASE),
        ("t.canonical.adequation", []),
    ]:
        out = _tombstone(core, topic, headers, state)
        assert out.dead is None and out.state is None and not out.erase and not out.outputs, topic


def test_erasure_dates_fall_back_to_the_day_of_the_erasure() -> None:
    today = date(2026, 11, 30)
    assert protocol.erasure_dates([(protocol.ERASURE_HEADER, b"x")], today) == (today, today)
    assert protocol.erasure_dates(
        [(protocol.DUE_HEADER, b"nope"), (protocol.RADIATION_HEADER, b"2025-11-30")], today
    ) == (
        date(2025, 11, 30),
        today,
    )


def test_states_stored_before_the_recipients_field_still_read() -> None:
    old = b'{"communes": ["35238"], "demande_seen": true}'
    state = ScopeState.from_bytes(old)
    assert state.recipients == () and state.pseudonymous == ()
    assert recipients_of(state, {"x"}) == ((), (), 0)


def test_former_actors_are_counted_not_sent_and_the_header_matches_the_protocol() -> None:
    state = ScopeState(recipients=("A", "GONE"), pseudonymous=("S",))
    notices, gone = erasure_notices(
        state, NUM, known={"A", "S"}, secret=b"k" * 32, radiation=date(2025, 1, 1), due=date(2026, 1, 1),
        now=datetime(2026, 1, 1, tzinfo=UTC), par="p", request="r", policy_version="v",
    )  # fmt: skip
    assert gone == 1 and [n.actors for n in notices] == [("A",), ("S",)]
    assert erasure_module.ERASURE_HEADER == protocol.ERASURE_HEADER


def test_a_state_stored_before_the_recipients_field_erases_at_its_scope_and_links(tmp_path: Path) -> None:
    core = _core(tmp_path)
    routed = _route(core, "fr.gp.Demande", sample_demande(), None)
    designated = _route(
        core, "fr.gp.Decision", sample_decision("DESIGNATION", NUM, origine="824541148"), routed.state
    )
    state = ScopeState.from_bytes(designated.state)
    fields = {
        f: getattr(state, f) for f in state.__dataclass_fields__ if f not in ("recipients", "pseudonymous")
    }
    legacy = json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}).encode()
    assert b'"recipients"' not in legacy
    got = _effacements(_tombstone(core, "t.canonical.demande", ERASE, legacy))
    expected = {actor_topic(a, "t") for a in (*state.recipients, *state.pseudonymous)}
    assert set(got) == expected  # the same actors as the recorded ones, here
    assert actor_topic("300000044", "t") not in got
