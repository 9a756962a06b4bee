"""No record the normalisers accepted can stop the connector: a text XML cannot carry is refused on
its own (dead letter + feedback naming the field), and the records after it go through."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from connectors.sne.connector import SneSink
from connectors.sne.rules import xml_unsafe_fields
from connectors.sne.testing import demande, sink_config
from gateway.codec.avro import encode_single_object, load_schemas
from gateway.connectors import SinkRecord
from gateway.errors import RejectedMessage
from gateway.flows.egress import RetryPolicy, process_envelopes
from gateway.model.envelope import Envelope

DEMANDE = load_schemas().codec("Demande")
FEEDBACK = load_schemas().codec("SneFeedback")
FAST = RetryPolicy(attempts=2, base_delay=0.0, max_delay=0.0)


def _env(record: dict[str, Any], offset: int) -> Envelope:
    value = encode_single_object(DEMANDE, record)
    return Envelope(value, key=b"k", topic="gp.canonical.demande", partition=0, offset=offset)


@pytest.mark.parametrize("char", ["\x01", "\x00", "\x1f", "\ufffe", "\x0b"])
def test_unsafe_texts_are_named_by_field_never_quoted(char: str) -> None:
    record = demande(nom=f"Dupont{char}Secret")
    [problem] = xml_unsafe_fields(record)
    assert problem.path == "demandeur.nom"
    assert "Secret" not in f"{problem.path} {problem.reason} {problem.value}"


def test_tabs_and_newlines_are_carried() -> None:
    assert xml_unsafe_fields(demande(nom="Du\tpont\nDupond\r")) == []


def test_a_control_character_is_refused_alone_and_the_flow_goes_on(simulator: Any, tmp_path: Path) -> None:
    cfg = sink_config(simulator.certs, simulator.port, tmp_path)
    sink = SneSink(cfg, state_dir=tmp_path)
    bad = demande("ERP-BAD", nom="Dupont\x01Secret", prenom="Zoé")
    good = demande("ERP-GOOD")
    with pytest.raises(RejectedMessage) as info:
        sink.prepare(SinkRecord("fr.gp.Demande", "k", bad, topic="t", partition=0, offset=1))
    assert [p.path for p in info.value.problems] == ["demandeur.nom"]
    for _ in range(2):  # and again after a restart (a redelivery of the same batch)
        result = asyncio.run(process_envelopes(sink, [_env(bad, 1), _env(good, 2)], retry=FAST))
        assert len(result.dead) == 1
        dead = result.dead[0]
        assert dead.topic == "gp.canonical.demande.dlq" and dead.value == _env(bad, 1).payload
        headers = b" ".join(v for _, v in dead.headers)
        assert b"demandeur.nom" in headers and b"Secret" not in headers
        statuses = {}
        for out in result.outputs:
            fb = FEEDBACK.decode((out.value or b"")[10:])
            statuses[out.key] = (fb["status"], [a["champ"] for a in fb["anomalies"]])
        assert statuses[b"ERP-BAD"][1] == ["demandeur.nom"]
        assert statuses[b"ERP-GOOD"][0] == "ACCEPTED"
    assert simulator.server.registry.calls() == {"numUnique": 1}
