"""Reading JSON inputs: one document, an array of documents, or JSON lines (one document a line)."""

from __future__ import annotations

import json
import re
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
    if data.lstrip()[:1] == b"[":
        recovered = _array_elements(data)
        if len(recovered) >= 2:
            return recovered
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


_DECODER = json.JSONDecoder()
_NEXT_ELEMENT = re.compile(r"\n[ \t]*(?=[{\[])")  # an element that starts on a new line
_SPACE = re.compile(r"[ \t\r\n]*")


def _array_elements(data: bytes) -> list[JsonPart]:
    """The elements of a JSON array that does not parse as a whole: each element that parses is a
    part; an element that does not is rejected on its own up to the next element starting on a new
    line (so one broken element of a batch does not spoil the others). [] when not applicable."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return []
    parts: list[JsonPart] = []
    pos = _SPACE.match(text, text.index("[") + 1).end()  # type: ignore[union-attr]
    while pos < len(text) and text[pos] != "]":
        index = len(parts)
        try:
            value, end = _DECODER.raw_decode(text, pos)
        except (ValueError, RecursionError):
            resume = _NEXT_ELEMENT.search(text, pos + 1)
            stop = resume.end() if resume else len(text)
            fragment = text[pos:stop].rstrip().rstrip("],").rstrip()
            problem = Problem("$", "malformed JSON (array element)")
            parts.append(JsonPart(f"$[{index}]", None, fragment.encode(), problem))
            pos = stop
            continue
        parts.append(JsonPart(f"$[{index}]", value, json.dumps(value, ensure_ascii=False).encode()))
        pos = _SPACE.match(text, end).end()  # type: ignore[union-attr]
        if text.startswith(",", pos):
            pos = _SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
        elif not text.startswith("]", pos):
            return []  # elements not separated by commas: not an array of documents
    return parts
