"""Ingest bound to the source: a record entered for an organisation its source does not speak for is
dead-lettered with the reason (never the value); the others carry the source in `gp.source`. And the
one registry of input formats: every format has a normaliser, every raw topic a format."""

from __future__ import annotations

import importlib
from pathlib import Path

from gateway.codec.avro import load_schemas
from gateway.flows.admin import ingest_topics
from gateway.flows.dlq import DeadLetters
from gateway.flows.ingest import H_SOURCE, NOT_SPOKEN_FOR, IngestResult, ingest_record, raw_topics
from gateway.formats import FORMATS, INPUT_FORMATS, unique_extensions
from gateway.model.deadletter import problems_from_headers
from gateway.normalise import _NORMALISERS
from gateway.policy.model import load_policy
from gateway.settings import GatewaySettings
from gateway.topics import source_raw_topic

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
SIAO = SAMPLES / "siao-json" / "siao35-orientation.json"  # entered by SIAO 35 (300000035)
POLICY = load_policy()


def _run(source: str, payload: bytes, fmt: str = "siao-json") -> IngestResult:
    return ingest_record(
        fmt,
        payload,
        source_topic=source_raw_topic(fmt, source),
        partition=0,
        offset=3,
        key=b"k",
        timestamp_ms=1_790_000_000_000,
        schemas=load_schemas(),
        dead_letters=DeadLetters(),
        source=source,
        may_enter=POLICY.may_enter(source),
    )


def test_an_input_entered_for_an_organisation_its_source_speaks_for_flows_with_its_source() -> None:
    result = _run("siao-35", SIAO.read_bytes())
    assert result.dead == [] and len(result.records) == 1
    assert dict(result.records[0].headers)[H_SOURCE] == b"siao-35"


def test_an_input_claiming_another_organisation_as_saisie_is_dead_lettered_with_the_reason() -> None:
    result = _run("nantes-logement-erp", SIAO.read_bytes())  # a landlord's ERP entering the SIAO's event
    assert result.records == []
    [letter] = result.dead
    assert letter.topic == "gp.raw.siao-json.nantes-logement-erp.dlq"
    assert letter.value == SIAO.read_bytes()  # the original bytes, nothing lost
    problems = problems_from_headers(letter.headers)
    assert [(p.path, p.reason) for p in problems] == [("provenance.saisie", NOT_SPOKEN_FOR)]
    assert all(b"300000035" not in v for _, v in letter.headers)  # the claimed code is not quoted


def test_a_guichet_of_an_organisation_the_source_speaks_for_may_enter() -> None:
    xml = SAMPLES / "sne-xml" / "demande-cre-famille-rennes.xml"  # saisie G3501, Rennes Habitat's guichet
    assert _run("rennes-habitat-erp", xml.read_bytes(), "sne-xml").dead == []
    assert len(_run("nantes-logement-erp", xml.read_bytes(), "sne-xml").dead) == 1


def test_every_format_has_a_normaliser_and_every_normaliser_a_format() -> None:
    assert set(_NORMALISERS) == set(FORMATS)
    for fmt in INPUT_FORMATS:
        module, attr = fmt.normaliser.split(":")
        assert callable(getattr(importlib.import_module(module), attr)), fmt.name
        assert fmt.extensions and fmt.content_type and (SAMPLES / fmt.name).is_dir()
    assert unique_extensions() == {".xml": "sne-xml", ".csv": "cal-csv"}


def test_every_raw_topic_has_a_format_with_a_normaliser() -> None:
    settings = GatewaySettings(topic_prefix="gp")
    topics = raw_topics(POLICY, "gp")
    assert topics and all(t.fmt in _NORMALISERS for t in topics.values())
    raw = {s.name for s in ingest_topics(settings) if ".raw." in s.name and not s.name.endswith(".dlq")}
    assert raw == set(topics)
    assert {t.fmt for t in topics.values()} == set(FORMATS)  # the demo's sources send every format


class _Consumer:
    def __init__(self) -> None:
        self.subscribed: list[list[str]] = []

    def subscribe(self, topics: list[str]) -> None:
        self.subscribed.append(sorted(topics))


def test_the_loop_takes_the_sources_declared_now_between_batches() -> None:
    from gateway.flows.ingest import RawTopic  # noqa: PLC0415
    from gateway.flows.ingest_runner import IngestRunner  # noqa: PLC0415
    from gateway.monitoring.metrics import Metrics  # noqa: PLC0415

    old = raw_topics(POLICY, "gp")
    new_topic = source_raw_topic("cdc-json", "new-erp")
    added = {
        **old,
        new_topic: RawTopic(new_topic, "cdc-json", "new-erp", frozenset({"new-erp", "200000001"})),
    }
    answers: list[dict[str, RawTopic] | None] = [None, dict(old), added]
    runner = IngestRunner(
        bootstrap="127.0.0.1:1",
        formats={t.topic: t.fmt for t in old.values()},
        sources=old,
        group_id="g",
        prefix="gp",
        metrics=Metrics(),
        refresh=lambda: answers.pop(0),
        refresh_interval_s=0,
    )
    consumer = _Consumer()
    runner._consumer = consumer
    runner._maybe_refresh()  # refused or unreachable: the running sources are kept
    runner._maybe_refresh()  # unchanged
    assert consumer.subscribed == [] and runner.sources == old
    runner._maybe_refresh()  # a source added: its topic is read, its records checked against it
    assert consumer.subscribed == [sorted([*old, new_topic])]
    assert runner.sources[new_topic].may_enter == frozenset({"new-erp", "200000001"})
    assert runner.formats[new_topic] == "cdc-json"
