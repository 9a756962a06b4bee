"""Recorded outputs of the normalisers, to prove that a faster implementation changes nothing.

`variants()` yields every sample of `samples/` and many deterministic mutations of each (an element
or key removed, duplicated, emptied, given garbage text, an unknown code...): most mutations make
rejections, so problems, paths and their order are covered as well as records.
`fingerprint(outcomes)` is a type-tagged canonical text of the outputs (list subclasses,
Decimal exponents, tzinfo, problem order all count). The golden file stores, per input file, the
fingerprint of the unmutated input in full and a short digest of each variant's.

Regenerate (only from code whose outputs are the reference!):
    .venv/bin/python -m tests.unit.normalise.golden --write
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway.errors import Problem
from gateway.formats import INPUT_FORMATS
from gateway.model.canonical import CanonicalRecord
from gateway.normalise.outcome import Rejection
from lxml import etree

__all__ = ["GOLDEN", "RECEIVED_AT", "fingerprint", "normaliser", "run", "variants"]

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "samples"
GOLDEN = Path(__file__).with_name("golden_outputs.json")
RECEIVED_AT = datetime(2026, 5, 4, 12, 30, 15, 123456, tzinfo=UTC)

FORMATS = {f.name: f.normaliser for f in INPUT_FORMATS}  # the one registry of input formats
BAD_FORMATS = {f.short: f.name for f in INPUT_FORMATS}  # samples/bad/<short name>-...

TEXTS = ("", " ", "x", "-1", "0", "1,5", "1e3", "12 345", "31/12/2020", "2020-02-30", "1879-01-01",
         "2026-01-14T25:00:00", "2026-03-29T02:30:00", "true", "NaN", "99999999999999", "ZZ9",
         "Jean Dupont de la Rue", "A" * 600)  # fmt: skip
CODES = ("", " ", "ZZ9", "zz", "Jean Dupont de la Rue", "06", "T3")
JSON_VALUES: tuple[Any, ...] = (None, "", "x", -1, 1.5, True, [], {}, "ZZ9", "2020-02-30", 10**15, "A" * 600)


def normaliser(fmt: str) -> Callable[[bytes, datetime], list[Any]]:
    import importlib  # noqa: PLC0415

    module, attr = FORMATS[fmt].split(":")
    function: Callable[[bytes, datetime], list[Any]] = getattr(importlib.import_module(module), attr)
    return function


def _canon(value: Any) -> Any:
    kind = type(value)
    if value is None or kind in (str, bool, int):
        return value
    if kind is float:
        return ["float", repr(value)]
    if kind is Decimal:
        return ["Decimal", str(value)]
    if kind is datetime:
        return ["datetime", value.isoformat(), repr(value.tzinfo)]
    if kind is date:
        return ["date", value.isoformat()]
    if isinstance(value, dict):
        # key order is not compared: build_decision fills its fields from a set (order varies with
        # PYTHONHASHSEED) and the Avro encoding follows the schema's order anyway
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return ["dict" if kind is dict else kind.__name__, [[k, _canon(v)] for k, v in items]]
    if isinstance(value, list | tuple):
        return [kind.__name__, [_canon(v) for v in value]]
    if isinstance(value, Problem):
        return ["Problem", value.path, value.reason, value.value]
    if isinstance(value, Rejection):
        fragment = None if value.fragment is None else hashlib.sha256(value.fragment).hexdigest()
        return ["Rejection", _canon(value.problems), value.locator, fragment]
    if isinstance(value, CanonicalRecord):
        return ["CanonicalRecord", value.schema, value.key, _canon(value.record)]
    return ["?", kind.__name__, repr(value)]


def run(fmt: str, data: bytes) -> Any:
    try:
        return _canon(normaliser(fmt)(data, RECEIVED_AT))
    except Exception as exc:  # noqa: BLE001 - recorded as part of the behaviour
        return ["raised", type(exc).__name__]


def fingerprint(outputs: Any) -> str:
    return json.dumps(outputs, ensure_ascii=False, separators=(",", ":"))


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# -- mutations ----------------------------------------------------------------------------------
def _xml_variants(data: bytes) -> Iterator[bytes]:
    root = etree.fromstring(data)
    count = sum(1 for _ in root.iter())
    yield data.replace(b'versionInterface="02.01"', b'versionInterface="03.00"')
    yield data.replace(b'versionInterface="02.01"', b"")
    yield data.replace(b"http://nuu.application.i2/", b"urn:other")
    yield data[: len(data) // 2]
    yield data.replace(b"<entete>", b"<!-- c --><?pi x?><entete>", 1)
    body = data.split(b"?>", 1)[-1]
    yield b'<!DOCTYPE interfaceNuu [<!ENTITY x "y">]>' + body
    yield b"<!DOCTYPE interfaceNuu>" + body
    yield body.replace(b"<entete>", b"<entete>&x;", 1)
    yield body.replace(b"<entete>", b"<entete><![CDATA[ c ]]>&amp;&#233;", 1)
    yield b"\xef\xbb\xbf" + data
    yield b'<?xml version="1.0" encoding="ISO-8859-1"?>' + body.replace(b"\xc3\xa9", b"\xe9")
    yield data.replace(b"</entete>", b"</entete>\xff\xfe", 1)
    yield data.replace(b"<entete>", b"<entete xmlns:a='urn:a'><a:typeFichier>SUP</a:typeFichier>", 1)
    for i in range(1, count):
        for edit in _xml_edits(list(root.iter())[i]):
            tree = etree.fromstring(data)
            edit(list(tree.iter())[i])
            yield etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def _xml_edits(el: Any) -> list[Callable[[Any], None]]:
    """Edits of one element: removed, duplicated, an unknown child, then garbage content."""
    edits: list[Callable[[Any], None]] = [
        lambda e: e.getparent().remove(e),
        lambda e: e.addnext(copy.deepcopy(e)),
        lambda e: setattr(etree.SubElement(e, e.tag.rsplit("}", 1)[0] + "}inconnu"), "text", "1"),
    ]
    if len(el):
        edits.append(_structure_to_text)
    elif el.get("code") is not None:
        edits.extend(_setter("code", v) for v in CODES)
    else:
        edits.extend(_setter(None, v) for v in TEXTS)
    return edits


def _structure_to_text(el: Any) -> None:
    for c in list(el):
        el.remove(c)
    el.text = "x"


def _setter(attr: str | None, value: str) -> Callable[[Any], None]:
    def edit(el: Any) -> None:
        if attr is None:
            el.text = value
        else:
            el.set(attr, value)

    return edit


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))
    else:
        yield path


def _set(value: Any, path: tuple[Any, ...], new: Any, *, drop: bool = False) -> Any:
    out = copy.deepcopy(value)
    parent = out
    for k in path[:-1]:
        parent = parent[k]
    if drop:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return out


def _json_doc_variants(doc: Any) -> Iterator[Any]:
    for path in _leaves(doc):
        if not path:
            continue
        leaf = doc
        for k in path:
            leaf = leaf[k]
        if isinstance(leaf, str) and leaf.startswith("{"):  # JSON inside a string (CDC `donnees`)
            try:
                inner = json.loads(leaf)
            except ValueError:
                inner = None
            if isinstance(inner, dict):
                for v in _json_doc_variants(inner):
                    yield _set(doc, path, json.dumps(v, ensure_ascii=False))
        for new in JSON_VALUES:
            yield _set(doc, path, new)
        if isinstance(path[-1], str):
            yield _set(doc, path, None, drop=True)


def _json_variants(data: bytes, name: str) -> Iterator[bytes]:
    if name.endswith(".jsonl"):
        lines = [json.loads(line) for line in data.splitlines() if line.strip()]
        for v in _json_doc_variants(lines):
            yield "\n".join(json.dumps(x, ensure_ascii=False) for x in v).encode()
    else:
        for v in _json_doc_variants(json.loads(data)):
            yield json.dumps(v, ensure_ascii=False).encode()


def _csv_variants(data: bytes) -> Iterator[bytes]:
    text = data.decode("utf-8-sig")
    lines = text.splitlines()
    for li in range(1, len(lines)):
        cells = lines[li].split(";")
        for ci in range(len(cells)):
            for new in ("", "x", "-1", "31/02/2026", "Z" * 300):
                changed = [*cells[:ci], new, *cells[ci + 1 :]]
                yield "\n".join([*lines[:li], ";".join(changed), *lines[li + 1 :]]).encode()


def inputs() -> list[tuple[str, str, bytes]]:
    """(name, format, bytes) of every sample."""
    out = []
    for path in sorted(SAMPLES.glob("*/*")):
        fmt = BAD_FORMATS[path.name.split("-", 1)[0]] if path.parent.name == "bad" else path.parent.name
        out.append((f"{path.parent.name}/{path.name}", fmt, path.read_bytes()))
    return out


def variants(name: str, fmt: str, data: bytes) -> Iterator[bytes]:
    """Mutations of one sample (deterministic, always in the same order)."""
    if fmt == "sne-xml":
        try:
            etree.fromstring(data)
        except etree.XMLSyntaxError:
            return
        yield from _xml_variants(data)
    elif fmt == "cal-csv":
        yield from _csv_variants(data)
    else:
        try:
            json.loads(data) if not name.endswith(".jsonl") else [json.loads(x) for x in data.splitlines()]
        except ValueError:
            return
        yield from _json_variants(data, name)


def record() -> dict[str, Any]:
    golden: dict[str, Any] = {}
    for name, fmt, data in inputs():
        golden[name] = {
            "format": fmt,
            "outputs": run(fmt, data),
            "variants": [digest(fingerprint(run(fmt, v))) for v in variants(name, fmt, data)],
        }
    return golden


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit("usage: python -m tests.unit.normalise.golden --write")
    result = record()
    GOLDEN.write_text(json.dumps(result, ensure_ascii=False, indent=0, sort_keys=True) + "\n")
    print(GOLDEN, sum(len(v["variants"]) for v in result.values()), "variants")
