"""Hostile or broken input never raises anything but the gateway's (or the SOAP layer's) own errors."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from connectors.sne.answers import SneFaultError, UnparseableAnswer, parse_answer
from connectors.sne.mtom import SoapFault, build_request, parse_request
from connectors.sne.rules import mandatory_anomalies, xsd_problems
from connectors.sne.simulator.logic import handle
from connectors.sne.simulator.state import Registry
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

SAMPLES = Path(__file__).resolve().parents[4] / "samples"
NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
CTYPE = build_request("numUnique", guichet="G3501", now=NOW, xml=b"<x/>").headers["Content-Type"]


@given(st.binary(max_size=2000))
@settings(max_examples=200, deadline=None)
def test_any_body_is_a_soap_fault_or_a_request(body: bytes) -> None:
    with contextlib.suppress(SoapFault):
        parse_request({"Content-Type": CTYPE}, body)


@given(st.binary(max_size=2000), st.sampled_from(["numUnique", "doublons", "nouveauxDaloDepuisLe"]))
@settings(max_examples=200, deadline=None)
def test_any_answer_is_parsed_or_refused_with_the_raw_bytes(body: bytes, service: str) -> None:
    try:
        parse_answer(service, "application/soap+xml", body)
    except UnparseableAnswer as exc:
        assert exc.raw_answer == body
    except SneFaultError:
        pass


@pytest.mark.parametrize("name", sorted(p.name for p in (SAMPLES / "bad").glob("sne-*.xml")))
def test_the_simulator_answers_bad_files_with_anomalies_or_a_fault(name: str, tmp_path: Path) -> None:
    registry = Registry(tmp_path / "sim.sqlite")
    xml = (SAMPLES / "bad" / name).read_bytes()
    req = build_request(
        "numUnique", guichet="G3501", now=NOW, xml=xml.decode("utf-8").encode("ascii", "xmlcharrefreplace")
    )
    try:
        ctype, body = handle(parse_request(req.headers, req.body), registry)
    except SoapFault:
        assert registry.count() == 0
        return
    answer = parse_answer("numUnique", ctype, body)
    assert answer.anomalies and registry.count() == 0


@pytest.mark.parametrize("name", sorted(p.name for p in (SAMPLES / "sne-xml").glob("*.xml")))
def test_the_normaliser_samples_pass_the_connector_rules(name: str) -> None:
    root = etree.fromstring((SAMPLES / "sne-xml" / name).read_bytes())
    assert mandatory_anomalies(root) == [] and xsd_problems(root) == []
