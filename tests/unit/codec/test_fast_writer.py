"""encode_checked writes exactly what fastavro writes, for every record fastavro accepts.

The fast writer itself (compile_writer) is checked directly, so a silent fall back to fastavro
cannot make these tests pass: plain records must be written by the fast path, byte for byte."""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from gateway.codec.avro import SINGLE_OBJECT_MAGIC, AvroCodec, decode_single_object, load_schemas
from gateway.codec.avro_write import FastPathMiss, Unsupported, compile_writer, zigzag
from gateway.model.canonical import DECISION, DEMANDE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.codec.helpers import (
    SYNTHETIC,
    fastavro_accepts,
    fastavro_bytes,
    minimal_demande,
    sample_records,
)
from tests.unit.codec.strategies import values

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def test_every_sample_record_takes_the_fast_path_and_gives_fastavros_bytes() -> None:
    records = sample_records()
    assert len(records) >= 10
    assert {schema for schema, _ in records} == {DEMANDE, DECISION}
    for schema, record in records:
        codec = load_schemas().codec(schema)
        expected = fastavro_bytes(codec.parsed, record)
        assert compile_writer(codec.parsed)(record) == expected  # the fast path, not a fall back
        assert codec.encode_checked(record) == expected
        assert codec.encode_framed_checked(record) == codec.encode_framed(record)


@pytest.mark.parametrize("schema", [DEMANDE, DECISION])
@SETTINGS
@given(data=st.data())
def test_random_canonical_records_give_fastavros_bytes(schema: str, data: Any) -> None:
    codec = load_schemas().codec(schema)
    record = data.draw(values(codec.parsed))
    assert fastavro_accepts(codec.parsed, record)
    expected = fastavro_bytes(codec.parsed, record)
    assert compile_writer(codec.parsed)(record) == expected
    assert codec.encode_checked(record) == expected


@SETTINGS
@given(data=st.data())
def test_random_records_of_a_schema_using_every_construct_give_fastavros_bytes(data: Any) -> None:
    codec = AvroCodec.from_schema(SYNTHETIC)
    record = data.draw(values(codec.parsed))
    assert fastavro_accepts(codec.parsed, record)
    expected = fastavro_bytes(codec.parsed, record)
    assert compile_writer(codec.parsed)(record) == expected  # floats drawn within the float range
    assert codec.encode_checked(record) == expected


def test_a_float_beyond_the_float_range_goes_to_fastavro_and_gives_its_bytes() -> None:
    codec = AvroCodec.from_schema({"type": "record", "name": "F", "fields": [{"name": "f", "type": "float"}]})
    record = {"f": 1e300}
    with pytest.raises(OverflowError):
        compile_writer(codec.parsed)(record)
    assert codec.encode_checked(record) == fastavro_bytes(codec.parsed, record)


class _Record(OrderedDict[str, Any]):
    pass


# Values fastavro accepts that the fast path leaves to fastavro: same bytes either way.
LEFT_TO_FASTAVRO: list[tuple[str, Any]] = [
    ("a Mapping that is not a dict", _Record),
    (
        "a naive datetime (fastavro: local time)",
        lambda r: r["provenance"].update(dateSaisie=datetime(2026, 5, 1)),
    ),
    ("a datetime in a date field", lambda r: r.update(dateCreationDemande=datetime(2026, 5, 1, 23, 59))),
    ("an ISO string in a date field", lambda r: r.update(dateCreationDemande="2026-05-01")),
    ("a union in tuple notation", lambda r: r.update(numUnique=("string", "035260100000000001"))),
    ("a tuple for an array", lambda r: r["logementRecherche"].update(communes=("75056", "35238"))),
    ("a str subclass", lambda r: r.update(numGuichet=type("S", (str,), {})("G1"))),
    ("bytes where a decimal is", lambda r: r["logementRecherche"].update(loyerMaximum=b"\x01\x00")),
    ("a -type naming the record", lambda r: r.update({"-type": "fr.gp.Demande"})),
]


@pytest.mark.parametrize(("label", "change"), LEFT_TO_FASTAVRO, ids=[c[0] for c in LEFT_TO_FASTAVRO])
def test_values_the_fast_path_leaves_to_fastavro_give_fastavros_bytes(label: str, change: Any) -> None:
    codec = load_schemas().codec(DEMANDE)
    record = minimal_demande()
    changed = change(record)
    record = changed if changed is not None else record
    assert fastavro_accepts(codec.parsed, record), label
    with pytest.raises(FastPathMiss):
        compile_writer(codec.parsed)(record)
    assert codec.encode_checked(record) == fastavro_bytes(codec.parsed, record)


@pytest.mark.parametrize(
    "amount", ["5E+2", "0E-2", "-0E-1", "-1.5E+1", "7E-2", "1E+9", "0E+3"], ids=lambda a: a
)
def test_a_decimal_in_exponent_notation_is_written_by_the_fast_path_as_fastavro_writes_it(
    amount: str,
) -> None:
    """fastavro decodes some amounts to exponent notation (a zero at scale 0, 1E+3...): a view of a
    decoded record must not leave the fast path for it."""
    codec = load_schemas().codec(DEMANDE)
    record = minimal_demande()
    record["logementRecherche"]["loyerMaximum"] = Decimal(amount)
    assert fastavro_accepts(codec.parsed, record)
    assert compile_writer(codec.parsed)(record) == fastavro_bytes(codec.parsed, record)


@pytest.mark.parametrize("amount", ["1E-3", "NaN", "-Infinity"])
def test_a_decimal_fastavro_cannot_write_is_left_to_it(amount: str) -> None:
    codec = load_schemas().codec(DEMANDE)
    record = minimal_demande()
    record["logementRecherche"]["loyerMaximum"] = Decimal(amount)
    with pytest.raises(FastPathMiss):
        compile_writer(codec.parsed)(record)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "record", "name": "U3", "fields": [{"name": "u", "type": ["null", "string", "int"]}]},
        {
            "type": "record",
            "name": "FD",
            "fields": [
                {
                    "name": "x",
                    "type": {
                        "type": "fixed",
                        "name": "F8",
                        "size": 8,
                        "logicalType": "decimal",
                        "precision": 5,
                    },
                }
            ],
        },
    ],
    ids=["union of three", "fixed decimal"],
)
def test_a_schema_the_fast_writer_does_not_compile_is_encoded_by_fastavro(schema: dict[str, Any]) -> None:
    codec = AvroCodec.from_schema(schema)
    with pytest.raises(Unsupported):
        compile_writer(codec.parsed)
    record = {"u": 5} if "u" in str(schema) else {"x": Decimal("-15")}
    assert codec.encode_checked(record) == fastavro_bytes(codec.parsed, record)
    frame = codec.encode_framed_checked(record)
    assert frame[:2] == SINGLE_OBJECT_MAGIC
    assert decode_single_object(frame, {codec.fingerprint: codec})[1] == codec.decode(frame[10:])


def test_edge_values_give_fastavros_bytes() -> None:
    codec = AvroCodec.from_schema(SYNTHETIC)
    base: dict[str, Any] = {
        "f": 0.1, "d": None, "by": b"", "fx": b"abcd", "m": {}, "u": UUID(int=5),
        "tm": time(23, 59, 59, 999999), "tu": time(0, 0),
        "tsu": datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        "lts": datetime(1960, 1, 1, 0, 0, 0, 1500), "ltu": datetime(2100, 1, 1), "dec0": Decimal("-0"),
        "odd": "x",
    }  # fmt: skip
    variants: list[dict[str, Any]] = [
        {},
        {"l": 2**63 - 1, "dec0": Decimal("999"), "d": float("nan"), "f": float("-inf")},
        {"l": -(2**63), "dec0": Decimal("-999"), "d": 2**53 + 1, "f": 16777217},
        {"dec0": Decimal("-128"), "m": {"é": None, "": 2**31 - 1}, "by": bytes(range(256))},
        {"dec0": Decimal("128"), "tsu": -(2**63), "e": "A", "arr": ["B", "A", "A"], "flag": False},
        {"next": {**_drop_next(), "next": None}, "kids": [_drop_next(), _drop_next()]},
    ]
    for change in variants:
        record = {**base, **change}
        assert fastavro_accepts(codec.parsed, record), change
        assert compile_writer(codec.parsed)(record) == fastavro_bytes(codec.parsed, record), change
        assert codec.encode_checked(record) == fastavro_bytes(codec.parsed, record)


def _drop_next() -> dict[str, Any]:
    return {
        "f": 1, "d": 2, "by": b"x", "fx": b"wxyz", "m": {"a": 1}, "u": "not a uuid but a string", "tm": 5,
        "tu": 6, "tsu": 7, "lts": 8, "ltu": 9, "dec0": Decimal("1"), "odd": "",
    }  # fmt: skip


@given(st.integers(-(2**63), 2**63 - 1))
def test_zigzag_matches_fastavro(n: int) -> None:
    assert zigzag(n) == fastavro_bytes("long", n)
