from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import fastavro
import pytest
from gateway.codec.compat import check_directories, check_schemas, load_directory
from gateway.model.canonical import CanonicalRecord
from gateway.normalise import normalise

ROOT = Path(__file__).resolve().parents[2]
AVRO = ROOT / "schemas" / "avro"
RELEASED = ROOT / "schemas" / "released"


def rec(fields: list[dict[str, Any]], name: str = "R") -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "t", "fields": fields}


def breaking(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [str(b) for b in check_schemas(old, new)]


BASE = {
    "t.E": {"type": "enum", "name": "E", "namespace": "t", "symbols": ["A", "B"]},
    "t.R": rec(
        [
            {"name": "i", "type": "int"},
            {"name": "s", "type": ["null", "string"], "default": None},
            {"name": "e", "type": "t.E"},
            {"name": "d", "type": {"type": "int", "logicalType": "date"}},
            {"name": "xs", "type": {"type": "array", "items": "long"}, "default": []},
        ]
    ),
}


def changed(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    new = copy.deepcopy(BASE)
    target: Any = new
    for k in path[:-1]:
        target = target[int(k)] if isinstance(target, list) else target[k]
    target[path[-1]] = value
    return new


def test_identical_schemas_are_compatible() -> None:
    assert breaking(BASE, copy.deepcopy(BASE)) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("t.R", "fields", "0", "type"), "long"),  # promotion
        (("t.R", "fields", "0", "type"), "double"),
        (("t.R", "fields", "1", "type"), ["null", "string", "int"]),  # union widened
        (("t.E", "symbols"), ["A", "B", "C"]),  # enum symbol added
        (("t.R", "fields", "4", "type"), {"type": "array", "items": "double"}),
    ],
)
def test_compatible_changes(path: tuple[str, ...], value: Any) -> None:
    assert breaking(BASE, changed(path, value)) == []


def test_field_added_with_default_is_compatible_without_is_not() -> None:
    new = copy.deepcopy(BASE)
    new["t.R"]["fields"].append({"name": "n", "type": ["null", "int"], "default": None})
    assert breaking(BASE, new) == []
    new["t.R"]["fields"].append({"name": "m", "type": "string"})
    assert breaking(BASE, new) == ["t.R.m: field added without a default"]


def test_field_removed_is_compatible_renamed_without_alias_is_not() -> None:
    new = copy.deepcopy(BASE)
    del new["t.R"]["fields"][1]
    assert breaking(BASE, new) == []
    new["t.R"]["fields"][0]["name"] = "entier"
    assert breaking(BASE, new) == ["t.R.entier: field added without a default"]
    new["t.R"]["fields"][0]["aliases"] = ["i"]
    assert breaking(BASE, new) == []


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("t.R", "fields", "0", "type"), "string", "t.R.i: type changed from int to string"),
        (("t.R", "fields", "1", "type"), "string", "t.R.s: type changed from null to string"),
        (("t.E", "symbols"), ["A"], "t.E: enum symbols removed: B"),
        (
            ("t.R", "fields", "3", "type"),
            {"type": "long", "logicalType": "timestamp-millis"},
            "t.R.d: type changed from date to timestamp-millis",
        ),
        (
            ("t.R", "fields", "4", "type"),
            {"type": "array", "items": "int"},
            "t.R.xs[]: type changed from long to int",
        ),
    ],
)
def test_breaking_changes_are_named(path: tuple[str, ...], value: Any, expected: str) -> None:
    assert expected in breaking(BASE, changed(path, value))


def test_enum_with_default_tolerates_removed_symbols_and_removed_type_is_breaking() -> None:
    new = changed(("t.E", "symbols"), ["A"])
    new["t.E"]["default"] = "A"
    assert breaking(BASE, new) == []
    del new["t.E"]
    assert "t.E: type removed" in breaking(BASE, new)


def test_the_repository_schemas_are_compatible_with_the_released_baseline() -> None:
    assert check_directories(RELEASED, AVRO) == []
    assert set(load_directory(RELEASED)) <= set(load_directory(AVRO))


def test_fastavro_reads_released_data_with_current_schemas() -> None:
    """Cross-check of the structural rules with fastavro's own schema resolution."""
    samples = [
        ("sne-xml", ROOT / "samples" / "sne-xml" / "demande-cre-famille-rennes.xml"),
        ("sne-xml", ROOT / "samples" / "sne-xml" / "demande-rad-attribution-rennes.xml"),
        ("cdc-json", ROOT / "samples" / "cdc-json" / "erp-nantes-evenements.jsonl"),
    ]
    for fmt, path in samples:
        for out in normalise(fmt, path.read_bytes()):
            assert isinstance(out, CanonicalRecord)
            writer = fastavro.schema.load_schema(str(RELEASED / f"{out.schema}.avsc"))
            reader = fastavro.schema.load_schema(str(AVRO / f"{out.schema}.avsc"))
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, writer, out.record)
            buf.seek(0)
            back = fastavro.schemaless_reader(buf, writer, reader)
            again = io.BytesIO()  # nothing the released schema carries is lost or changed
            fastavro.schemaless_writer(again, writer, back)
            assert again.getvalue() == buf.getvalue()
