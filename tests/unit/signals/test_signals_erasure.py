"""The signals flow's erasure without Kafka: state deleted, dwellings told, index forgets, receipt."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from gateway.codec.avro import load_schemas
from gateway.flows.dlq import DeadLetters
from gateway.flows.signals import Outcome, SignalsCore
from gateway.retention import protocol
from gateway.signals.erasure import ERASE, erase_facts, partition_of, sweep
from gateway.signals.samples import bail, cal, ctx, demande
from gateway.signals.state import ANY_DWELLING, AppState, DueIndex, LogementState

NOW = datetime(2026, 11, 30, tzinfo=UTC)
ERASE_HEADERS = [(protocol.ERASURE_HEADER, b"req-7")]
A, B = "044250100000000001", "044250100000000002"


def _core(partitions: int = 3) -> SignalsCore:
    return SignalsCore(ctx(), load_schemas(), DeadLetters(), "t", clock=lambda: NOW, partitions=partitions)


def _record(core: SignalsCore, states: dict[bytes, bytes], schema: str, record: dict[str, object]) -> Outcome:
    key = str(record["numUnique"]).encode()
    out = core.on_record(
        topic=f"t.canonical.{schema[6:].lower()}", partition=0, offset=3, key=key,
        value=load_schemas().codec(schema).encode_framed(record), state=states.get(key),
    )  # fmt: skip
    if out.state is not None:
        states[key] = out.state
    return out


def _tombstone(
    core: SignalsCore, topic: str, key: str, state: bytes | None, headers: list[tuple[str, bytes]]
) -> Outcome:
    return core.on_record(
        topic=topic, partition=0, offset=9, key=key.encode(), value=None, state=state, headers=headers
    )


def _apply_facts(core: SignalsCore, dwellings: dict[bytes, bytes], outputs: list) -> list:  # type: ignore[type-arg]
    signals = []
    for f in [o for o in outputs if o.topic == "t.signals.logement"]:
        out = core.on_fact(key=f.key, value=f.value, state=dwellings.get(f.key))
        if out.state is not None:
            dwellings[f.key] = out.state
        elif out.erase:
            del dwellings[f.key]
        signals += out.outputs
    return signals


def test_the_erasure_deletes_the_state_tells_the_dwelling_and_writes_the_receipt() -> None:
    core = _core()
    states: dict[bytes, bytes] = {}
    dwellings: dict[bytes, bytes] = {}
    for num in (A, B):
        _record(core, states, "fr.gp.Demande", demande(num))
    outputs = []
    for record in (cal(A, 1), cal(B, 2), bail(A)):
        outputs += _record(core, states, "fr.gp.Decision", record).outputs
    _apply_facts(core, dwellings, outputs)
    (dwelling,) = dwellings
    assert AppState.from_bytes(states[A.encode()]).dwellings == (dwelling.decode(),)
    assert A.encode() in dwellings[dwelling] and B.encode() in dwellings[dwelling]

    out = _tombstone(core, "t.canonical.demande", A, states[A.encode()], ERASE_HEADERS)
    assert out.erase and out.state is None and out.dead is None
    assert [(o.topic, o.key, o.value) for o in out.outputs[-2:]] == [
        ("t.canonical.signal", A.encode(), None),  # its signals tombstoned again
        ("t.retention.receipts", A.encode(), b"signals"),
    ]
    assert all((protocol.ERASURE_HEADER, b"req-7") in o.headers for o in out.outputs)
    _apply_facts(core, dwellings, out.outputs)
    assert A.encode() not in dwellings[dwelling] and B.encode() in dwellings[dwelling]  # B's data stays

    out_b = _tombstone(core, "t.canonical.demande", B, states[B.encode()], ERASE_HEADERS)
    _apply_facts(core, dwellings, out_b.outputs)
    assert dwelling not in dwellings  # nobody left: the dwelling's entry is deleted


def test_an_application_never_seen_gets_its_receipt_and_nothing_else() -> None:
    out = _tombstone(_core(), "t.canonical.demande", A, None, ERASE_HEADERS)
    assert out.erase and [o.topic for o in out.outputs] == ["t.canonical.signal", "t.retention.receipts"]


def test_other_tombstones_are_skipped_without_dead_letter() -> None:
    core = _core()
    states: dict[bytes, bytes] = {}
    _record(core, states, "fr.gp.Demande", demande(A))
    for topic, headers in [("t.canonical.demande", []), ("t.canonical.decision", ERASE_HEADERS)]:
        out = _tombstone(core, topic, A, states[A.encode()], headers)
        assert out.dead is None and out.state is None and not out.erase and not out.outputs, topic


def test_an_old_state_without_its_dwellings_asks_every_partition() -> None:
    state = AppState(known=True)
    old = json.dumps(json.loads(state.to_bytes())[:-1]).encode()  # written before the field
    assert AppState.from_bytes(old).dwellings == (ANY_DWELLING,)
    facts = erase_facts(AppState.from_bytes(old), A, 6)
    assert sorted(partition_of(k, 6) for k, _ in facts) == list(range(6))
    assert all(f == {"kind": ERASE, "key": ANY_DWELLING, "num": A} for _, f in facts)
    # each partition's dwelling processor looks through its own dwellings
    named = LogementState({}, designataires=((A, "X"), (B, "Y"))).to_bytes()
    other = LogementState({}, designataires=((B, "Y"),)).to_bytes()
    table = {
        b"rpls:1": named,
        b"rpls:2": other,
        b"rpls:3": LogementState({}, designataires=((A, "X"),)).to_bytes(),
    }
    changes = {}
    for p in range(6):
        changes.update(sweep(list(table), table.get, p, 6, json.dumps(facts[p][1]).encode()))
    assert set(changes) == {b"rpls:1", b"rpls:3"} and changes[b"rpls:3"] is None
    assert A.encode() not in (changes[b"rpls:1"] or b"")


def test_the_due_index_forgets_an_erased_application_and_a_tick_never_revives_it() -> None:
    index = DueIndex()
    index.add(A, 10)
    index.add(B, 10)
    index.forget(A)
    assert index.pop_due(11) == [B]
    index.add(A, 12)  # a new application under that number (after the erasure) is indexed again
    assert index.pop_due(12) == [A]
    core = _core()
    ticked = list(core.on_tick(date(2027, 1, 1).toordinal(), [A.encode()], lambda k: None))
    assert ticked == []  # no state: no signal
