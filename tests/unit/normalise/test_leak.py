"""Leak test (issue 10 item 5): marker values fed through every format, valid and malformed,
never come out where personal data must not go.

Each example takes a bundled sample of one of the five formats, puts a marker value (shaped like a
phone number, an income, a compact birth date, a code-like word, a surname) in one of its fields
(or in a malformed variant of it: a part cut short, a shifted CSV column, an unclosed quote, a
garbage line, an XML attribute) and runs it through:
- `gateway normalise` (stderr; stdout only carries the marker inside a record that was accepted);
- the ingest core `ingest_record` (dead-letter headers, canonical record headers, topic names);
- the ingest runner's metrics (Prometheus exposition text);
- every log record at DEBUG (caplog) of both.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from click.testing import CliRunner
from gateway.cli.normalise import normalise as normalise_command
from gateway.codec.avro import load_schemas, to_jsonable
from gateway.flows.dlq import DeadLetters
from gateway.flows.ingest import ingest_record
from gateway.flows.ingest_runner import IngestRunner, RawRecord
from gateway.model.canonical import CanonicalRecord
from gateway.monitoring.metrics import Metrics
from gateway.normalise import FORMATS, normalise
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree

from .helpers import SAMPLES

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Shapes of personal values that used to pass as "code-like": 8-12 digits (phone, income, birth
# date yyyymmdd), upper-case words, code-like words with a digit or underscore, short surnames.
# Alphabets are chosen so that a marker cannot occur by chance in a header, a path or a reason.
MARKERS = st.one_of(
    st.integers(10_000_000, 999_999_999_999).map(str),
    st.text(alphabet="QXJKWZ", min_size=4, max_size=12),
    st.builds(
        lambda a, b: f"{a}_{b}", st.text(alphabet="QXJKWZ", min_size=2, max_size=4), st.integers(10, 99)
    ),
    st.text(alphabet="qxjkwz", min_size=3, max_size=8).map(lambda s: "Zq" + s),
)
MODES = ("field", "cut", "garbage")


def samples(fmt: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((SAMPLES / fmt).iterdir())]


# -- placing a marker ----------------------------------------------------------------------------
def _json_leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _json_leaves(v, (*path, k))] or [path]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _json_leaves(v, (*path, i))] or [path]
    if isinstance(value, str) and value[:1] in "{[":  # a Debezium JSON column (document, donnees)
        try:
            inner = json.loads(value)
        except ValueError:
            return [path]
        return [(*path, "<json>", *p) for p in _json_leaves(inner)]
    return [path]


def _json_set(value: Any, path: tuple[Any, ...], marker: str) -> Any:
    if not path:
        return marker
    head, *rest = path
    if head == "<json>":
        return json.dumps(_json_set(json.loads(value), tuple(rest), marker))
    value = list(value) if isinstance(value, list) else dict(value)
    value[head] = _json_set(value[head], tuple(rest), marker)
    return value


def _json_docs(data: bytes) -> tuple[list[Any], str]:
    try:
        value = json.loads(data)
    except ValueError:
        return [json.loads(line) for line in data.splitlines() if line.strip()], "lines"
    return (value, "array") if isinstance(value, list) else ([value], "one")


def _json_dump(docs: list[Any], shape: str) -> bytes:
    if shape == "lines":
        return "\n".join(json.dumps(d, ensure_ascii=False) for d in docs).encode()
    if shape == "array":
        return ("[\n" + ",\n".join(json.dumps(d, ensure_ascii=False) for d in docs) + "\n]").encode()
    return json.dumps(docs[0], ensure_ascii=False).encode()


def with_marker(fmt: str, data: bytes, marker: str, mode: str, pick: int) -> bytes:
    if fmt == "cal-csv":
        return _csv_marker(data, marker, mode, pick)
    if fmt == "sne-xml":
        return _xml_marker(data, marker, mode, pick)
    docs, shape = _json_docs(data)
    doc_index = pick % len(docs)
    leaves = _json_leaves(docs[doc_index])
    docs[doc_index] = _json_set(docs[doc_index], leaves[pick % len(leaves)], marker)
    out = _json_dump(docs, shape)
    if mode == "cut":  # the part holding the marker cut short just after it
        at = out.find(marker.encode()) + len(marker)
        return out[:at] + b'"\n' + _json_dump(docs[:1], "one")
    if mode == "garbage":
        return out + b"\n{" + marker.encode() + b" not json\n" + marker.encode() + b"}\n"
    return out


def _csv_marker(data: bytes, marker: str, mode: str, pick: int) -> bytes:
    lines = data.decode("utf-8-sig").splitlines()
    li = 1 + pick % (len(lines) - 1)
    cells = lines[li].split(";")
    ci = pick % len(cells)
    if mode == "field":
        cells[ci] = marker
    elif mode == "cut":  # a shifted column: the marker inserted, every later cell moves right
        cells.insert(ci, marker)
    else:  # an opening quote that never closes, then the marker
        cells[ci] = '"' + marker
    lines[li] = ";".join(cells)
    return ("\n".join(lines) + "\n").encode()


def _xml_marker(data: bytes, marker: str, mode: str, pick: int) -> bytes:
    root = etree.fromstring(data)
    elements = [e for e in root.iter() if isinstance(e.tag, str)]
    element = elements[pick % len(elements)]
    if element.attrib and pick % 2:
        name = sorted(element.attrib)[pick % len(element.attrib)]
        element.set(name, marker)
    elif len(element) == 0:
        element.text = marker
    else:
        element.set("code", marker)
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    if mode == "cut":
        return out[: out.find(marker.encode()) + len(marker)]
    if mode == "garbage":
        return out + marker.encode()
    return out


# -- the channels --------------------------------------------------------------------------------
SCHEMAS = load_schemas()
METRICS = Metrics()
RUNNER = IngestRunner(bootstrap="127.0.0.1:1", formats={}, group_id="leak-test", prefix="gp", metrics=METRICS)


def _accepted_texts(fmt: str, data: bytes) -> str:
    records = [o for o in normalise(fmt, data) if isinstance(o, CanonicalRecord)]
    return json.dumps([to_jsonable(r.record) for r in records], ensure_ascii=False)


def check_no_leak(fmt: str, data: bytes, marker: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        result = CliRunner().invoke(normalise_command, ["--format", fmt, "-"], input=data)
        topic = f"gp.raw.{fmt}"
        ingested = ingest_record(
            fmt,
            data,
            source_topic=topic,
            partition=0,
            offset=7,
            key=None,
            timestamp_ms=1_780_000_000_000,
            schemas=SCHEMAS,
            dead_letters=DeadLetters(),
        )
        sent = [(fmt, r.topic, False) for r in ingested.records]
        sent += [(fmt, d.topic, True) for d in ingested.dead]
        RUNNER._count([RawRecord(fmt, topic, 0, 7, None, data, None)], sent, 0.001)
    assert result.exit_code in (0, 2), result.output
    assert marker not in result.stderr, "stderr of gateway normalise"
    if marker in result.stdout:  # only inside a record that was accepted
        assert marker in _accepted_texts(fmt, data), "stdout outside an accepted record"
    for letter in ingested.dead:
        for name, value in letter.headers:
            assert marker not in value.decode("utf-8", "replace"), f"dead-letter header {name}"
        assert letter.topic == f"{topic}.dlq"
    for out in ingested.records:
        for name, value in out.headers:
            assert marker not in value.decode("utf-8", "replace"), f"record header {name}"
        assert re.fullmatch(r"gp\.canonical\.(demande|decision)", out.topic)
    labels = re.findall(r"\{([^}]*)\}", METRICS.render().decode())  # values are numbers: not checked
    assert labels and all(marker not in label for label in labels), "metric labels"
    for record in caplog.records:
        assert marker not in record.getMessage(), f"log {record.name}"


@pytest.mark.parametrize("fmt", FORMATS)
@SETTINGS
@given(data=st.data(), marker=MARKERS)
def test_no_marker_reaches_a_channel_it_must_not(
    fmt: str, data: st.DataObject, marker: str, caplog: pytest.LogCaptureFixture
) -> None:
    sample = data.draw(st.sampled_from(samples(fmt)), label="sample")
    mode = data.draw(st.sampled_from(MODES), label="mode")
    pick = data.draw(st.integers(0, 10_000), label="pick")
    assume(marker.encode() not in sample)  # so that any occurrence comes from the marker
    check_no_leak(fmt, with_marker(fmt, sample, marker, mode, pick), marker, caplog)


# Known former leaks, each a fixed example (and a check that the marker was really placed).
FORMER_LEAKS = [
    ("cal-csv", "0612345678", "decision"),  # a phone number in a code column
    ("cal-csv", "31200", "decision"),  # an integer income
    ("cal-csv", "19900214", "decision"),  # a compact birth date
    ("cal-csv", "DUPO", "decision"),  # a short surname in a shifted column
]


@pytest.mark.parametrize(("fmt", "marker", "column"), FORMER_LEAKS)
def test_former_leaks_are_closed(
    fmt: str, marker: str, column: str, caplog: pytest.LogCaptureFixture
) -> None:
    data = (SAMPLES / "cal-csv" / "cal-rennes-habitat-2026-03-05.csv").read_text(encoding="utf-8")
    header, first, *rest = data.splitlines()
    cells = first.split(";")
    cells[header.split(";").index(column)] = marker
    bad = "\n".join([header, ";".join(cells), *rest]).encode()
    assert any(not isinstance(o, CanonicalRecord) for o in normalise(fmt, bad))
    check_no_leak(fmt, bad, marker, caplog)


def test_a_cdc_table_name_is_not_quoted(caplog: pytest.LogCaptureFixture) -> None:
    doc = json.loads((SAMPLES / "cdc-json" / "erp-rennes-demande-creation.json").read_bytes())
    doc["payload"]["source"]["table"] = "ZqMartine Dupont 0612345678 née le 14/02/1990"
    data = json.dumps(doc).encode()
    for marker in ("ZqMartine", "0612345678", "14/02/1990"):
        check_no_leak("cdc-json", data, marker, caplog)


def test_an_unsupported_sne_version_is_not_quoted(caplog: pytest.LogCaptureFixture) -> None:
    data = (SAMPLES / "sne-xml" / "demande-cre-famille-rennes.xml").read_bytes()
    bad = re.sub(rb'versionInterface="[^"]*"', b'versionInterface="19900214"', data, count=1)
    assert bad != data
    check_no_leak("sne-xml", bad, "19900214", caplog)
