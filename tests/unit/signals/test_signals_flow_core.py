"""The signals flow's core without Kafka: bytes and state in, outputs, state and dead letters out."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from gateway.codec.avro import decode_single_object, load_schemas
from gateway.flows.dlq import DeadLetters
from gateway.flows.signals import SignalsCore, make_clock
from gateway.signals.indexes import DueIndexes
from gateway.signals.samples import bail, cal, ctx, decision, demande

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def _core(now: datetime = NOW) -> SignalsCore:
    return SignalsCore(ctx(), load_schemas(), DeadLetters(), "t", clock=lambda: now)


def _framed(schema: str, record: dict[str, object]) -> bytes:
    return load_schemas().codec(schema).encode_framed(record)


def _run(core: SignalsCore, states: dict[bytes, bytes], schema: str, record: dict[str, object]):  # type: ignore[no-untyped-def]
    key = str(record["numUnique"]).encode()
    out = core.on_record(
        topic=f"t.canonical.{schema[6:].lower()}",
        partition=0,
        offset=3,
        key=key,
        value=_framed(schema, record),
        state=states.get(key),
    )
    if out.state is not None:
        states[key] = out.state
    return out


def test_signals_are_framed_avro_with_cloudevents_headers_and_facts_go_to_the_dwelling_topic() -> None:
    core = _core()
    states: dict[bytes, bytes] = {}
    dwellings: dict[bytes, bytes] = {}
    a, b = "044250100000000001", "044250100000000002"
    for num in (a, b):
        _run(core, states, "fr.gp.Demande", demande(num))
    facts = []
    for record in (cal(a, 1), cal(b, 2), bail(a)):
        out = _run(core, states, "fr.gp.Decision", record)
        facts += [o for o in out.outputs if o.topic == "t.signals.logement"]
    assert len(facts) == 3 and len({f.key for f in facts}) == 1  # one dwelling key
    signals = []
    for f in facts:
        out = core.on_fact(key=f.key, value=f.value, state=dwellings.get(f.key))
        assert out.state is not None
        dwellings[f.key] = out.state
        signals += out.outputs
    assert [(o.topic, o.key) for o in signals] == [("t.canonical.signal", b.encode())]
    codec, record = decode_single_object(
        signals[0].value, {c.fingerprint: c for c in load_schemas().codecs()}
    )
    headers = dict(signals[0].headers)
    assert codec.name == "fr.gp.Signal" and record["typeSignal"] == "ATTRIBUE_NON_LOGE"
    assert headers["gp.schema.name"] == b"fr.gp.Signal" and headers["ce_subject"] == b.encode()
    assert json.loads(facts[0].value)["kind"] == "cal"


def test_an_unauthorised_saisine_is_dead_lettered_with_its_bytes_and_the_reason() -> None:
    core = _core()
    states: dict[bytes, bytes] = {}
    num = "035250100000000051"
    _run(core, states, "fr.gp.Demande", demande(num, "35238"))
    record = decision("AVIS_COMMISSION", num, when=date(2026, 10, 12), origine="999999999")
    record.update(
        typeEvenement="SAISINE_COMMISSION",
        avis=None,
        saisine={
            "typeCommission": "CIA_COORDINATION",
            "commission": "CIA-243500139",
            "dateSaisine": date(2026, 10, 12),
            "motifs": None,
        },
    )
    before = states[num.encode()]
    out = _run(core, states, "fr.gp.Decision", record)
    assert out.dead is not None and out.outputs == [] and states[num.encode()] == before
    assert out.dead.value == _framed("fr.gp.Decision", record)
    assert "not an actor" in dict(out.dead.headers)["__connect.errors.exception.message"].decode()


def test_tick_emits_the_due_signals_once_from_the_state_alone(tmp_path: Path) -> None:
    core = _core(datetime(2026, 6, 1, tzinfo=UTC))  # before the due day: nothing at arrival
    states: dict[bytes, bytes] = {}
    num = "044250600000000205"
    out = _run(core, states, "fr.gp.Demande", demande(num, created=date(2025, 6, 2)))
    assert out.due == date(2026, 7, 2).toordinal()
    today = date(2026, 7, 2).toordinal()
    first = list(core.on_tick(today, [num.encode()], states.get))
    assert [len(o.outputs) for _, o in first] == [1]
    states[num.encode()] = first[0][1].state  # type: ignore[assignment]
    again = list(core.on_tick(today, [num.encode()], states.get))
    assert [len(o.outputs) for _, o in again] == [0]


def test_clock_setting(tmp_path: Path) -> None:
    assert make_clock("2027-01-05")().date() == date(2027, 1, 5)
    path = tmp_path / "clock"
    path.write_text("2028-02-29\n", encoding="utf-8")
    clock = make_clock(f"file:{path}")
    assert clock().date() == date(2028, 2, 29)
    path.write_text("2028-03-01", encoding="utf-8")
    assert clock().date() == date(2028, 3, 1)
    assert make_clock(None)().tzinfo is not None


def test_an_application_already_due_when_it_arrives_signals_at_once() -> None:
    core = _core()  # clock 2026-11-30
    states: dict[bytes, bytes] = {}
    out = _run(core, states, "fr.gp.Demande", demande("044250600000000206", created=date(2025, 6, 2)))
    assert [o.topic for o in out.outputs] == ["t.canonical.signal"]  # A_RADIER due 2026-07-02
    assert out.due is None or out.due > date(2026, 11, 30).toordinal()
    again = _run(core, states, "fr.gp.Demande", demande("044250600000000206", created=date(2025, 6, 2)))
    assert again.outputs == []  # once


def test_a_tick_sweeps_a_bounded_number_of_applications_and_asks_for_another(monkeypatch: Any) -> None:
    import asyncio  # noqa: PLC0415

    from gateway.flows import signals as flow  # noqa: PLC0415

    monkeypatch.setattr(flow, "MAX_PER_TICK", 2)
    core = _core(datetime(2026, 6, 1, tzinfo=UTC))
    table: dict[bytes, bytes] = {}
    nums = [f"04425060000000030{i}" for i in range(5)]
    for num in nums:  # all five not renewed: A_RADIER due 2026-07-02
        _run(core, table, "fr.gp.Demande", demande(num, created=date(2025, 6, 2)))
    agents = flow._Agents.__new__(flow._Agents)  # the agents' logic without a faust app
    agents.core, agents.app_table, agents.partitions = core, table, 1
    agents.indexes = DueIndexes(1)
    agents._pending_ticks = set()
    emitted: list[Any] = []
    asked: list[tuple[str, list[int] | None]] = []

    async def emit(outcome: Any, kind: str) -> None:
        emitted.extend(outcome.outputs)

    agents.emit = emit  # type: ignore[method-assign]
    agents._send_ticks = lambda day, parts=None: asked.append((day, parts))  # type: ignore[method-assign]

    async def ticks() -> None:
        for _ in range(3):
            await agents.on_tick(0, b"2026-07-02")
            await asyncio.sleep(0.05)

    asyncio.run(ticks())
    assert len(emitted) == 5 and len({o.key for o in emitted}) == 5  # each application once
    assert asked == [("2026-07-02", [0]), ("2026-07-02", [0])]  # two follow-up ticks for the rest
