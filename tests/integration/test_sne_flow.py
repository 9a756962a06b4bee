"""The SNE connector end to end: real Kafka broker (kafka_bootstrap), simulator as a child process
over mutual TLS, the egress runner on the canonical topics, the poller."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from connectors.sne.connector import SneSink
from connectors.sne.poller import SnePoller
from connectors.sne.simulator.certs import ensure_certs
from connectors.sne.testing import SimulatorProcess, decision_cal, decision_radiation, demande, sink_config
from gateway.codec.avro import decode_single_object, encode_single_object, load_schemas
from gateway.connectors import SinkOutput
from gateway.flows.egress import EgressRunner, RetryPolicy
from gateway.testing.background import Background
from gateway.testing.kafka import Message, apply_acls, consume_all, create_topics, produce, wait_for_count
from gateway.topics import canonical_topic, dlq_topic, feedback_topic

SCHEMAS = load_schemas()
CODECS = SCHEMAS.by_fingerprint()


def _decode(m: Message) -> dict[str, Any]:
    assert m.value is not None
    return decode_single_object(m.value, CODECS)[1]


@pytest.fixture
def env(kafka_bootstrap: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    certs = tmp_path / "certs"
    ensure_certs(certs)
    sim = SimulatorProcess(certs, tmp_path / "sim-state").start()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    topics = {
        "demande": canonical_topic("demande", prefix),
        "decision": canonical_topic("decision", prefix),
        "feedback": feedback_topic("200000001", prefix),
    }
    create_topics(
        kafka_bootstrap, [*topics.values(), dlq_topic(topics["demande"]), dlq_topic(topics["decision"])]
    )
    try:
        yield {
            "bootstrap": kafka_bootstrap,
            "sim": sim,
            "certs": certs,
            "prefix": prefix,
            "topics": topics,
            "tmp": tmp_path,
        }
    finally:
        sim.stop()


def _sink(env: dict[str, Any], **overrides: Any) -> SneSink:
    cfg = sink_config(env["certs"], env["sim"].port, env["tmp"], topic_prefix=env["prefix"], **overrides)
    return SneSink(cfg, state_dir=env["tmp"])


def _runner(env: dict[str, Any], sink: SneSink, retry: RetryPolicy | None = None) -> EgressRunner:
    return EgressRunner(
        sink,
        bootstrap=env["bootstrap"],
        topics=[env["topics"]["demande"], env["topics"]["decision"]],
        group_id=f"{env['prefix']}.sne",
        retry=retry or RetryPolicy(attempts=5, base_delay=0.05, max_delay=0.5),
        max_records=2,
        poll_timeout_ms=200,
    )


def _framed(schema: str, record: dict[str, Any]) -> bytes:
    return encode_single_object(SCHEMAS.codec(schema), record)


def test_demands_get_their_numero_or_their_anomalies(env: dict[str, Any]) -> None:
    refused = demande("ERP-2", nom="Sans", communes=())  # the SNE would refuse it: never sent
    produce(
        env["bootstrap"],
        env["topics"]["demande"],
        [
            (b"k1", _framed("fr.gp.Demande", demande("ERP-1"))),
            (b"k2", _framed("fr.gp.Demande", refused)),
            (
                b"k3",
                _framed("fr.gp.Demande", demande("ERP-3", nom="Inconnu", num_unique="035260100000009999")),
            ),
        ],
    )
    with Background(_runner(env, _sink(env)).run):
        feedback = wait_for_count(env["bootstrap"], env["topics"]["feedback"], 3)
    by_key = {m.key: _decode(m) for m in feedback}
    assert len(feedback) == 3 and set(by_key) == {b"ERP-1", b"ERP-2", b"ERP-3"}
    ok = by_key[b"ERP-1"]
    assert (ok["status"], ok["numUnique"], ok["typeFichier"]) == ("ACCEPTED", "035260100000000001", "CRE")
    assert by_key[b"ERP-2"]["status"] == "REJECTED"
    assert [(a["code"], a["champ"].rsplit("/", 1)[-1]) for a in by_key[b"ERP-2"]["anomalies"]] == [
        ("CTRL_DEM_0008", "commune"),
    ]
    assert [a["code"] for a in by_key[b"ERP-3"]["anomalies"]] == ["CTRL_DEM_0020"]
    dead = consume_all(env["bootstrap"], dlq_topic(env["topics"]["demande"]), expect=1)
    assert len(dead) == 1 and dead[0].key == b"k2"
    assert b"localisationSouhaite" in (dead[0].header("gp.errors.problems") or b"")
    assert env["sim"].control()["calls"] == {"numUnique": 2}  # the refused one never reached the SNE


def test_radiation_with_attribution_is_accepted(env: dict[str, Any]) -> None:
    produce(env["bootstrap"], env["topics"]["demande"], [(b"k", _framed("fr.gp.Demande", demande("ERP-10")))])
    with Background(_runner(env, _sink(env)).run):
        [created] = wait_for_count(env["bootstrap"], env["topics"]["feedback"], 1)
        num = _decode(created)["numUnique"]
        rad = decision_radiation(num, reference="ERP-10", event_id=f"rad-{uuid.uuid4().hex}")
        produce(env["bootstrap"], env["topics"]["decision"], [(num.encode(), _framed("fr.gp.Decision", rad))])
        feedback = wait_for_count(env["bootstrap"], env["topics"]["feedback"], 2)
    radiated = _decode(feedback[-1])
    assert radiated["typeFichier"] == "RAD" and radiated["status"] == "ACCEPTED"
    assert radiated["numUnique"] == num and radiated["eventId"] == rad["eventId"]
    calls = env["sim"].control()["calls"]
    assert calls == {"numUnique": 2, "demandeLogement": 1}  # the application fetched to complete the RAD file
    assert consume_all(env["bootstrap"], dlq_topic(env["topics"]["decision"]), quiet_ms=500) == []


def test_a_cal_attribution_decision_reaches_the_sne_and_its_answer_the_feedback(env: dict[str, Any]) -> None:
    """Issue 17: a CAL decision (R441-3) is reported to the SNE (a MOD carrying decisionCal, UNCERTAIN
    reading of the interface, see connectors/sne/CONFORMANCE.md) with the same ledger and feedback."""
    produce(env["bootstrap"], env["topics"]["demande"], [(b"k", _framed("fr.gp.Demande", demande("ERP-20")))])
    with Background(_runner(env, _sink(env)).run):
        [created] = wait_for_count(env["bootstrap"], env["topics"]["feedback"], 1)
        num = _decode(created)["numUnique"]
        cal = decision_cal(num, reference="ERP-20", event_id=f"cal-{uuid.uuid4().hex}")
        produce(env["bootstrap"], env["topics"]["decision"], [(num.encode(), _framed("fr.gp.Decision", cal))])
        feedback = wait_for_count(env["bootstrap"], env["topics"]["feedback"], 2)
    answer = _decode(feedback[-1])
    assert (answer["typeFichier"], answer["status"], answer["numUnique"]) == ("MOD", "ACCEPTED", num)
    assert answer["eventId"] == cal["eventId"] and feedback[-1].key == b"ERP-20"
    assert env["sim"].control()["calls"] == {"numUnique": 2, "demandeLogement": 1}
    assert consume_all(env["bootstrap"], dlq_topic(env["topics"]["decision"]), quiet_ms=500) == []


def test_simulator_killed_and_restarted_mid_stream(env: dict[str, Any]) -> None:
    sim: SimulatorProcess = env["sim"]
    count = 8
    produce(
        env["bootstrap"],
        env["topics"]["demande"],
        [
            (f"k{i}".encode(), _framed("fr.gp.Demande", demande(f"ERP-{i}", nom=f"Famille{i}")))
            for i in range(count)
        ],
    )
    sim.control(drop_next=1)  # the first creation is registered but its answer is lost
    retry = RetryPolicy(attempts=60, base_delay=0.1, max_delay=0.5)
    with Background(_runner(env, _sink(env), retry).run):
        wait_for_count(env["bootstrap"], env["topics"]["feedback"], 1)
        sim.kill()  # crash mid-stream: requests now fail to connect and are retried
        sim.start()  # same port, same state directory
        feedback = wait_for_count(env["bootstrap"], env["topics"]["feedback"], count)
    records = [_decode(m) for m in feedback]
    latest = {r["referenceSource"]: r for r in records}
    assert set(latest) == {f"ERP-{i}" for i in range(count)}  # no record lost
    assert {r["status"] for r in latest.values()} == {"ACCEPTED"}
    numbers = [r["numUnique"] for r in latest.values()]
    assert len(set(numbers)) == count  # none registered twice
    assert sim.control()["demandes"] == count
    assert any(r["retrouveParDoublons"] for r in records)  # the lost answer was recovered, not re-sent
    assert consume_all(env["bootstrap"], dlq_topic(env["topics"]["demande"]), quiet_ms=500) == []


def test_polling_brings_new_dalo_decisions_and_radiations(env: dict[str, Any]) -> None:
    sink = _sink(env)  # this gateway's connector
    other = _sink(env, ledger_path=env["tmp"] / "other-guichet.sqlite", guichet="G4401")  # someone else
    [created] = asyncio.run(sink.write([_rec(demande("ERP-20"))]))
    num = _decode_output(created)["numUnique"]
    [created2] = asyncio.run(sink.write([_rec(demande("ERP-21", nom="Autre"))]))
    own = _decode_output(created2)["numUnique"]
    theirs = decision_radiation(num, motif="RADABA", attribution=False, event_id="evt-theirs")
    asyncio.run(other.write([_rec(theirs, "fr.gp.Decision")]))
    ours = decision_radiation(own, motif="RADABA", attribution=False, event_id="evt-ours")
    asyncio.run(sink.write([_rec(ours, "fr.gp.Decision")]))
    env["sim"].control(
        add_dalo={
            "numUnique": "035260100000000777",
            "statut": "ACTIF",
            "dateDecision": "2026-11-20",
            "typologie": "03",
            "commission": "35",
        }
    )
    poller = SnePoller(sink.config, sink.client, sink.ledger)

    async def publish(outputs: Any) -> None:
        produce(env["bootstrap"], env["topics"]["decision"], [(o.key, o.value, o.headers) for o in outputs])

    assert asyncio.run(poller.poll_once(publish)) == 2
    assert asyncio.run(poller.poll_once(publish)) == 0  # watermarks moved
    decisions = [_decode(m) for m in consume_all(env["bootstrap"], env["topics"]["decision"], expect=2)]
    kinds = {d["typeEvenement"]: d for d in decisions}
    assert set(kinds) == {"DECISION_DALO", "RADIATION"}
    dalo = kinds["DECISION_DALO"]
    assert dalo["numUnique"] == "035260100000000777" and dalo["decisionDalo"]["statut"] == "ACTIF"
    assert dalo["decisionDalo"]["sens"] == "FAVORABLE" and dalo["provenance"]["systemeSource"] == "sne"
    assert (
        kinds["RADIATION"]["radiation"]["motif"] == "RADABA" and kinds["RADIATION"]["numUnique"] == num
    )  # not `own`: this gateway's own radiation is not echoed back


def _rec(record: dict[str, Any], schema: str = "fr.gp.Demande") -> Any:
    from gateway.connectors import SinkRecord  # noqa: PLC0415

    return SinkRecord(schema, "k", record, topic="direct", partition=0, offset=0)


def _decode_output(out: SinkOutput) -> dict[str, Any]:
    assert out.value is not None
    return decode_single_object(out.value, CODECS)[1]


def test_gateway_sne_run_end_to_end(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The `gateway sne run` code path: topics ensured, sink + poller, settings from the environment."""
    from gateway.cli.sne import run_sne, sne_config  # noqa: PLC0415
    from gateway.settings import GatewaySettings  # noqa: PLC0415

    monkeypatch.setenv("GATEWAY_BOOTSTRAP_SERVERS", env["bootstrap"])
    monkeypatch.setenv("GATEWAY_TOPIC_PREFIX", env["prefix"])
    monkeypatch.setenv("GATEWAY_STATE_DIR", str(env["tmp"] / "state"))
    monkeypatch.setenv("GATEWAY_APP_ID", f"app-{env['prefix']}")
    # `gateway sne run` connects as the gateway worker <app id>.sne: its ACLs come from `acl apply`
    apply_acls(dict(os.environ))
    settings = GatewaySettings()
    cfg = sne_config(
        {
            "certs": str(env["certs"]),
            "guichet": "G3501",
            "url": f"https://127.0.0.1:{env['sim'].port}/services/DemandeLogementImplService/",
            "topic_prefix": settings.topic_prefix,
            "poll_interval": 0.5,
        }
    )
    env["sim"].control(add_dalo={"numUnique": "044260100000000042", "statut": "ACTIF", "commission": "44"})
    produce(env["bootstrap"], env["topics"]["demande"], [(b"k", _framed("fr.gp.Demande", demande("ERP-30")))])
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(
        target=lambda: loop.run_until_complete(run_sne(cfg, settings, stop=stop)), daemon=True
    )
    thread.start()
    try:
        [fb] = wait_for_count(env["bootstrap"], env["topics"]["feedback"], 1)
        [dalo] = wait_for_count(env["bootstrap"], env["topics"]["decision"], 1)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=60)
        loop.close()
    assert _decode(fb)["status"] == "ACCEPTED"
    assert dalo.key == b"044260100000000042" and _decode(dalo)["typeEvenement"] == "DECISION_DALO"


def test_the_erasure_tombstone_deletes_the_ledger_rows_and_writes_the_receipt(env: dict[str, Any]) -> None:
    """Retention (docs/retention.md): the demand topic's erasure tombstone reaches the connector
    through the egress runner; its ledger rows go, the database and its WAL keep no value of the
    application, the receipt `sne` is written; other tombstones change nothing, dead-letter nothing."""
    from gateway.retention import protocol  # noqa: PLC0415
    from gateway.topics import retention_topic  # noqa: PLC0415

    receipts = retention_topic("receipts", env["prefix"])
    create_topics(env["bootstrap"], [receipts])
    demandes, decisions = env["topics"]["demande"], env["topics"]["decision"]
    reference = "ERP-MARQUEUR-4K"
    produce(env["bootstrap"], demandes, [(b"k", _framed("fr.gp.Demande", demande(reference)))])
    sink = _sink(env)
    erasure = [(protocol.ERASURE_HEADER, b"run-9")]
    with Background(_runner(env, sink).run):
        [created] = wait_for_count(env["bootstrap"], env["topics"]["feedback"], 1)
        num = _decode(created)["numUnique"]
        produce(env["bootstrap"], demandes, [(num.encode(), None)])  # no header: not an erasure
        produce(env["bootstrap"], decisions, [(num.encode(), None, erasure)])  # compaction only
        # a second application after them: once it is answered, the tombstones were read
        produce(
            env["bootstrap"],
            demandes,
            [(b"k2", _framed("fr.gp.Demande", demande("ERP-AUTRE-4K", nom="Autre")))],
        )
        wait_for_count(env["bootstrap"], env["topics"]["feedback"], 2)
        assert sink.ledger.created("200000001", reference) == num  # still there
        produce(env["bootstrap"], demandes, [(num.encode(), None, erasure)])
        [receipt] = wait_for_count(env["bootstrap"], receipts, 1)
    assert (receipt.key, receipt.value, receipt.headers) == (num.encode(), b"sne", tuple(erasure))
    ledger = sink.ledger.path
    assert sink.ledger.created("200000001", reference) is None
    assert sink.ledger.created("200000001", "ERP-AUTRE-4K") is not None  # the other one stays
    sink.close()
    files = [f for f in (ledger, ledger.with_name(ledger.name + "-wal")) if f.exists()]
    assert ledger in files
    for marker in (num.encode(), reference.encode()):
        assert not [f.name for f in files if marker in f.read_bytes()], marker
    for topic in (demandes, decisions):
        assert consume_all(env["bootstrap"], dlq_topic(topic), quiet_ms=500) == []
