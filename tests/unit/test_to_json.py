"""gateway.connectors.to_json writes what json.dumps writes with the same settings (orjson, the
standard library's C encoder for what orjson declines), NaN as null, and refuses what json.dumps
refuses."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from gateway.connectors import json_default, to_json, to_json_bytes
from gateway.testing.actor_stream import sink_records


def reference(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=json_default)


VALUES: list[Any] = [
    "x",
    1,
    1.5,
    None,
    True,
    {"a": [1, {"b": Decimal("1.10")}]},
    [date(2020, 1, 1), datetime(2020, 1, 1, tzinfo=UTC), b"\x00\x01"],
    {"é\n\u2028": '\x7f"\\'},
    {1: 2, False: None, 2.5: "f"},
    2**70,  # past 64 bits: orjson declines, the fallback writes it
    {"é": [[[[1]]]], "": {}},
]
DEEP: Any = 0
for _ in range(300):  # deeper than orjson goes: the fallback writes it
    DEEP = [DEEP]
VALUES.append(DEEP)


def test_every_record_of_an_actor_stream_and_odd_values_are_written_as_json_dumps_writes_them() -> None:
    records = [r.record for r in sink_records()]
    nested = [v for r in records for v in r.values() if isinstance(v, dict | list)]
    for value in [*records, *nested, *VALUES]:
        assert to_json(value) == reference(value)
        assert to_json_bytes(value) == reference(value).encode("utf-8")


def test_nan_and_infinities_are_written_null_json_has_no_nan() -> None:
    assert to_json([float("nan"), float("inf"), -float("inf"), 1.5]) == "[null,null,null,1.5]"
    assert to_json_bytes({"x": float("nan")}) == b'{"x":null}'


def test_what_json_cannot_write_is_refused() -> None:
    with pytest.raises(TypeError, match="not JSON serialisable"):
        to_json({"x": object()})
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        to_json(loop)
