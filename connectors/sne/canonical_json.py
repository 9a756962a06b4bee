"""Canonical records written as JSON (gateway.codec.avro.to_jsonable: ISO dates, decimals as strings)
read back into their decoded Avro form, guided by the schema. Used by `gateway sne send FILE.json`."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.codec.avro import load_schemas
from gateway.errors import Problem, RejectedMessage

__all__ = ["record_from_json", "schema_of"]


def schema_of(data: dict[str, Any]) -> str:
    """fr.gp.Decision when the document has a typeEvenement, else fr.gp.Demande."""
    return "fr.gp.Decision" if "typeEvenement" in data else "fr.gp.Demande"


def _named(schema: Any, out: dict[str, Any]) -> dict[str, Any]:
    """Every named type of a parsed schema (fastavro writes later uses as a bare name)."""
    if isinstance(schema, list):
        for branch in schema:
            _named(branch, out)
    elif isinstance(schema, dict):
        if "name" in schema and schema.get("type") in ("record", "enum", "fixed"):
            out.setdefault(schema["name"], schema)
        for f in schema.get("fields", []):
            _named(f["type"], out)
        if "items" in schema:
            _named(schema["items"], out)
    return out


def _convert(schema: Any, value: Any, path: str, problems: list[Problem], named: dict[str, Any]) -> Any:
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    if isinstance(schema, list):  # union: null first, then the first branch that converts
        if value is None:
            return None
        for branch in schema:
            if branch == "null":
                continue
            trial: list[Problem] = []
            converted = _convert(branch, value, path, trial, named)
            if not trial:
                return converted
        problems.append(Problem(path, "matches no branch of the union", type(value).__name__))
        return value
    if isinstance(schema, dict):
        kind = schema.get("type")
        logical = schema.get("logicalType")
        if kind == "record":
            if not isinstance(value, dict):
                problems.append(Problem(path, "object expected", type(value).__name__))
                return value
            out: dict[str, Any] = {}
            for f in schema["fields"]:
                name = f["name"]
                if name in value:
                    out[name] = _convert(f["type"], value[name], f"{path}.{name}", problems, named)
                elif "default" in f:
                    out[name] = f["default"]
                else:
                    problems.append(Problem(f"{path}.{name}", "missing"))
            return out
        if kind == "array":
            if not isinstance(value, list):
                problems.append(Problem(path, "array expected", type(value).__name__))
                return value
            return [
                _convert(schema["items"], v, f"{path}[{i}]", problems, named) for i, v in enumerate(value)
            ]
        try:
            if logical == "date" and isinstance(value, str):
                return date.fromisoformat(value)
            if logical in ("timestamp-millis", "timestamp-micros") and isinstance(value, str):
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            if logical == "decimal" and isinstance(value, str | int | float):
                return Decimal(str(value))
        except (ValueError, InvalidOperation):
            problems.append(Problem(path, f"not a valid {logical}", type(value).__name__))
            return value
        if kind == "enum":
            if value not in schema["symbols"]:
                problems.append(Problem(path, "unknown code", type(value).__name__))  # value: maybe a datum
            return value
        return _convert(kind, value, path, problems, named)
    # primitives
    expected = {
        "string": str,
        "int": int,
        "long": int,
        "boolean": bool,
        "double": (int, float),
        "float": (int, float),
        "bytes": (str, bytes),
    }.get(str(schema))
    if expected is not None and not isinstance(value, expected):  # type: ignore[arg-type]  # tuple or type
        problems.append(Problem(path, f"{schema} expected", type(value).__name__))
    return value


def record_from_json(data: Any) -> tuple[str, dict[str, Any]]:
    """(schema name, record in decoded Avro form); RejectedMessage listing every problem."""
    if not isinstance(data, dict):
        raise RejectedMessage(
            "not a canonical record", [Problem("$", "object expected", type(data).__name__)]
        )
    name = schema_of(data)
    codec = load_schemas().codec(name)
    problems: list[Problem] = []
    record = _convert(codec.parsed, data, "$", problems, _named(codec.parsed, {}))
    problems += [] if problems else codec.problems(record)
    if problems:
        raise RejectedMessage(f"not a valid {name}", problems)
    return name, record
