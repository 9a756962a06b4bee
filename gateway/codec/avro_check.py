"""Why a value does not fit an Avro schema, as Problems naming field paths (never the value).

`schema_problems(parsed, value, root)` follows fastavro's validator rule for rule (same Python
types accepted, logical types converted first with fastavro's own converters, missing fields
taken from their default, then null), but instead of a yes/no it lists every leaf that does not
fit, under a path such as ``demandeur.revenuFiscal.montantMoins1`` or ``personnesACharge[1].sexe``.
A Problem's value is the offending value's type name only. Only the error path uses it.
"""

from __future__ import annotations

import array
import numbers
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from fastavro.logical_writers import LOGICAL_WRITERS

from gateway.codec.avro_write import INT_MAX, INT_MIN, LONG_MAX, LONG_MIN, PRIMITIVES
from gateway.errors import Problem

__all__ = ["schema_problems"]

MISSING = "missing (required field without a default)"


def schema_problems(parsed: Any, value: Any, root: str) -> list[Problem]:
    """Every leaf of `value` that does not fit `parsed` (a fastavro-parsed schema); [] if it fits."""
    named: dict[str, Any] = dict(parsed.get("__named_schemas") or {}) if isinstance(parsed, dict) else {}
    out: list[Problem] = []
    _Checker(named, root).check(parsed, value, "", out)
    return out


def _type_name(value: Any) -> str:
    return type(value).__name__


class _Checker:
    def __init__(self, named: dict[str, Any], root: str) -> None:
        self.named = named
        self.root = root

    def check(self, schema: Any, value: Any, path: str, out: list[Problem]) -> None:
        where = path or self.root
        if isinstance(schema, str) and schema not in PRIMITIVES:
            if schema not in self.named:
                out.append(Problem(where, f"unknown type {schema}"))
                return
            schema = self.named[schema]
        if isinstance(schema, list):
            self.check_union(schema, value, path, out)
            return
        if isinstance(schema, str):
            self.check_primitive(schema, value, where, out)
            return
        if not isinstance(schema, dict):
            out.append(Problem(where, "unusable schema"))
            return
        kind = schema.get("type")
        if isinstance(kind, dict | list):
            self.check(kind, value, path, out)
            return
        if isinstance(schema.get("name"), str):
            self.named.setdefault(schema["name"], schema)
        logical = schema.get("logicalType")
        prepare = LOGICAL_WRITERS.get(f"{kind}-{logical}") if logical else None
        if prepare is not None:
            is_decimal = isinstance(value, Decimal) and kind == "bytes"
            if is_decimal and not self.decimal_fits(schema, value, where, out):
                return
            try:
                value = prepare(value, schema)
            except Exception:  # noqa: BLE001 - fastavro's converters raise assorted errors; the message may quote the value
                out.append(Problem(where, f"not convertible to {logical}", _type_name(value)))
                return
        self.check_kind(schema, str(kind), value, path, out)

    def check_kind(
        self, schema: dict[str, Any], kind: str, value: Any, path: str, out: list[Problem]
    ) -> None:
        where = path or self.root
        if kind in PRIMITIVES:
            self.check_primitive(kind, value, where, out)
        elif kind in ("record", "error", "request"):
            self.check_record(schema, value, path, out)
        elif kind == "enum":
            try:
                ok = value in schema["symbols"]
            except Exception:  # noqa: BLE001 - an odd object's __eq__
                ok = False
            if not ok:
                enum = schema.get("name", "the enum")
                out.append(Problem(where, f"not a symbol of {enum}", _type_name(value)))
        elif kind == "fixed":
            if not isinstance(value, bytes | bytearray) or len(value) != schema["size"]:
                out.append(Problem(where, f"expected {schema['size']} bytes (fixed)", _type_name(value)))
        elif kind == "array":
            if not isinstance(value, Sequence | array.array) or isinstance(value, str):
                out.append(Problem(where, "expected an array", _type_name(value)))
                return
            for i, item in enumerate(value):
                self.check(schema["items"], item, f"{where}[{i}]", out)
        elif kind == "map":
            if not isinstance(value, Mapping):
                out.append(Problem(where, "expected a map", _type_name(value)))
                return
            for i, (key, item) in enumerate(value.items()):  # keys may be personal: positions only
                if not isinstance(key, str):
                    out.append(Problem(where, "map key is not a string", _type_name(key)))
                self.check(schema["values"], item, f"{where}{{#{i}}}", out)
        else:
            out.append(Problem(where, f"unknown type {kind}"))

    def decimal_fits(self, schema: dict[str, Any], value: Decimal, where: str, out: list[Problem]) -> bool:
        precision, scale = schema.get("precision"), schema.get("scale", 0)
        kind = f"decimal({precision},{scale})"
        if not value.is_finite():
            out.append(Problem(where, f"not a finite number ({kind})", "Decimal"))
            return False
        _, digits, exponent = value.as_tuple()
        if isinstance(precision, int) and len(digits) > precision:
            out.append(Problem(where, f"more digits than the precision of {kind}", "Decimal"))
            return False
        if isinstance(scale, int) and isinstance(exponent, int) and exponent + scale < 0:
            out.append(Problem(where, f"more decimal places than the scale of {kind}", "Decimal"))
            return False
        return True

    def check_primitive(self, kind: str, value: Any, where: str, out: list[Problem]) -> None:
        ok: bool
        if kind == "null":
            ok = value is None
        elif kind == "boolean":
            ok = isinstance(value, bool)
        elif kind == "string":
            ok = isinstance(value, str)
        elif kind == "bytes":
            ok = isinstance(value, bytes | bytearray)
        elif kind in ("int", "long"):
            if not isinstance(value, int | numbers.Integral) or isinstance(value, bool):
                ok = False
            else:
                lo, hi = (INT_MIN, INT_MAX) if kind == "int" else (LONG_MIN, LONG_MAX)
                number: Any = value
                if not lo <= number <= hi:
                    out.append(Problem(where, f"out of range for {kind}", _type_name(value)))
                return
        else:  # float, double
            ok = isinstance(value, int | float | numbers.Real) and not isinstance(value, bool)
        if not ok:
            reason = "null where a value is required" if value is None else f"expected {kind}"
            out.append(Problem(where, reason, _type_name(value)))

    def check_record(self, schema: dict[str, Any], value: Any, path: str, out: list[Problem]) -> None:
        where = path or self.root
        name = schema.get("name", "record")
        if not isinstance(value, Mapping):
            reason = "null where a record is required" if value is None else f"expected a record {name}"
            out.append(Problem(where, reason, _type_name(value)))
            return
        if "-type" in value and value["-type"] != name:
            out.append(Problem(where, f"-type does not name {name}"))
            return
        for field in schema["fields"]:
            fname = field["name"]
            sub = f"{path}.{fname}" if path else fname
            if fname not in value and "default" not in field:
                before = len(out)
                self.check(field["type"], None, sub, out)
                if len(out) > before:  # null does not fit: say the field is missing
                    del out[before:]
                    out.append(Problem(sub, MISSING))
                continue
            self.check(field["type"], value.get(fname, field.get("default")), sub, out)

    def check_union(self, schema: list[Any], value: Any, path: str, out: list[Problem]) -> None:
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):  # tuple notation
            for branch in schema:
                resolved = self.named.get(branch, branch) if isinstance(branch, str) else branch
                is_record = isinstance(resolved, dict) and resolved.get("type") == "record"
                label = resolved.get("name") if is_record else branch
                if label == value[0]:
                    self.check(branch, value[1], path, out)
                    return
            out.append(Problem(path or self.root, "tuple names no branch of the union", "tuple"))
            return
        for branch in schema:
            trial: list[Problem] = []
            self.check(branch, value, path, trial)
            if not trial:
                return
        others = [b for b in schema if b != "null"]
        if len(others) == 1:  # [null, T]: say what is wrong inside the T
            self.check(others[0], value, path, out)
        else:
            out.append(Problem(path or self.root, "fits no branch of the union", _type_name(value)))
