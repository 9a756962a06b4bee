"""Fast checked Avro writer: a parsed schema compiled once into plain Python functions.

`compile_writer(parsed)` turns a fastavro-parsed schema into a function ``value -> bytes`` that
checks each value while it writes it and produces the same bytes as ``fastavro.schemaless_writer``.
It is deliberately *stricter* than fastavro's validator: it takes only the plain Python types the
normalisers produce (``dict`` records, ``list`` arrays, ``str``, ``int``, ``bool``, ``float``,
``bytes``, ``Decimal``, ``date``, aware ``datetime``...). Anything else (a value that does not fit,
a ``Mapping`` that is not a dict, a naive datetime, a union in tuple notation, a decimal written with
an exponent...) raises `FastPathMiss` (or, rarely, another exception) and the caller goes the
reference way: fastavro's validator decides, fastavro's writer writes. So the fast path never
accepts a record fastavro would refuse, and never writes other bytes than fastavro for the records
it takes (both are checked by tests/unit/codec/).

Schemas with a construct it does not compile (unions other than [null, T] / [T, null], fixed-decimal,
a logical type it does not know fastavro to convert) raise `Unsupported`: the codec then always
goes the reference way. Recursive records are fine (one function per named record).

Generated code only ever holds identifiers it made up (``_v3``, ``_r2``...) and `repr` literals of
field names; every schema value it needs (defaults, enum tables, limits) is passed as a constant.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

from fastavro.logical_writers import LOGICAL_WRITERS

from gateway.codec.avro_compile import PRIMITIVES, CompilerBase

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "LONG_MAX",
    "LONG_MIN",
    "PRIMITIVES",
    "FastPathMiss",
    "Unsupported",
    "Writer",
    "compile_writer",
    "zigzag",
]

Writer = Callable[[Any], bytes]

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAYS_SHIFT = date(1970, 1, 1).toordinal()
# logical types fastavro converts before writing ("<type>-<logicalType>"; it ignores the others):
# one of them that emit_logical does not know makes the schema Unsupported
FASTAVRO_LOGICAL = frozenset(LOGICAL_WRITERS)


class Unsupported(Exception):
    """The schema uses a construct the fast writer does not compile (use fastavro)."""


class FastPathMiss(Exception):
    """This value is not one the fast path takes: let fastavro validate and write it."""


def _zigzag_uncached(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [_zigzag_uncached(n) for n in range(-64, 64)]
_BYTE = [bytes((i,)) for i in range(256)]
_LOW7 = [bytes((i | 0x80,)) for i in range(128)]  # a low 7-bit group with its continuation bit
_LOW14 = [bytes(((i & 0x7F) | 0x80, (i >> 7) | 0x80)) for i in range(1 << 14)]  # two such groups


def zigzag(n: int) -> bytes:
    """Avro int/long: zig-zag then variable-length (n: an int within the long range).

    Tables of byte groups, not a cache of values seen (those are dates of birth, amounts...)."""
    if -64 <= n < 64:
        return _SMALL[n + 64]
    z = (n << 1) ^ (n >> 63)
    if z < 0x4000:  # two bytes: lengths, years, small amounts
        return _LOW7[z & 0x7F] + _BYTE[z >> 7]
    if z < 0x200000:  # three bytes: dates (days since 1970 within ±2870 years)
        return _LOW14[z & 0x3FFF] + _BYTE[z >> 14]
    out = b""  # timestamps: 14 bits at a time
    while z >= 0x4000:
        out += _LOW14[z & 0x3FFF]
        z >>= 14
    if z >= 0x80:
        return out + _LOW7[z & 0x7F] + _BYTE[z >> 7]
    return out + _BYTE[z]


def _decimal(o: bytearray, v: Decimal, limit: int, scale: int, powers: tuple[int, ...]) -> None:
    """Append the length-prefixed two's complement of the unscaled value (fastavro's
    prepare_bytes_decimal, then bytes).

    Plain notation (``str(v)`` has exactly -exponent digits after the point) is read from the
    text; exponent notation (e.g. ``0E-2``, which is how fastavro decodes a zero amount) from
    ``as_tuple()``; NaN or infinity: FastPathMiss, the caller goes the reference way."""
    text = str(v)
    point = text.find(".")
    places = 0 if point < 0 else len(text) - point - 1
    if places > scale:  # fastavro: exponent + scale < 0
        raise FastPathMiss
    try:
        coef = int(text.replace(".", "", 1) if places else text)
    except ValueError:  # exponent notation, NaN, infinity
        coef, places = _exponent_form(v, scale)
    if not -limit < coef < limit:  # fastavro: more digits than the precision
        raise FastPathMiss
    unscaled = coef * powers[scale - places]
    size = (unscaled.bit_length() + 8) >> 3
    if size < 64:
        o.append(size << 1)
    else:
        o += zigzag(size)
    o += unscaled.to_bytes(size, "big", signed=True)


def _exponent_form(v: Decimal, scale: int) -> tuple[int, int]:
    """(signed coefficient, places after the point) of a finite Decimal in exponent notation."""
    if not v.is_finite():
        raise FastPathMiss
    sign, digits, exponent = v.as_tuple()
    places = -int(exponent)
    if places > scale:  # fastavro: exponent + scale < 0
        raise FastPathMiss
    coef = int("".join(map(str, digits)))
    if places < 0:  # e.g. 1E+3: whole units
        coef *= 10**-places
        places = 0
    return (-coef if sign else coef), places


def _time_millis(v: time) -> int:
    return int(v.hour * 3_600_000 + v.minute * 60_000 + v.second * 1000 + int(v.microsecond / 1000))


def _time_micros(v: time) -> int:
    return int(v.hour * 3_600_000_000 + v.minute * 60_000_000 + v.second * 1_000_000 + v.microsecond)


class _Compiler(CompilerBase):
    unsupported = Unsupported

    def emit(self, schema: Any, v: str, out: list[str], ind: str) -> None:
        """Lines that check the value in local `v` and append its encoding to bytearray `o`."""
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
            if logical and key in FASTAVRO_LOGICAL:
                self.emit_logical(key, schema, v, out, ind)
            elif kind in PRIMITIVES:
                self.emit_primitive(kind, v, out, ind)
            elif kind in ("record", "error"):
                out.append(f"{ind}{self.record_fn(schema)}({v}, o)")
            elif kind == "enum":
                self.emit_enum(schema, b"", v, out, ind)
            elif kind == "fixed":
                size = int(schema["size"])
                out += [
                    f"{ind}if type({v}) is not bytes or len({v}) != {size}: raise _Miss",
                    f"{ind}o += {v}",
                ]
            elif kind == "array":
                item, n = self.fresh("_v"), self.fresh("_n")
                out += [
                    f"{ind}if type({v}) is not list: raise _Miss",
                    f"{ind}{n} = len({v})",
                    f"{ind}if {n}:",
                    f"{ind}    if {n} < 64: o.append({n} << 1)",
                    f"{ind}    else: o += _zz({n})",
                    f"{ind}    for {item} in {v}:",
                ]
                self.emit(schema["items"], item, out, ind + "        ")
                out.append(f"{ind}o.append(0)")
            elif kind == "map":
                key_var, item, n = self.fresh("_m"), self.fresh("_v"), self.fresh("_n")
                out += [
                    f"{ind}if type({v}) is not dict: raise _Miss",
                    f"{ind}{n} = len({v})",
                    f"{ind}if {n}:",
                    f"{ind}    if {n} < 64: o.append({n} << 1)",
                    f"{ind}    else: o += _zz({n})",
                    f"{ind}    for {key_var}, {item} in {v}.items():",
                ]
                self.emit_primitive("string", key_var, out, ind + "        ")
                self.emit(schema["values"], item, out, ind + "        ")
                out.append(f"{ind}o.append(0)")
            else:
                raise Unsupported(f"type {kind}")
        else:
            raise Unsupported("schema of an unexpected shape")

    def emit_enum(self, schema: dict[str, Any], prefix: bytes, v: str, out: list[str], ind: str) -> None:
        """The symbol's index (after `prefix`, a union branch index) looked up in one table."""
        table: dict[str, bytes] = {}
        for i, symbol in enumerate(schema["symbols"]):
            table.setdefault(symbol, prefix + zigzag(i))
        t = self.const(table)
        x = self.fresh("_x")
        out += [f"{ind}{x} = {t}.get({v})", f"{ind}if {x} is None: raise _Miss", f"{ind}o += {x}"]

    def emit_primitive(self, kind: str, v: str, out: list[str], ind: str) -> None:
        if kind == "null":
            out.append(f"{ind}if {v} is not None: raise _Miss")
        elif kind == "boolean":
            out += [
                f"{ind}if {v} is True: o.append(1)",
                f"{ind}elif {v} is False: o.append(0)",
                f"{ind}else: raise _Miss",
            ]
        elif kind in ("int", "long"):
            lo, hi = (INT_MIN, INT_MAX) if kind == "int" else (LONG_MIN, LONG_MAX)
            out += [
                f"{ind}if type({v}) is not int: raise _Miss",
                f"{ind}if 0 <= {v} < 64: o.append({v} << 1)",
                f"{ind}elif {lo} <= {v} <= {hi}: o += _zz({v})",
                f"{ind}else: raise _Miss",
            ]
        elif kind in ("float", "double"):
            pack = "_pf" if kind == "float" else "_pd"  # struct raises where C would overflow: reference way
            out += [
                f"{ind}if type({v}) is not float and type({v}) is not int: raise _Miss",
                f"{ind}o += {pack}({v})",
            ]
        elif kind in ("string", "bytes"):
            b = self.fresh("_b")
            n = self.fresh("_n")
            if kind == "string":
                out += [f"{ind}if type({v}) is not str: raise _Miss", f"{ind}{b} = {v}.encode()"]
            else:
                out += [f"{ind}if type({v}) is not bytes: raise _Miss", f"{ind}{b} = {v}"]
            out += [
                f"{ind}{n} = len({b})",
                f"{ind}if {n} < 64: o.append({n} << 1)",
                f"{ind}else: o += _zz({n})",
                f"{ind}o += {b}",
            ]
        else:
            raise Unsupported(f"primitive {kind}")

    def emit_logical(self, key: str, schema: dict[str, Any], v: str, out: list[str], ind: str) -> None:
        t = self.fresh("_t")
        if key == "bytes-decimal":
            precision, scale = schema.get("precision"), schema.get("scale", 0)
            if type(precision) is not int or type(scale) is not int or precision < 1 or scale < 0:
                raise Unsupported("decimal without a usable precision / scale")
            limit = self.const(10**precision)
            powers = self.const(tuple(10**i for i in range(scale + 1)))
            out += [
                f"{ind}if type({v}) is not _Decimal: raise _Miss",
                f"{ind}_dec(o, {v}, {limit}, {scale}, {powers})",
            ]
        elif key == "int-date":
            out += [
                f"{ind}if type({v}) is _date: {t} = {v}.toordinal() - {_DAYS_SHIFT}",
                f"{ind}elif type({v}) is int and {INT_MIN} <= {v} <= {INT_MAX}: {t} = {v}",
                f"{ind}else: raise _Miss",
                f"{ind}o += _zz({t})",
            ]
        elif key.startswith("long-timestamp-") or key.startswith("long-local-timestamp-"):
            unit, tail = (1000, "// 1000") if key.endswith("millis") else (1_000_000, "")
            d = self.fresh("_d")
            if key.startswith("long-timestamp-"):  # naive datetimes go through fastavro (local time)
                delta = [f"{ind}    if {v}.tzinfo is None: raise _Miss", f"{ind}    {d} = {v} - _EPOCH"]
            else:
                delta = [f"{ind}    {d} = {v}.replace(tzinfo=_UTC) - _EPOCH"]
            out += [f"{ind}if type({v}) is _datetime:", *delta]
            out += [
                f"{ind}    {t} = ({d}.days * 86400 + {d}.seconds) * {unit} + {d}.microseconds {tail}",
                f"{ind}    if not {LONG_MIN} <= {t} <= {LONG_MAX}: raise _Miss",
                f"{ind}elif type({v}) is int and {LONG_MIN} <= {v} <= {LONG_MAX}: {t} = {v}",
                f"{ind}else: raise _Miss",
                f"{ind}o += _zz({t})",
            ]
        elif key in ("int-time-millis", "long-time-micros"):
            lo, hi = (INT_MIN, INT_MAX) if key.startswith("int") else (LONG_MIN, LONG_MAX)
            conv = "_time_millis" if key == "int-time-millis" else "_time_micros"
            out += [
                f"{ind}if type({v}) is _time: {t} = {conv}({v})",
                f"{ind}elif type({v}) is int: {t} = {v}",
                f"{ind}else: raise _Miss",
                f"{ind}if not {lo} <= {t} <= {hi}: raise _Miss",
                f"{ind}o += _zz({t})",
            ]
        elif key == "string-uuid":
            out += [f"{ind}{t} = str({v}) if type({v}) is _UUID else {v}"]
            self.emit_primitive("string", t, out, ind)
        else:
            raise Unsupported(f"logical type {key}")

    def emit_union(self, schema: list[Any], v: str, out: list[str], ind: str) -> None:
        if len(schema) != 2 or "null" not in schema:
            raise Unsupported("union other than [null, T]")
        null_index = schema.index("null")
        other = schema[1 - null_index]
        if isinstance(self.resolve(other), list) or other == "null":
            raise Unsupported("nested union")
        out += [f"{ind}if {v} is None: o.append({null_index * 2})", f"{ind}else:"]
        resolved = self.resolve(other)
        if isinstance(resolved, dict) and resolved.get("type") == "enum":
            self.emit_enum(resolved, zigzag(1 - null_index), v, out, ind + "    ")
            return
        out.append(f"{ind}    o.append({(1 - null_index) * 2})")
        self.emit(other, v, out, ind + "    ")

    def record_fn(self, schema: dict[str, Any]) -> str:
        name = str(schema.get("name", ""))
        if name and name in self.record_fns:
            return self.record_fns[name]
        fn = self.fresh("_r")
        if name:
            self.record_fns[name] = fn  # before the fields: a recursive reference calls fn
        lines = [f"def {fn}(r, o):", "    if type(r) is not dict or '-type' in r: raise _Miss"]
        for field in schema["fields"]:
            ftype = field["type"]
            if "default" in field:
                default = "None" if field["default"] is None else self.const(field["default"])
            elif isinstance(ftype, list) and "null" in ftype:
                default = "None"  # fastavro writes null for a missing optional field
            else:
                default = "_MISSING"  # fastavro refuses it: no fast-path type check accepts it
            v = self.fresh("_v")
            lines.append(f"    {v} = r.get({field['name']!r}, {default})")
            self.emit(ftype, v, lines, "    ")
        self.sources.append("\n".join(lines))
        return fn


def compile_writer(parsed: Any) -> Writer:
    """Compile a fastavro-parsed schema into ``value -> bytes`` (raises Unsupported)."""
    named: dict[str, Any] = {}
    if isinstance(parsed, dict):
        named.update(parsed.get("__named_schemas") or {})
    _collect_named(parsed, named)
    compiler = _Compiler(named)
    body: list[str] = ["def _top(v):", "    o = bytearray()"]
    compiler.emit(parsed, "v", body, "    ")
    body.append("    return bytes(o)")
    source = "\n\n".join([*compiler.sources, "\n".join(body)]) + "\n"
    namespace: dict[str, Any] = {
        "_Miss": FastPathMiss,
        "_MISSING": object(),
        "_zz": zigzag,
        "_dec": _decimal,
        "_pf": struct.Struct("<f").pack,
        "_pd": struct.Struct("<d").pack,
        "_Decimal": Decimal,
        "_date": date,
        "_datetime": datetime,
        "_time": time,
        "_time_millis": _time_millis,
        "_time_micros": _time_micros,
        "_UUID": UUID,
        "_UTC": UTC,
        "_EPOCH": _EPOCH,
        **compiler.consts,
    }
    exec(compile(source, "<avro fast writer>", "exec"), namespace)  # noqa: S102 - generated from the schema, see module doc
    top: Writer = namespace["_top"]
    return top


def _collect_named(schema: Any, named: dict[str, Any]) -> None:
    if isinstance(schema, list):
        for branch in schema:
            _collect_named(branch, named)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "error", "enum", "fixed") and isinstance(schema.get("name"), str):
            named.setdefault(schema["name"], schema)
        if kind in ("record", "error"):
            for field in schema.get("fields", ()):
                _collect_named(field.get("type"), named)
        elif kind == "array":
            _collect_named(schema.get("items"), named)
        elif kind == "map":
            _collect_named(schema.get("values"), named)
        elif isinstance(kind, dict | list):
            _collect_named(kind, named)
