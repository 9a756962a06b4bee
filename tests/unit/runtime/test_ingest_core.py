"""The ingest flow's pure core: one raw record in, canonical records and dead letters out."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from gateway.codec.avro import decode_single_object, load_schemas
from gateway.flows.dlq import DeadLetters
from gateway.flows.ingest import CE_NAMESPACE, IngestResult, ingest_record
from gateway.model.canonical import CanonicalRecord
from gateway.model.deadletter import ERR, problems_from_headers
from gateway.normalise import Rejection, normalise

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
SNE = SAMPLES / "sne-xml" / "demande-cre-famille-rennes.xml"


def _run(fmt: str, payload: bytes | None, offset: int = 7) -> IngestResult:
    return ingest_record(
        fmt,
        payload,
        source_topic=f"gp.raw.{fmt}",
        partition=2,
        offset=offset,
        key=b"src",
        timestamp_ms=1_790_000_000_000,
        schemas=load_schemas(),
        dead_letters=DeadLetters(),
    )


def test_a_good_input_becomes_a_framed_canonical_record_with_cloudevents_headers() -> None:
    result = _run("sne-xml", SNE.read_bytes())
    assert result.dead == []
    [out] = result.records
    assert out.topic == "gp.canonical.demande"
    headers = dict(out.headers)
    codec, record = decode_single_object(out.value, load_schemas().by_fingerprint())
    assert codec.name == "fr.gp.Demande"
    assert headers["gp.schema.name"] == b"fr.gp.Demande"
    assert headers["gp.schema.fingerprint"] == codec.fingerprint_hex.encode()
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_subject"] == out.key
    assert headers["ce_type"] == b"fr.gp.Demande.v1"
    assert headers["ce_source"] == b"urn:gp-gateway:ingest:sne-xml"
    assert headers["ce_time"].startswith(b"2026-09-21T")
    assert headers["ce_id"] == str(uuid.uuid5(CE_NAMESPACE, "gp.raw.sne-xml/2/7/0")).encode()
    if record.get("numUnique"):
        assert out.key == record["numUnique"].encode()


def test_reprocessing_the_same_input_gives_the_same_record_and_ce_id() -> None:
    a, b = _run("sne-xml", SNE.read_bytes()), _run("sne-xml", SNE.read_bytes())
    assert a.records == b.records
    c = _run("sne-xml", SNE.read_bytes(), offset=8)
    assert dict(c.records[0].headers)["ce_id"] != dict(a.records[0].headers)["ce_id"]


def test_a_malformed_input_is_dead_lettered_whole_with_connect_headers() -> None:
    result = _run("sne-xml", b"<not-closed")
    assert result.records == []
    [letter] = result.dead
    assert letter.topic == "gp.raw.sne-xml.dlq"
    assert letter.value == b"<not-closed"
    assert letter.key == b"src"
    headers = dict(letter.headers)
    assert headers[ERR + "topic"] == b"gp.raw.sne-xml"
    assert headers[ERR + "partition"] == b"2"
    assert headers[ERR + "offset"] == b"7"
    assert headers[ERR + "exception.class.name"] == b"gateway.errors.RejectedMessage"
    assert json.loads(headers["gp.errors.problems"])[0]["path"] == "$"


def test_an_empty_input_is_dead_lettered() -> None:
    for payload in (b"", None):
        result = _run("cdc-json", payload)
        assert result.records == []
        assert [d.value for d in result.dead] == [b""]


def test_a_rejected_part_is_dead_lettered_with_its_fragment_only() -> None:
    found = False
    for path in sorted((SAMPLES / "bad").glob("*")):
        fmt = {"cal": "cal-csv", "cdc": "cdc-json", "siao": "siao-json", "comed": "comed-json"}.get(
            path.name.split("-")[0]
        )
        if fmt is None:
            continue
        data = path.read_bytes()
        fragments = [o.fragment for o in normalise(fmt, data) if isinstance(o, Rejection) and o.fragment]
        if not fragments:
            continue
        result = _run(fmt, data)
        assert sorted(fragments) == sorted(d.value for d in result.dead if d.value != data)
        found = True
    assert found, "samples/bad should hold a multi-part input with a rejected part"


def test_no_payload_value_in_dead_letter_headers() -> None:
    secret = b"<demande><nom>DUPONT-SECRET</nom>"
    [letter] = _run("sne-xml", secret).dead
    assert all(b"DUPONT-SECRET" not in v for _, v in letter.headers)


def test_a_record_a_normaliser_got_wrong_is_dead_lettered_naming_the_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ingest path skips normalise()'s schema check: the checked encoder is the safety net."""
    from gateway.normalise import sne_xml  # noqa: PLC0415

    real = sne_xml.normalise_sne_xml

    def buggy(data: bytes, received_at: datetime) -> list[Any]:
        outcomes = real(data, received_at)
        record = copy.deepcopy(outcomes[0].record)
        record["demandeur"]["civilite"] = "PAS-UN-SYMBOLE"  # a normaliser bug, not bad input
        return [CanonicalRecord.of(outcomes[0].schema, record)]

    monkeypatch.setattr(sne_xml, "normalise_sne_xml", buggy)
    [checked] = normalise("sne-xml", SNE.read_bytes())
    assert isinstance(checked, Rejection)  # the library call still checks
    result = _run("sne-xml", SNE.read_bytes())
    assert result.records == []
    [letter] = result.dead
    assert letter.value == SNE.read_bytes()
    problems = problems_from_headers(letter.headers)
    assert [p.path for p in problems] == ["demandeur.civilite"]
    assert "PAS-UN-SYMBOLE" not in repr(letter.headers)
