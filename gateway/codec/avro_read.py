"""Fast Avro reader: a parsed schema compiled once into plain Python functions.

`compile_reader(parsed)` turns a fastavro-parsed writer schema into a function
``(data, pos) -> (value, end)`` that reads one value of that schema from `data` (bytes) starting at
`pos`, and gives what ``fastavro.schemaless_reader(..., return_record_name=False)`` gives for the
same bytes: dict records (fields in schema order), enum symbols, the branch's value for unions, lists,
dicts, and fastavro's own logical readers (dates, timestamps, decimals, uuids, times) for logical
types. It reads a sink's views about twice as fast as fastavro's generic reader, which looks its way
through the schema for every value; the compiled one knows each field's type when it is built.

Malformed bytes (truncated, an index out of range, a negative length, invalid UTF-8) raise an
exception (IndexError, ValueError, struct.error, UnicodeDecodeError...), as fastavro does; the codec
wraps it (AvroCodec.decode). Schemas with a construct it does not compile raise `Unsupported`: the
codec then reads with fastavro. Recursive records are fine (one function per named record).

Generated code only ever holds identifiers it made up (``_v3``, ``_r2``...) and `repr` literals of
field names; every schema value it needs (symbols, logical readers) is passed as a constant.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastavro.logical_readers import LOGICAL_READERS

from gateway.codec.avro_compile import PRIMITIVES, CompilerBase

__all__ = ["Reader", "Unsupported", "compile_reader"]

Reader = Callable[[bytes, int], tuple[Any, int]]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAYS_SHIFT = date(1970, 1, 1).toordinal()


class Unsupported(Exception):
    """The schema uses a construct the fast reader does not compile (read with fastavro)."""


class BadData(ValueError):
    """The bytes are not a value of the schema (an index out of range, a length past the end)."""


def _long_tail(d: bytes, p: int, b: int) -> tuple[int, int]:
    """The rest of a variable-length zig-zag long whose first byte `b` (>= 0x80) was read."""
    n = b & 0x7F
    shift = 7
    while True:
        b = d[p]
        p += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return (n >> 1) ^ -(n & 1), p
        shift += 7
        if shift > 63:
            raise BadData("varint longer than 10 bytes")


class _Compiler(CompilerBase):
    unsupported = Unsupported

    def __init__(self, named: dict[str, Any]) -> None:
        super().__init__(
            named,
            {
                "_tail": _long_tail,
                "_Bad": BadData,
                "_f32": struct.Struct("<f").unpack_from,
                "_f64": struct.Struct("<d").unpack_from,
                "_ordinal": date.fromordinal,
                "_epoch": _EPOCH,
                "_td": timedelta,
            },
        )

    # ---- lines that read one value into local `v` (d: the bytes, p: the position, L: len(d)) -----
    @staticmethod
    def long(v: str, out: list[str], ind: str) -> None:
        out += [
            f"{ind}{v} = d[p]",
            f"{ind}p += 1",
            f"{ind}if {v} > 127: {v}, p = _tail(d, p, {v})",
            f"{ind}else: {v} = ({v} >> 1) ^ -({v} & 1)",
        ]

    def sized(self, v: str, out: list[str], ind: str) -> None:
        """`v` = the next length-prefixed bytes."""
        n = self.fresh("_n")
        self.long(n, out, ind)
        out += [
            f"{ind}if {n} < 0 or p + {n} > L: raise _Bad('length past the end')",
            f"{ind}{v} = d[p:p + {n}]",
            f"{ind}p += {n}",
        ]

    def emit(self, schema: Any, v: str, out: list[str], ind: str) -> None:
        schema = self.resolve(schema)
        if isinstance(schema, list):
            self.emit_union(schema, v, out, ind)
        elif isinstance(schema, str):
            self.emit_primitive(schema, v, out, ind)
        elif isinstance(schema, dict):
            kind = schema.get("type")
            if not isinstance(kind, str):
                raise Unsupported("nested type definition")
            logical = schema.get("logicalType")
            key = f"{kind}-{logical}"
            if logical and key in LOGICAL_READERS:
                self.emit_logical(key, schema, v, out, ind)
            elif kind in PRIMITIVES:
                self.emit_primitive(kind, v, out, ind)
            elif kind in ("record", "error"):
                out.append(f"{ind}{v}, p = {self.record_fn(schema)}(d, p, L)")
            elif kind == "enum":
                self.emit_enum(schema["symbols"], v, out, ind)
            elif kind == "fixed":
                size = int(schema["size"])
                out += [
                    f"{ind}if p + {size} > L: raise _Bad('fixed past the end')",
                    f"{ind}{v} = d[p:p + {size}]",
                    f"{ind}p += {size}",
                ]
            elif kind == "array":
                self.emit_array(schema["items"], v, out, ind)
            elif kind == "map":
                self.emit_map(schema["values"], v, out, ind)
            else:
                raise Unsupported(f"type {kind}")
        else:
            raise Unsupported(type(schema).__name__)

    def emit_primitive(self, kind: str, v: str, out: list[str], ind: str) -> None:
        if kind == "null":
            out.append(f"{ind}{v} = None")
        elif kind == "boolean":
            out += [f"{ind}{v} = d[p] != 0", f"{ind}p += 1"]  # fastavro: any byte but 0 is true
        elif kind in ("int", "long"):
            self.long(v, out, ind)
        elif kind == "float":
            out += [f"{ind}{v}, = _f32(d, p)", f"{ind}p += 4"]
        elif kind == "double":
            out += [f"{ind}{v}, = _f64(d, p)", f"{ind}p += 8"]
        elif kind == "bytes":
            self.sized(v, out, ind)
        elif kind == "string":
            self.sized(v, out, ind)
            out.append(f"{ind}{v} = {v}.decode()")
        else:
            raise Unsupported(kind)

    def emit_logical(self, key: str, schema: dict[str, Any], v: str, out: list[str], ind: str) -> None:
        base = {k: val for k, val in schema.items() if k != "logicalType"}
        self.emit(base, v, out, ind)
        if key == "int-date":  # fastavro: date.fromordinal(days + DAYS_SHIFT)
            out.append(f"{ind}{v} = _ordinal({v} + {_DAYS_SHIFT})")
        elif key == "long-timestamp-millis":  # fastavro: epoch + timedelta(microseconds=ms * 1000)
            out.append(f"{ind}{v} = _epoch + _td(microseconds={v} * 1000)")
        else:  # fastavro's own reader, with the schema it is given
            reader, node = self.const(LOGICAL_READERS[key]), self.const(schema)
            out.append(f"{ind}{v} = {reader}({v}, {node}, None)")

    def emit_enum(self, symbols: list[str], v: str, out: list[str], ind: str) -> None:
        if len(symbols) > 64:
            table = self.const(tuple(symbols))
            self.long(v, out, ind)
            out += [
                f"{ind}if not 0 <= {v} < {len(symbols)}: raise _Bad('enum index')",
                f"{ind}{v} = {table}[{v}]",
            ]
            return
        # one byte: the zig-zag of index i is 2i; any other byte is not an index of this enum
        by_byte: list[str | None] = [None] * 256
        for i, symbol in enumerate(symbols):
            by_byte[2 * i] = symbol
        table = self.const(tuple(by_byte))
        out += [
            f"{ind}{v} = {table}[d[p]]",
            f"{ind}p += 1",
            f"{ind}if {v} is None: raise _Bad('enum index')",
        ]

    def emit_union(self, branches: list[Any], v: str, out: list[str], ind: str) -> None:
        if len(branches) > 64:
            raise Unsupported("union of more than 64 branches")
        # one byte: the zig-zag of branch index i is 2i
        i = self.fresh("_u")
        out += [f"{ind}{i} = d[p]", f"{ind}p += 1"]
        for n, branch in enumerate(branches):
            out.append(f"{ind}{'if' if n == 0 else 'elif'} {i} == {2 * n}:")
            self.emit(branch, v, out, ind + "    ")
        out.append(f"{ind}else: raise _Bad('union index')")

    def emit_blocks(self, v: str, out: list[str], ind: str) -> str:
        """The loop header over the items of an array or map; returns the inner indentation."""
        n = self.fresh("_c")
        out.append(f"{ind}while True:")
        self.long(n, out, ind + "    ")
        out.append(f"{ind}    if {n} == 0: break")
        out.append(f"{ind}    if {n} < 0:")  # a block given with its size in bytes
        out.append(f"{ind}        {n} = -{n}")
        self.long(self.fresh("_s"), out, ind + "        ")
        out.append(f"{ind}    for _ in range({n}):")
        return ind + "        "

    def emit_array(self, items: Any, v: str, out: list[str], ind: str) -> None:
        out.append(f"{ind}{v} = []")
        inner = self.emit_blocks(v, out, ind)
        x = self.fresh("_x")
        self.emit(items, x, out, inner)
        out.append(f"{inner}{v}.append({x})")

    def emit_map(self, values: Any, v: str, out: list[str], ind: str) -> None:
        out.append(f"{ind}{v} = {{}}")
        inner = self.emit_blocks(v, out, ind)
        k, x = self.fresh("_mk"), self.fresh("_x")
        self.emit("string", k, out, inner)
        self.emit(values, x, out, inner)
        out.append(f"{inner}{v}[{k}] = {x}")

    def record_fn(self, schema: dict[str, Any]) -> str:
        name = str(schema.get("name") or "")
        if name and name in self.record_fns:
            return self.record_fns[name]
        fn = self.fresh("_r")
        if name:
            self.record_fns[name] = fn  # before the body: recursive records call it
        body: list[str] = []
        parts = []
        for f in schema.get("fields", []):
            v = self.fresh("_v")
            self.emit(f["type"], v, body, "    ")
            parts.append(f"{f['name']!r}: {v}")
        lines = [f"def {fn}(d, p, L):", *body, f"    return {{{', '.join(parts)}}}, p"]
        self.sources.append("\n".join(lines))
        return fn


def _named(schema: Any, out: dict[str, Any]) -> None:
    """Named types of a parsed schema, by full name (defined at their first use)."""
    if isinstance(schema, list):
        for s in schema:
            _named(s, out)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "error", "enum", "fixed") and "name" in schema:
            out.setdefault(schema["name"], schema)
        for f in schema.get("fields", []) or []:
            _named(f.get("type"), out)
        for k in ("items", "values"):
            if k in schema:
                _named(schema[k], out)


def compile_reader(parsed: Any) -> Reader:
    """A function reading one value of the fastavro-parsed schema `parsed`: ``(data, pos) ->
    (value, end)``. Raises Unsupported for a schema it does not compile."""
    named: dict[str, Any] = {}
    _named(parsed, named)
    compiler = _Compiler(named)
    body: list[str] = []
    compiler.emit(parsed, "v", body, "    ")
    top = ["def _read(d, p):", "    L = len(d)", *body, "    return v, p"]
    source = "\n\n".join([*compiler.sources, "\n".join(top)])
    scope: dict[str, Any] = dict(compiler.consts)
    exec(compile(source, "<avro reader>", "exec"), scope)  # noqa: S102 - code built above, no schema text in it
    reader: Reader = scope["_read"]
    return reader
