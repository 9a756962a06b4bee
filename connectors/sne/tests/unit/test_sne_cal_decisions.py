"""CAL attribution decisions reported to the SNE (issue 17 item 5; UNCERTAIN reading documented in
CONFORMANCE.md): a Decision DECISION_CAL becomes a MOD of the application carrying `decisionCal`,
through the same ledger, retries and feedback as the other files."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from connectors.sne.connector import SneSink
from connectors.sne.nuu import build_for_record, q, to_bytes, with_application
from connectors.sne.rules import mandatory_anomalies, xsd_problems
from connectors.sne.testing import decision_cal, demande, sink_config
from gateway.codec.avro import load_schemas
from gateway.connectors import SinkOutput, SinkRecord
from gateway.errors import RejectedMessage
from gateway.model.canonical import CanonicalRecord
from gateway.normalise import normalise

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
FEEDBACK = load_schemas().codec("SneFeedback")
DECISIONS = ["ATTRIBUTION", "ATTRIBUTION_RANG", "ATTRIBUTION_CONDITION_SUSPENSIVE", "NON_ATTRIBUTION"]


def _fb(out: SinkOutput) -> dict[str, Any]:
    return FEEDBACK.decode((out.value or b"")[10:])


@pytest.mark.parametrize("kind", DECISIONS)
def test_a_cal_decision_is_a_valid_modification_that_reads_back_the_same(kind: str) -> None:
    record = decision_cal("035260100000000001", decision=kind)
    built = build_for_record("fr.gp.Decision", record, guichet="G3501", now=NOW)
    assert built is not None
    tf, root = built
    assert tf == "MOD"
    assert mandatory_anomalies(root) == []  # a decision report: its own fields only
    app = build_for_record(
        "fr.gp.Demande", demande(num_unique="035260100000000001"), guichet="G3501", now=NOW
    )
    assert app is not None
    full = with_application(root, app[1])
    assert xsd_problems(full) == [] and mandatory_anomalies(full) == []
    assert full.find(f".//{q('decisionCal')}/{q('decision')}").get("code") == kind  # type: ignore[union-attr]
    outs = normalise("sne-xml", to_bytes(full))
    decisions = [o for o in outs if isinstance(o, CanonicalRecord) and o.schema == "fr.gp.Decision"]
    assert [d.record["typeEvenement"] for d in decisions] == ["DECISION_CAL"]
    assert decisions[0].record["decisionCal"] == record["decisionCal"]


def test_a_cal_decision_without_its_block_is_not_sent() -> None:
    record = decision_cal("035260100000000001")
    record["decisionCal"] = None
    assert build_for_record("fr.gp.Decision", record, guichet="G3501", now=NOW) is None


def _sink(simulator: Any, tmp_path: Path) -> SneSink:
    return SneSink(
        sink_config(simulator.certs, simulator.port, tmp_path), state_dir=tmp_path, clock=lambda: NOW
    )


def _write(sink: SneSink, record: dict[str, Any], offset: int = 1) -> list[SinkOutput]:
    rec = SinkRecord("fr.gp.Decision", "k", record, topic="gp.canonical.decision", partition=0, offset=offset)
    return list(asyncio.run(sink.write([rec])))


def test_a_cal_decision_reaches_the_simulator_once(simulator: Any, tmp_path: Path) -> None:
    sink = _sink(simulator, tmp_path)
    [created] = asyncio.run(
        sink.write([SinkRecord("fr.gp.Demande", "k", demande(), topic="gp.canonical.demande", offset=1)])
    )
    num = _fb(created)["numUnique"]
    [out] = _write(sink, decision_cal(num))
    fb = _fb(out)
    assert out.topic == "gp.feedback.200000001" and out.key == b"ERP-CAL-0001"
    assert (fb["status"], fb["typeFichier"], fb["numUnique"]) == ("ACCEPTED", "MOD", num)
    stored = simulator.server.registry.xml(num)
    assert b"decisionCal" in stored and b"ATTRIBUTION_RANG" in stored
    [again] = _write(sink, decision_cal(num))  # redelivered: answered from the ledger
    assert dict(again.headers)["gp.sne.replayed"] == b"true"
    assert simulator.server.registry.calls() == {"numUnique": 2, "demandeLogement": 1}


def test_a_cal_decision_on_an_unknown_application_is_refused_before_sending(
    simulator: Any, tmp_path: Path
) -> None:
    with pytest.raises(RejectedMessage) as info:
        _write(_sink(simulator, tmp_path), decision_cal("035260100000000099"))
    assert [p.value for p in info.value.problems] == ["CTRL_DEM_0020"]
    assert simulator.server.registry.calls() == {"demandeLogement": 1}


def test_polled_radiations_carry_their_attribution_data(simulator: Any, tmp_path: Path) -> None:
    """A radiation recorded at the SNE by another system comes back with its attribution data."""
    from connectors.sne.client import SneClient  # noqa: PLC0415
    from connectors.sne.ledger import Ledger  # noqa: PLC0415
    from connectors.sne.poller import SnePoller  # noqa: PLC0415
    from connectors.sne.testing import decision_radiation  # noqa: PLC0415
    from gateway.codec.avro import decode_single_object  # noqa: PLC0415

    other = _sink(simulator, tmp_path / "other")  # another gateway radiates
    [created] = asyncio.run(
        other.write([SinkRecord("fr.gp.Demande", "k", demande(), topic="gp.canonical.demande", offset=1)])
    )
    num = _fb(created)["numUnique"]
    sent = decision_radiation(num)
    [rad] = _write(other, sent)
    assert _fb(rad)["status"] == "ACCEPTED"
    cfg = sink_config(simulator.certs, simulator.port, tmp_path)
    ledger = Ledger(tmp_path / "poll.sqlite")
    try:
        poller = SnePoller(cfg, SneClient(cfg), ledger, clock=lambda: NOW)
        poller.ledger.set_watermark("demandesRadieesDepuisLe", "2020-01-01T00:00:00+00:00")
        outputs, _ = poller.poll_service("demandesRadieesDepuisLe")
    finally:
        ledger.close()
    [out] = outputs
    assert out.topic == "gp.canonical.decision"
    decision = decode_single_object(out.value or b"", load_schemas().by_fingerprint())[1]
    assert decision["radiation"]["attribution"] == sent["radiation"]["attribution"]
