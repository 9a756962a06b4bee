"""AvroCodec.decode reads what fastavro reads, for every record fastavro writes.

The compiled reader itself (compile_reader) is checked directly, so a silent fall back to fastavro
cannot make these tests pass; damaged frames are refused (RejectedMessage) as fastavro refuses them."""

from __future__ import annotations

import io
import math
from typing import Any

import fastavro
import pytest
from gateway.codec.avro import SINGLE_OBJECT_MAGIC, AvroCodec, decode_single_object, load_schemas
from gateway.codec.avro_read import compile_reader
from gateway.errors import RejectedMessage
from gateway.model.canonical import DECISION, DEMANDE
from gateway.testing.actor_stream import actor_stream
from gateway.testing.samples import canonical_samples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.codec.helpers import SYNTHETIC, fastavro_bytes
from tests.unit.codec.strategies import values

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def reference(parsed: Any, body: bytes) -> Any:
    return fastavro.schemaless_reader(io.BytesIO(body), parsed, None)


def agree(parsed: Any, body: bytes) -> None:
    """The compiled reader reads `body` as fastavro does, or refuses it as fastavro does (e.g. a
    timestamp fastavro writes but cannot read back: out of the datetime range)."""
    try:
        expected = reference(parsed, body)
    except Exception:  # noqa: BLE001 - fastavro's own refusal
        with pytest.raises(Exception):  # noqa: B017
            compile_reader(parsed)(body, 0)
        return
    value, end = compile_reader(parsed)(body, 0)
    assert end == len(body)
    assert same(value, expected)


def same(a: Any, b: Any) -> bool:
    """Equal values of the same types (Decimal('1.0') == Decimal('1.00'), but not their repr); a NaN
    is the same as a NaN (== says two NaN objects differ, even inside dicts and lists)."""
    return repr(a) == repr(b) and _equal(a, b)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def test_a_nan_reads_as_fastavro_reads_it() -> None:
    """Two NaN objects are never ==: the comparison itself must not fail a record that holds one."""
    parsed = fastavro.parse_schema(
        {"type": "record", "name": "N", "fields": [{"name": "x", "type": ["null", "double"]}]}
    )
    body = fastavro_bytes(parsed, {"x": float("nan")})
    value, _ = compile_reader(parsed)(body, 0)
    assert value != reference(parsed, body)  # what made a sound reader look wrong
    assert same(value, reference(parsed, body))
    assert not same({"x": 1.0}, {"x": float("nan")})


def test_every_sample_record_reads_as_fastavro_reads_it() -> None:
    schemas = load_schemas()
    for schema, record in canonical_samples():
        codec = schemas.codec(schema)
        body = fastavro_bytes(codec.parsed, record)
        value, end = compile_reader(codec.parsed)(body, 0)  # the compiled path, not a fall back
        assert end == len(body)
        assert same(value, reference(codec.parsed, body))
        assert same(codec.decode(body), value)


def test_every_view_record_of_an_actor_stream_reads_as_fastavro_reads_it() -> None:
    from gateway.flows.sinks import view_codecs  # noqa: PLC0415
    from gateway.settings import GatewaySettings  # noqa: PLC0415

    codecs = view_codecs(GatewaySettings())
    _, records = actor_stream()
    for r in records:
        codec, value = decode_single_object(r.value, codecs)
        assert same(value, reference(codec.parsed, r.value[10:]))
        assert compile_reader(codec.parsed)(r.value, 10) == (value, len(r.value))


@pytest.mark.parametrize("schema", [DEMANDE, DECISION])
@SETTINGS
@given(data=st.data())
def test_random_canonical_records_read_as_fastavro_reads_them(schema: str, data: Any) -> None:
    codec = load_schemas().codec(schema)
    agree(codec.parsed, fastavro_bytes(codec.parsed, data.draw(values(codec.parsed))))


@SETTINGS
@given(data=st.data())
def test_random_records_of_a_schema_using_every_construct_read_as_fastavro_reads_them(data: Any) -> None:
    codec = AvroCodec.from_schema(SYNTHETIC)
    agree(codec.parsed, fastavro_bytes(codec.parsed, data.draw(values(codec.parsed))))


def test_blocks_with_a_byte_size_and_a_negative_count_are_read() -> None:
    """Arrays and maps may come in blocks of -count items preceded by their size in bytes."""
    parsed = fastavro.parse_schema({"type": "array", "items": "int"})
    body = bytes([3, 6, 2, 4, 2, 6, 0])  # block of -(-2)=2 items, 6 bytes: 1, 2; then a block of 1: 3
    assert compile_reader(parsed)(body, 0) == ([1, 2, 3], len(body))
    assert reference(parsed, body) == [1, 2, 3]


def test_long_values_of_every_size_are_read() -> None:
    parsed = fastavro.parse_schema({"type": "array", "items": "long"})
    numbers = [0, -1, 63, -64, 64, 8191, -8192, 2**31, -(2**63), 2**63 - 1]
    body = fastavro_bytes(parsed, numbers)
    assert compile_reader(parsed)(body, 0) == (numbers, len(body))


def _damaged(body: bytes) -> list[bytes]:
    return [
        body[: len(body) // 2],  # truncated
        body[:-1],
        body + b"\x00",  # trailing bytes
        b"\x09" + body[1:],  # union index or length out of range
        b"\xff" * 12,  # a varint that never ends
    ]


@pytest.mark.parametrize("schema", [DEMANDE, DECISION])
def test_damaged_bodies_are_refused(schema: str) -> None:
    codec = load_schemas().codec(schema)
    record = next(r for s, r in canonical_samples() if s == schema)
    body = fastavro_bytes(codec.parsed, record)
    for bad in _damaged(body):
        with pytest.raises(RejectedMessage):
            codec.decode(bad)
        with pytest.raises(RejectedMessage):
            decode_single_object(SINGLE_OBJECT_MAGIC + codec.fingerprint + bad, {codec.fingerprint: codec})


def test_bad_enum_index_negative_length_and_invalid_utf8_are_refused() -> None:
    codec = AvroCodec.from_schema(
        {
            "type": "record",
            "name": "t.R",
            "fields": [
                {"name": "e", "type": {"type": "enum", "name": "t.E", "symbols": ["A", "B"]}},
                {"name": "s", "type": "string"},
            ],
        }
    )
    assert codec.decode(bytes([2, 2]) + b"x") == {"e": "B", "s": "x"}
    for bad in (bytes([4, 2]) + b"x", bytes([1, 2]) + b"x", bytes([0, 1]), bytes([0, 4, 0xFF, 0xFE])):
        with pytest.raises(RejectedMessage, match="cannot decode"):
            codec.decode(bad)


def test_a_schema_the_reader_does_not_compile_is_read_by_fastavro() -> None:
    schema = {"type": "record", "name": "t.U", "fields": [{"name": "u", "type": ["null", *(
        {"type": "record", "name": f"t.B{i}", "fields": [{"name": "x", "type": "int"}]} for i in range(70)
    )]}]}  # fmt: skip
    codec = AvroCodec.from_schema(schema)
    body = fastavro_bytes(codec.parsed, {"u": {"x": 5}})
    assert codec.decode(body) == reference(codec.parsed, body)
