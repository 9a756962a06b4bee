"""Reading JSON inputs: one document, an array of documents, or JSON lines (one document a line)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.errors import Problem

__all__ = ["JsonPart", "read_json_parts"]


@dataclass(frozen=True)
class JsonPart:
    """One document of a JSON input, where it was, and its bytes when it is a part of the input."""

    locator: str
    value: Any
    fragment: bytes | None
    problem: Problem | None = None


def _loads(data: bytes | str) -> tuple[Any, Problem | None]:
    try:
        return json.loads(data), None
    except RecursionError:
        return None, Problem("$", "too deeply nested")
    except UnicodeDecodeError:
        return None, Problem("$", "not UTF-8 text")
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        return None, Problem("$", f"malformed JSON (line {line})" if line else "malformed JSON")


def read_json_parts(data: bytes) -> list[JsonPart]:
    """The documents of `data`. Malformed parts come back with their problem set."""
    if not data.strip():
        return [JsonPart("$", None, None, Problem("$", "empty input"))]
    value, problem = _loads(data)
    if problem is None:
        if isinstance(value, list):
            return [
                JsonPart(f"$[{i}]", v, json.dumps(v, ensure_ascii=False).encode())
                for i, v in enumerate(value)
            ]
        return [JsonPart("$", value, None)]
    lines = data.splitlines()
    if len([ln for ln in lines if ln.strip()]) < 2:
        return [JsonPart("$", None, None, problem)]
    parts = []  # JSON lines: each line is its own document, a bad line does not spoil the others
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        v, p = _loads(line)
        if p is not None:
            p = Problem(f"line {i}", p.reason)
        parts.append(JsonPart(f"line {i}", v, line, p))
    return parts
