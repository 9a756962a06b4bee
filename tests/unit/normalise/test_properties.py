"""Property-based: any bytes, random or truncated samples, never raise and never produce a bad record."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from gateway.codec.avro import load_schemas
from gateway.errors import ConfigError
from gateway.model.canonical import CanonicalRecord
from gateway.normalise import FORMATS, INTERNAL_ERROR, Rejection, normalise
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .helpers import SAMPLES

WHEN = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _samples(fmt: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((SAMPLES / fmt).iterdir())]


def check(fmt: str, data: bytes) -> None:
    out = normalise(fmt, data, received_at=WHEN)
    assert isinstance(out, list)
    for o in out:
        if isinstance(o, CanonicalRecord):
            assert load_schemas().codec(o.schema).problems(o.record) == []
            assert o.key
        else:
            assert isinstance(o, Rejection)
            assert o.problems, "a rejection always says why"
            reasons = {p.reason for p in o.problems}
            assert INTERNAL_ERROR not in reasons, o.problems
            assert "does not match the schema" not in reasons, o.problems


@pytest.mark.parametrize("fmt", FORMATS)
@SETTINGS
@given(data=st.binary(max_size=2048))
def test_random_bytes_never_raise(fmt: str, data: bytes) -> None:
    check(fmt, data)


@pytest.mark.parametrize("fmt", FORMATS)
@SETTINGS
@given(data=st.data())
def test_truncated_and_mutated_samples_never_raise(fmt: str, data: st.DataObject) -> None:
    sample = data.draw(st.sampled_from(_samples(fmt)))
    cut = data.draw(st.integers(min_value=0, max_value=len(sample)))
    mutated = bytearray(sample[:cut])
    for _ in range(data.draw(st.integers(min_value=0, max_value=3))):
        if mutated:
            pos = data.draw(st.integers(min_value=0, max_value=len(mutated) - 1))
            mutated[pos] = data.draw(st.integers(min_value=0, max_value=255))
    check(fmt, bytes(mutated))


@pytest.mark.parametrize("fmt", ["cdc-json", "siao-json", "comed-json"])
@SETTINGS
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_random_json_values_never_raise(fmt: str, value: object) -> None:
    check(fmt, json.dumps(value).encode())


def test_every_prefix_of_a_sample_is_handled() -> None:
    sample = (SAMPLES / "sne-xml" / "demande-rad-attribution-rennes.xml").read_bytes()
    for cut in range(0, len(sample), 97):
        check("sne-xml", sample[:cut])
    csv = (SAMPLES / "cal-csv" / "cal-rennes-habitat-2026-03-05.csv").read_bytes()
    for cut in range(0, len(csv), 13):
        check("cal-csv", csv[:cut])


def test_unknown_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        normalise("pdf", b"x")
