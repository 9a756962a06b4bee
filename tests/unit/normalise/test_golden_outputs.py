"""Every normaliser gives exactly the recorded outputs (records, problems, paths, order) for every
sample and for ~12 000 mutated variants of them (see golden.py): an optimisation changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from . import golden

GOLDEN: dict[str, Any] = json.loads(golden.GOLDEN.read_text())
INPUTS = {name: (fmt, data) for name, fmt, data in golden.inputs()}


def test_the_golden_file_covers_every_sample() -> None:
    assert sorted(GOLDEN) == sorted(INPUTS)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_sample_outputs_are_the_recorded_ones(name: str) -> None:
    fmt, data = INPUTS[name]
    assert GOLDEN[name]["format"] == fmt
    assert golden.run(fmt, data) == GOLDEN[name]["outputs"]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_mutated_variants_give_the_recorded_outputs(name: str) -> None:
    fmt, data = INPUTS[name]
    expected = GOLDEN[name]["variants"]
    got = [golden.digest(golden.fingerprint(golden.run(fmt, v))) for v in golden.variants(name, fmt, data)]
    assert len(got) == len(expected)
    differ = [i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b]
    assert not differ, f"{len(differ)} variants differ, first indexes: {differ[:10]}"


def test_the_fingerprint_tells_apart_what_an_optimisation_could_change() -> None:
    from datetime import UTC, date, datetime  # noqa: PLC0415
    from decimal import Decimal  # noqa: PLC0415

    from gateway.normalise.common import PARIS  # noqa: PLC0415

    pairs = [
        (Decimal("1.5"), Decimal("1.50")),
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 1, tzinfo=PARIS)),
        (date(2026, 1, 1), datetime(2026, 1, 1)),
        ({"a": Decimal("1")}, {"a": Decimal("1.0")}),
        (1, 1.0),
        (1, True),
        ([1], (1,)),
    ]
    for a, b in pairs:
        assert a == b or type(a) is not type(b)
        assert golden.fingerprint(golden._canon(a)) != golden.fingerprint(golden._canon(b))
