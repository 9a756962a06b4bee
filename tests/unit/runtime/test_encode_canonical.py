"""encode_canonical (the ingest flow's encoder): the same bytes as the codec's plain encoding."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from gateway.codec.avro import decode_single_object, load_schemas
from gateway.flows.ingest import encode_canonical
from gateway.model.canonical import DECISION, DEMANDE, CanonicalRecord
from gateway.normalise import FORMATS, normalise
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "policy"))  # the schema-driven strategies
from policy_strategies import records

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


def _same_as_plain(schema: str, record: dict[str, Any]) -> None:
    codec = load_schemas().codec(schema)
    fast = encode_canonical(codec, record)
    assert fast == codec.encode_framed(record, validate=False)
    _, decoded = decode_single_object(fast, {codec.fingerprint: codec})
    assert decoded == codec.decode(codec.encode(record, validate=False))


def test_samples_encode_to_the_same_bytes() -> None:
    seen = 0
    for fmt in FORMATS:
        for path in sorted((SAMPLES / fmt).glob("*")):
            for outcome in normalise(fmt, path.read_bytes()):
                if isinstance(outcome, CanonicalRecord):
                    _same_as_plain(outcome.schema, outcome.record)
                    seen += 1
    assert seen >= 10


@pytest.mark.parametrize("schema", [DEMANDE, DECISION])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_records_encode_to_the_same_bytes(schema: str, data: Any) -> None:
    _same_as_plain(schema, data.draw(records(schema)))
