"""gateway.connectors.to_json writes what json.dumps writes with the same settings (its C encoder is
built once), and refuses what json.dumps refuses."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from gateway.connectors import json_default, to_json
from gateway.testing.actor_stream import sink_records


def reference(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=json_default)


VALUES: list[Any] = [
    "x",
    1,
    1.5,
    float("nan"),
    None,
    True,
    {"a": [1, {"b": Decimal("1.10")}]},
    [date(2020, 1, 1), datetime(2020, 1, 1, tzinfo=UTC), b"\x00\x01"],
    {"é\n\u2028": '\x7f"\\'},
    {1: 2, False: None, 2.5: "f"},
]


def test_every_record_of_an_actor_stream_and_odd_values_are_written_as_json_dumps_writes_them() -> None:
    records = [r.record for r in sink_records()]
    nested = [v for r in records for v in r.values() if isinstance(v, dict | list)]
    for value in [*records, *nested, *VALUES]:
        assert to_json(value) == reference(value)


def test_what_json_cannot_write_is_refused() -> None:
    with pytest.raises(TypeError, match="not JSON serialisable"):
        to_json({"x": object()})
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        to_json(loop)
