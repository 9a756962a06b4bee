"""Schema evolution check: can the current schemas read data written with the released ones?

Backward compatibility under the Avro schema resolution rules (reader = current schema, writer =
released schema), type by type, naming each breaking change with its path:
- a released named type that disappeared;
- a reader field with no writer field (by name or alias) and no default;
- a type change that is not an Avro promotion (int->long/float/double, long->float/double,
  float->double, string<->bytes), a changed logical type, a changed record/enum/fixed name or size;
- an enum symbol the writer may send that the reader lacks (unless the reader enum has a default);
- a writer union branch the reader cannot read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Breaking", "check_directories", "check_schemas", "load_directory"]

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}


@dataclass(frozen=True)
class Breaking:
    """One backward-incompatible change: where (type and field path) and what."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def load_directory(directory: Path) -> dict[str, Any]:
    """full name -> raw schema, for every *.avsc of a directory (one named type per file)."""
    out: dict[str, Any] = {}
    for path in sorted(directory.glob("*.avsc")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        full = f"{raw.get('namespace', '')}.{raw.get('name', '')}".strip(".")
        out[full] = raw
    return out


class _Checker:
    def __init__(self, writer: dict[str, Any], reader: dict[str, Any]) -> None:
        self.writer = writer
        self.reader = reader
        self.seen: set[tuple[str, str]] = set()
        self.out: list[Breaking] = []

    def resolve(self, schema: Any, names: dict[str, Any], namespace: str) -> Any:
        if isinstance(schema, str) and schema not in PRIMITIVES:
            full = schema if "." in schema else f"{namespace}.{schema}"
            return names.get(full, names.get(schema, {"type": "__unknown__", "name": schema}))
        return schema

    @staticmethod
    def kind(schema: Any) -> str:
        if isinstance(schema, list):
            return "union"
        if isinstance(schema, str):
            return schema
        t = schema.get("type")
        return t if isinstance(t, str) else "union"

    @staticmethod
    def logical(schema: Any) -> str | None:
        return schema.get("logicalType") if isinstance(schema, dict) else None

    @staticmethod
    def ref(schema: Any, ns: str) -> str | None:
        """The full name of a reference to a named type (checked on its own, not at each use)."""
        if isinstance(schema, str) and schema not in PRIMITIVES:
            return schema if "." in schema else f"{ns}.{schema}"
        return None

    def check(self, w: Any, r: Any, path: str, ns: str = "fr.gp") -> None:
        wref = self.ref(w, ns)
        rrefs = [self.ref(b, ns) for b in r] if isinstance(r, list) else [self.ref(r, ns)]
        if wref is not None and wref in self.reader and wref in rrefs:
            return
        w = self.resolve(w, self.writer, ns)
        r = self.resolve(r, self.reader, ns)
        if isinstance(w, dict) and isinstance(w.get("type"), list | dict):
            w = w["type"]
        if isinstance(r, dict) and isinstance(r.get("type"), list | dict):
            r = r["type"]
        wk, rk = self.kind(w), self.kind(r)
        if wk == "union":
            for branch in w:
                self.check(branch, r, path, ns)
            return
        if rk == "union":
            branches = [self.resolve(b, self.reader, ns) for b in r]
            same = [b for b in branches if self.kind(b) == wk and self._same_name(w, b)]
            if same:
                self.check(w, same[0], path, ns)
            elif not any(self._readable(w, b, ns) for b in branches):
                self.out.append(
                    Breaking(path, f"no branch of the reader union reads writer type {self._name(w)}"),
                )
            return
        if wk != rk:
            if wk in PROMOTIONS and rk in PROMOTIONS[wk] and self.logical(w) == self.logical(r):
                return
            self.out.append(Breaking(path, f"type changed from {self._name(w)} to {self._name(r)}"))
            return
        if self.logical(w) != self.logical(r):
            self.out.append(
                Breaking(path, f"logical type changed from {self.logical(w)} to {self.logical(r)}")
            )
        if wk == "record":
            self._record(w, r, path)
        elif wk == "enum":
            self._enum(w, r, path)
        elif wk == "array":
            self.check(w["items"], r["items"], f"{path}[]", ns)
        elif wk == "map":
            self.check(w["values"], r["values"], f"{path}{{}}", ns)
        elif wk == "fixed" and (w.get("size") != r.get("size") or not self._same_name(w, r)):
            self.out.append(Breaking(path, "fixed type renamed or resized"))
        elif wk == "__unknown__":
            self.out.append(Breaking(path, f"unknown type {w.get('name')}"))

    def _readable(self, w: Any, r: Any, ns: str) -> bool:
        probe = _Checker(self.writer, self.reader)
        probe.seen = set(self.seen)
        probe.check(w, r, "", ns)
        return not probe.out

    def _name(self, schema: Any) -> str:
        if isinstance(schema, dict):
            return str(schema.get("name") or schema.get("logicalType") or schema.get("type"))
        return str(schema)

    @staticmethod
    def _same_name(w: Any, r: Any) -> bool:
        if not (isinstance(w, dict) and isinstance(r, dict)) or "name" not in w:
            return True
        aliases = {a.rsplit(".", 1)[-1] for a in r.get("aliases", [])}
        wname = str(w["name"]).rsplit(".", 1)[-1]
        return wname == str(r.get("name", "")).rsplit(".", 1)[-1] or wname in aliases

    def _record(self, w: dict[str, Any], r: dict[str, Any], path: str) -> None:
        if not self._same_name(w, r):
            self.out.append(Breaking(path, f"record renamed from {w.get('name')} to {r.get('name')}"))
            return
        key = (str(w.get("name")), str(r.get("name")))
        if key in self.seen:
            return
        self.seen.add(key)
        ns = str(r.get("namespace") or "fr.gp")
        wfields = {f["name"]: f for f in w.get("fields", [])}
        for rf in r.get("fields", []):
            names = [rf["name"], *rf.get("aliases", [])]
            wf = next((wfields[n] for n in names if n in wfields), None)
            fpath = f"{path}.{rf['name']}"
            if wf is None:
                if "default" not in rf:
                    self.out.append(Breaking(fpath, "field added without a default"))
                continue
            self.check(wf["type"], rf["type"], fpath, ns)

    def _enum(self, w: dict[str, Any], r: dict[str, Any], path: str) -> None:
        if not self._same_name(w, r):
            self.out.append(Breaking(path, f"enum renamed from {w.get('name')} to {r.get('name')}"))
            return
        if "default" in r:
            return
        missing = [s for s in w.get("symbols", []) if s not in r.get("symbols", [])]
        if missing:
            self.out.append(Breaking(path, f"enum symbols removed: {', '.join(missing)}"))


def check_schemas(released: dict[str, Any], current: dict[str, Any]) -> list[Breaking]:
    """Every breaking change from `released` (writer) to `current` (reader), per named type."""
    out: list[Breaking] = []
    for name in sorted(released):
        if name not in current:
            out.append(Breaking(name, "type removed"))
            continue
        checker = _Checker(released, current)
        checker.check(released[name], current[name], name)
        out.extend(checker.out)
    unique: list[Breaking] = []
    for b in out:
        if b not in unique:
            unique.append(b)
    return unique


def check_directories(released: Path, current: Path) -> list[Breaking]:
    return check_schemas(load_directory(released), load_directory(current))
