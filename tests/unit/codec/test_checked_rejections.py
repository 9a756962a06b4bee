"""encode_checked refuses exactly what fastavro's validator refuses, naming the field path, never
the value: a valid record with one leaf corrupted is refused by fastavro, by the fast writer and by
encode_checked, whose problems name that leaf's path."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from gateway.codec.avro import AvroCodec, load_schemas
from gateway.codec.avro_check import MISSING
from gateway.codec.avro_write import INT_MAX, LONG_MAX, compile_writer
from gateway.errors import Problem, RejectedMessage
from gateway.model.canonical import DECISION, DEMANDE
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from tests.unit.codec.helpers import SYNTHETIC, fastavro_accepts, minimal_demande, sample_records
from tests.unit.codec.strategies import Leaf, leaves, values

NO_SHRINK = [Phase.explicit, Phase.reuse, Phase.generate]  # shrinking these records takes minutes
SECRET = "Dupont-SECRET-4242"  # noqa: S105 - a payload value that must never show in a problem


def _resolve(parsed: Any, schema: Any) -> Any:
    named = parsed.get("__named_schemas") or {}
    return named.get(schema, schema) if isinstance(schema, str) else schema


def corruptions(parsed: Any, leaf: Leaf) -> list[tuple[str, Any]]:
    """(label, replacement) pairs that make the leaf wrong; a MISSING replacement deletes it."""
    schema = _resolve(parsed, leaf.schema)
    if isinstance(schema, list):  # a null [null, T]: give it a value of no branch
        other = _resolve(parsed, next(b for b in schema if b != "null"))
        kind = other.get("type") if isinstance(other, dict) else other
        return [("no branch", 3.5 if kind == "string" else [SECRET])]
    kind = schema.get("type") if isinstance(schema, dict) else schema
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    out: list[tuple[str, Any]] = [] if leaf.nullable else [("null", None)]
    if leaf.field is not None and "default" not in leaf.field and not leaf.nullable:
        out.append(("missing", MISSING))
    if logical == "decimal":
        precision, scale = schema["precision"], schema.get("scale", 0)
        out += [
            ("too many digits", Decimal(10**precision).scaleb(-scale)),
            ("too many places", Decimal(1).scaleb(-scale - 1)),
            ("nan", Decimal("NaN")),
            ("str", SECRET),
        ]
    elif logical in ("date", "timestamp-millis", "timestamp-micros"):
        out += [("str", SECRET), ("float", 1.5), ("bool", True)]
    elif kind == "string":
        out += [("int", 42), ("bytes", SECRET.encode())]
    elif kind == "boolean":
        out += [("str in boolean", "true"), ("int", 1)]
    elif kind in ("int", "long"):
        high = INT_MAX if kind == "int" else LONG_MAX
        out += [
            ("too big", high + 1),
            ("too small", -high - 2),
            ("str", SECRET),
            ("float", 2.0),
            ("bool", False),
        ]
    elif kind in ("float", "double"):
        out += [("str", "1.5"), ("bool", True)]
    elif kind == "enum":
        out += [("unknown symbol", SECRET), ("int", 0)]
    elif kind == "array":
        out += [("str", SECRET), ("dict", {})]
    elif kind == "record":
        out += [("str", SECRET), ("list", [])]
    elif kind == "bytes":
        out += [("str", SECRET)]
    elif kind == "fixed":
        out += [("wrong size", b"\x00" * (schema["size"] + 1)), ("str", SECRET)]
    elif kind == "map":
        out += [("list", []), ("int key", {1: None})]
    return out


def _apply(leaf: Leaf, replacement: Any) -> None:
    if replacement is MISSING:
        del leaf.parent[leaf.key]
    else:
        leaf.set(replacement)


def _check_refused(codec: AvroCodec, record: dict[str, Any], path: str, label: str) -> list[Problem]:
    assert not fastavro_accepts(codec.parsed, record), f"{label} at {path} is not invalid for fastavro"
    with pytest.raises(Exception):  # noqa: B017 - FastPathMiss, or what a converter raises
        compile_writer(codec.parsed)(record)
    with pytest.raises(RejectedMessage) as info:
        codec.encode_checked(record)
    problems = list(info.value.problems)
    assert problems
    assert path in {p.path for p in problems}, (label, path, problems)
    for p in problems:  # never the value: a type name at most
        assert SECRET not in f"{p.path} {p.reason} {p.value}"
        assert p.value is None or p.value.isidentifier()
    assert SECRET not in str(info.value)
    return problems


@pytest.mark.parametrize("schema", [DEMANDE, DECISION])
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), phases=NO_SHRINK)
@given(data=st.data())
def test_one_corrupted_leaf_is_refused_by_fastavro_and_by_encode_checked_at_its_path(
    schema: str, data: Any
) -> None:
    codec = load_schemas().codec(schema)
    record = data.draw(values(codec.parsed))
    assert codec.encode_checked(record)  # valid before the corruption
    spots = leaves(codec.parsed, record)
    leaf = data.draw(st.sampled_from(spots))
    options = corruptions(codec.parsed, leaf)
    label, replacement = data.draw(st.sampled_from(options))
    _apply(leaf, replacement)
    problems = _check_refused(codec, record, leaf.path, label)
    if label == "missing":
        assert Problem(leaf.path, MISSING) in problems


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), phases=NO_SHRINK)
@given(data=st.data())
def test_one_corrupted_leaf_of_the_synthetic_schema_is_refused_at_its_path(data: Any) -> None:
    codec = AvroCodec.from_schema(SYNTHETIC)
    record = data.draw(values(codec.parsed))
    spots = [s for s in leaves(codec.parsed, record) if s.path not in ("u", "odd")]  # any str fits there
    leaf = data.draw(st.sampled_from(spots))
    label, replacement = data.draw(st.sampled_from(corruptions(codec.parsed, leaf)))
    _apply(leaf, replacement)
    _check_refused(codec, record, leaf.path, label)


def test_named_paths_and_reasons() -> None:
    codec = load_schemas().codec(DEMANDE)
    record = copy.deepcopy(next(r for s, r in sample_records() if s == DEMANDE and r.get("demandeur")))
    assert record["demandeur"]["revenuFiscal"] is not None
    record["demandeur"]["revenuFiscal"]["montantMoins1"] = Decimal("12345678901.234")
    record["demandeur"]["civilite"] = SECRET
    record["personnesACharge"][1]["sexe"] = 7
    del record["numGuichet"]
    with pytest.raises(RejectedMessage) as info:
        codec.encode_checked(record)
    assert set(info.value.problems) == {
        Problem(
            "demandeur.revenuFiscal.montantMoins1",
            "more digits than the precision of decimal(12,2)",
            "Decimal",
        ),
        Problem("demandeur.civilite", "not a symbol of fr.gp.Civilite", "str"),
        Problem("personnesACharge[1].sexe", "not a symbol of fr.gp.Sexe", "int"),
        Problem("numGuichet", MISSING),
    }


@pytest.mark.parametrize("record", [None, [], "x", 5, {"numGuichet": object()}])
def test_anything_not_a_record_is_refused_with_the_gateways_error(record: Any) -> None:
    codec = load_schemas().codec(DEMANDE)
    with pytest.raises(RejectedMessage) as info:
        codec.encode_checked(record)
    assert info.value.problems


def test_a_value_whose_comparison_raises_is_refused_not_raised() -> None:
    class Weird:
        def __eq__(self, other: object) -> bool:
            raise RuntimeError(SECRET)

        __hash__ = None  # type: ignore[assignment]

    codec = AvroCodec.from_schema(SYNTHETIC)
    with pytest.raises(RejectedMessage) as info:
        codec.encode_checked({"e": Weird()})
    assert SECRET not in str(info.value)


def test_a_string_fastavro_accepts_but_cannot_write_is_refused_as_encode_refuses_it() -> None:
    codec = load_schemas().codec(DEMANDE)
    record = minimal_demande()
    record["numGuichet"] = "\ud800"  # a lone surrogate: a str, but no UTF-8
    with pytest.raises(RejectedMessage) as plain:
        codec.encode(record)
    with pytest.raises(RejectedMessage) as checked:
        codec.encode_checked(record)
    assert checked.value.problems == plain.value.problems
