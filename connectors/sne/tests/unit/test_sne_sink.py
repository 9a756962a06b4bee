"""SneSink against the simulator (in a thread, mutual TLS): ledger idempotency, unknown outcomes,
unavailability, daily batches, unparseable answers."""

from __future__ import annotations

import asyncio
import ssl
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from connectors.sne.answers import RAW_ANSWER_HEADER, UnparseableAnswer
from connectors.sne.client import NotDelivered, OutcomeUnknown
from connectors.sne.connector import SneSink
from connectors.sne.testing import decision_radiation, demande, sink_config
from gateway.codec.avro import load_schemas
from gateway.connectors import SinkOutput, SinkRecord
from gateway.errors import RejectedMessage

FEEDBACK = load_schemas().codec("SneFeedback")


def _fb(out: SinkOutput) -> dict[str, Any]:
    assert out.value is not None and out.value[:2] == b"\xc3\x01"
    assert out.value[2:10] == FEEDBACK.fingerprint
    return FEEDBACK.decode(out.value[10:])


def _rec(record: dict[str, Any], offset: int = 1, schema: str = "fr.gp.Demande") -> SinkRecord:
    return SinkRecord(schema, "k", record, topic="gp.canonical.demande", partition=0, offset=offset)


NOON = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # far from the daily slot (21:00 UTC)


def _sink(simulator: Any, tmp_path: Path, **overrides: Any) -> SneSink:
    cfg = sink_config(simulator.certs, simulator.port, tmp_path, **overrides)
    return SneSink(cfg, state_dir=tmp_path, clock=lambda: NOON)


def _write(sink: SneSink, *records: SinkRecord) -> list[SinkOutput]:
    return list(asyncio.run(sink.write(list(records))))


def test_accepted_then_replayed_from_the_ledger(simulator: Any, tmp_path: Path) -> None:
    sink = _sink(simulator, tmp_path)
    [out] = _write(sink, _rec(demande()))
    fb = _fb(out)
    assert out.topic == "gp.feedback.200000001" and out.key == b"ERP-0001"
    assert fb["status"] == "ACCEPTED" and fb["numUnique"] == "035260100000000001"
    assert fb["typeFichier"] == "CRE" and fb["attempts"] == 1 and fb["sourceOffset"] == 1
    assert fb["nomFichierDemande"].startswith("DEMG3501-")
    [again] = _write(sink, _rec(demande()))  # redelivery of the same record
    assert _fb(again)["numUnique"] == fb["numUnique"]
    assert dict(again.headers)["gp.sne.replayed"] == b"true"
    assert simulator.server.registry.calls() == {"numUnique": 1}


def test_a_registered_reference_sent_again_becomes_a_modification(simulator: Any, tmp_path: Path) -> None:
    sink = _sink(simulator, tmp_path)
    [first] = _write(sink, _rec(demande()))
    changed = demande()
    changed["logementRecherche"]["typesLogement"] = ["T4"]
    [second] = _write(sink, _rec(changed, offset=2))
    fb = _fb(second)
    assert fb["typeFichier"] == "MOD" and fb["status"] == "ACCEPTED"
    assert fb["numUnique"] == _fb(first)["numUnique"]
    assert simulator.server.registry.count() == 1


def test_unavailable_sne_is_retriable_and_nothing_is_registered(simulator: Any, tmp_path: Path) -> None:
    sink = _sink(simulator, tmp_path)
    simulator.faults.fail_next = 1
    with pytest.raises(NotDelivered):
        _write(sink, _rec(demande()))
    assert sink.ledger.counts() == {"QUEUED": 1}
    assert simulator.server.registry.count() == 0
    [out] = _write(sink, _rec(demande()))
    assert _fb(out)["status"] == "ACCEPTED" and _fb(out)["attempts"] == 2


def test_unknown_outcome_is_resolved_with_doublons_not_a_second_registration(
    simulator: Any, tmp_path: Path
) -> None:
    sink = _sink(simulator, tmp_path)
    simulator.faults.drop_next = 1  # processed by the SNE, answer lost
    with pytest.raises(OutcomeUnknown):
        _write(sink, _rec(demande()))
    assert sink.ledger.counts() == {"SENDING": 1}
    assert simulator.server.registry.count() == 1
    [out] = _write(sink, _rec(demande()))
    fb = _fb(out)
    assert fb["status"] == "ACCEPTED" and fb["retrouveParDoublons"] is True
    assert fb["numUnique"] == "035260100000000001"
    assert simulator.server.registry.count() == 1
    assert simulator.server.registry.calls() == {"numUnique": 1, "doublons": 1}


def test_anomalies_become_rejected_feedback(simulator: Any, tmp_path: Path) -> None:
    sink = _sink(simulator, tmp_path)
    [out] = _write(sink, _rec(demande(num_unique="035260100000009999")))
    fb = _fb(out)
    assert fb["status"] == "REJECTED"
    assert [a["code"] for a in fb["anomalies"]] == ["CTRL_DEM_0020"]


def test_daily_mode_accumulates_then_sends_on_trigger(simulator: Any, tmp_path: Path) -> None:
    sink = _sink(simulator, tmp_path, mode="daily")
    assert _write(sink, _rec(demande("A", nom="Un")), _rec(demande("B", nom="Deux"), offset=2)) == []
    assert simulator.server.registry.count() == 0
    assert sink.ledger.counts() == {"QUEUED": 2}
    sink.trigger()
    outs = list(asyncio.run(sink.tick()))
    assert sorted(o.key or b"" for o in outs) == [b"A", b"B"]
    assert {_fb(o)["status"] for o in outs} == {"ACCEPTED"}
    assert list(asyncio.run(sink.tick())) == []  # nothing left, not due again


def test_daily_batch_triggered_by_file(simulator: Any, tmp_path: Path) -> None:
    sink = _sink(simulator, tmp_path, mode="daily")
    assert _write(sink, _rec(demande())) == []
    assert list(asyncio.run(sink.tick())) == []
    sink.trigger_file.touch()  # what `gateway sne flush` does
    [out] = asyncio.run(sink.tick())
    assert _fb(out)["status"] == "ACCEPTED" and not sink.trigger_file.exists()


def test_an_unparseable_answer_carries_the_raw_bytes(
    simulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = _sink(simulator, tmp_path)
    monkeypatch.setattr(sink.client, "post", lambda req: (200, "text/html", b"<html>maintenance</html>"))
    with pytest.raises(UnparseableAnswer) as info:
        _write(sink, _rec(demande()))
    assert dict(info.value.extra_headers)[RAW_ANSWER_HEADER] == b"<html>maintenance</html>"
    assert sink.ledger.counts() == {"SENDING": 1}  # a creation: checked with doublons on replay


def test_a_client_without_certificate_cannot_connect(simulator: Any, tmp_path: Path) -> None:
    ctx = ssl.create_default_context(cafile=str(simulator.certs / "ca.pem"))
    url = f"https://127.0.0.1:{simulator.port}/control"
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(url, context=ctx, timeout=10)


def test_a_decision_radiation_is_sent_with_the_application(simulator: Any, tmp_path: Path) -> None:
    sink = _sink(simulator, tmp_path)
    [created] = _write(sink, _rec(demande()))
    num = _fb(created)["numUnique"]
    [out] = _write(sink, _rec(decision_radiation(num), schema="fr.gp.Decision"))
    fb = _fb(out)
    assert (fb["status"], fb["typeFichier"], fb["eventId"]) == ("ACCEPTED", "RAD", "evt-rad-1")
    assert simulator.server.registry.get(num).statut == "RADIEE"
    assert simulator.server.registry.calls() == {"numUnique": 2, "demandeLogement": 1}


def test_a_radiation_of_an_unknown_application_is_refused_before_sending(
    simulator: Any, tmp_path: Path
) -> None:
    sink = _sink(simulator, tmp_path)
    with pytest.raises(RejectedMessage) as info:
        _write(sink, _rec(decision_radiation("035260100000009999"), schema="fr.gp.Decision"))
    assert [(p.path.rsplit("/", 1)[-1], p.value) for p in info.value.problems] == [
        ("numUnique", "CTRL_DEM_0020")
    ]
    assert simulator.server.registry.calls() == {"demandeLogement": 1}


def test_one_renewal_reaches_the_sne_once_from_its_demande(simulator: Any, tmp_path: Path) -> None:
    sink = _sink(simulator, tmp_path)
    [created] = _write(sink, _rec(demande()))
    num = _fb(created)["numUnique"]
    renewed = demande(num_unique=num, dateDernierRenouvellement=NOON.date())
    renewal = decision_radiation(num, event_id="evt-ren-1") | {
        "typeEvenement": "RENOUVELLEMENT",
        "radiation": None,
    }
    # the same renewal, from its Demande and from its Decision, in either order
    assert _write(sink, _rec(renewal, offset=2, schema="fr.gp.Decision")) == []
    [out] = _write(sink, _rec(renewed, offset=3))
    assert (_fb(out)["status"], _fb(out)["typeFichier"]) == ("ACCEPTED", "REN")
    assert _write(sink, _rec(renewal, offset=4, schema="fr.gp.Decision")) == []
    [again] = _write(sink, _rec(renewed, offset=3))  # redelivery: replayed from the ledger
    assert dict(again.headers)["gp.sne.replayed"] == b"true"
    assert simulator.server.registry.calls() == {"numUnique": 2}  # CRE + one REN, nothing fetched
