"""Avro contract: the schemas in schemas/avro are loaded once, fingerprinted and used to encode.

Framing on Kafka (documented in the README):
- Avro single-object encoding (default): ``C3 01`` + 8-byte little-endian CRC-64-AVRO fingerprint of
  the writer schema's parsing canonical form + the Avro binary body.
- Confluent wire format when a schema registry is configured: ``00`` + 4-byte big-endian schema id.

Encoding: `AvroCodec.encode` validates with fastavro then writes with it. `encode_checked` (and
`encode_framed_checked`) give the same bytes and refuse the same records ~3x cheaper: the schema is
compiled once into a writer that checks as it writes (avro_write), fastavro deciding whatever that
writer does not take; refusals name field paths (avro_check).
"""

from __future__ import annotations

import base64
import copy
import io
import json
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import fastavro
import fastavro.schema
import fastavro.validation

from gateway.codec.avro_check import schema_problems
from gateway.codec.avro_compile import PRIMITIVES
from gateway.codec.avro_read import Reader, compile_reader
from gateway.codec.avro_write import Writer, compile_writer
from gateway.errors import ConfigError, Problem, RejectedMessage

__all__ = [
    "DEFAULT_SCHEMA_DIR",
    "NAMESPACE",
    "AvroCodec",
    "SchemaSet",
    "decode_single_object",
    "encode_single_object",
    "from_sne_code",
    "load_schemas",
    "sne_code",
    "to_jsonable",
]

NAMESPACE = "fr.gp"
DEFAULT_SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "avro"
SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"

Record = dict[str, Any]
_NO_FAST_WRITER: Writer = bytes  # marks a schema the fast writer does not compile (never called)


def _no_reader(data: bytes, pos: int) -> tuple[Any, int]:  # marks a schema the fast reader does not compile
    raise NotImplementedError


_NO_FAST_READER: Reader = _no_reader


def _fingerprint(parsed: Any) -> bytes:
    canonical = fastavro.schema.to_parsing_canonical_form(parsed)
    hexdigest: str = fastavro.schema.fingerprint(canonical, "CRC-64-AVRO")
    # fastavro prints the CRC as big-endian hex; the single-object spec writes it little-endian.
    return bytes.fromhex(hexdigest)[::-1]


_F = TypeVar("_F")


def _compile_once(codec: Any, attr: str, build: Callable[[Any], _F], unsupported: _F) -> _F:
    """Compile the codec's parsed schema with `build` and cache the function in `attr` of the
    (frozen) codec; `unsupported` (cached too) when the schema does not compile."""
    try:
        fn = build(codec.parsed)
    except Exception:  # noqa: BLE001 - Unsupported, or a schema shape it does not expect
        fn = unsupported
    object.__setattr__(codec, attr, fn)  # frozen: a cache, not part of the value
    return fn


@dataclass(frozen=True)
class AvroCodec:
    """Encode / decode records of one (parsed) schema. Views derived by the policy use it too."""

    name: str
    parsed: Any
    fingerprint: bytes  # 8 bytes, little-endian, as written in single-object frames
    # the self-contained schema (JSON data, with docs and defaults) as a registry gets it
    raw: Any = field(default=None, compare=False, repr=False)
    # the schema compiled by avro_write on first use of encode_checked (not part of the value)
    _writer: Writer | None = field(default=None, init=False, repr=False, compare=False)
    # the schema compiled by avro_read on first decode (not part of the value)
    _reader: Reader | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_schema(cls, schema: Any, name: str | None = None) -> AvroCodec:
        try:
            parsed = fastavro.parse_schema(schema)
        except Exception as exc:  # fastavro has no common root; wrap at the boundary
            raise ConfigError(f"invalid Avro schema {name or ''}: {exc}") from exc
        full = name or (parsed.get("name") if isinstance(parsed, dict) else None) or "anonymous"
        return cls(name=str(full), parsed=parsed, fingerprint=_fingerprint(parsed), raw=schema)

    @property
    def fingerprint_hex(self) -> str:
        """The fingerprint as written in headers: the hex of the 8 bytes in frame order
        (little-endian, as they follow ``C3 01`` in a single-object frame), so that a header and
        its frame agree byte for byte. (Before, headers carried the big-endian number.)"""
        return self.fingerprint.hex()

    def problems(self, record: Mapping[str, Any]) -> list[Problem]:
        """Every way `record` does not fit the schema (empty when it fits)."""
        try:  # fast path (~10x cheaper): only collect the details when the record does not fit
            if fastavro.validation.validate(record, self.parsed, raise_errors=False):
                return []
        except Exception:  # noqa: BLE001, S110 - fall through to the detailed check
            pass
        try:
            fastavro.validation.validate_many([record], self.parsed, raise_errors=True)
        except fastavro.validation.ValidationError as exc:
            out = []
            for err in exc.errors:
                field_path = getattr(err, "field", None) or self.name
                out.append(Problem(str(field_path), "does not match the schema", type(err.datum).__name__))
            return out
        except Exception as exc:  # noqa: BLE001 - fastavro raises assorted errors on odd input
            return [Problem(self.name, f"cannot validate: {type(exc).__name__}")]
        return []

    def encode(self, record: Mapping[str, Any], *, validate: bool = True) -> bytes:
        """Avro binary body (no framing)."""
        if validate:
            problems = self.problems(record)
            if problems:
                raise RejectedMessage(f"record does not match {self.name}", problems)
        buf = io.BytesIO()
        try:
            fastavro.schemaless_writer(buf, self.parsed, record)
        except Exception as exc:
            raise RejectedMessage(
                f"record does not match {self.name}", [Problem(self.name, type(exc).__name__)]
            ) from exc
        return buf.getvalue()

    def encode_checked(self, record: Mapping[str, Any]) -> bytes:
        """Avro binary body (no framing), checked while it is written: ~3x cheaper than `encode`.

        Same bytes as ``encode(record)`` for every record fastavro's validator accepts, and refuses
        exactly the records it refuses, with RejectedMessage whose problems name field paths
        (``demandeur.revenuFiscal.montantMoins1``, ``personnesACharge[1].sexe``) and a reason, the
        value's type name at most. Records the fast writer does not take as they are (or a schema
        it does not compile) go the reference way: fastavro validates, then writes."""
        writer = self._fast_writer()
        if writer is not None:
            try:
                return writer(record)
            except Exception:  # noqa: BLE001, S110 - FastPathMiss or a surprise: fastavro decides below
                pass
        return self._encode_reference(record)

    def encode_framed_checked(self, record: Mapping[str, Any]) -> bytes:
        """`encode_checked` in a single-object frame (what `encode_framed` writes, checked the same)."""
        return SINGLE_OBJECT_MAGIC + self.fingerprint + self.encode_checked(record)

    def path_problems(self, record: Any) -> list[Problem]:
        """Every leaf of `record` that does not fit the schema, by field path (empty when it fits)."""
        try:
            return schema_problems(self.parsed, record, self.name)
        except Exception as exc:  # noqa: BLE001 - odd objects in the record; never leak their value
            return [Problem(self.name, f"cannot check: {type(exc).__name__}")]

    def _fast_writer(self) -> Writer | None:
        writer = self._writer  # read on every encode: the cached function, without a call
        if writer is None:
            writer = _compile_once(self, "_writer", compile_writer, _NO_FAST_WRITER)
        return None if writer is _NO_FAST_WRITER else writer

    def _encode_reference(self, record: Mapping[str, Any]) -> bytes:
        try:
            fits = bool(fastavro.validation.validate(record, self.parsed, raise_errors=False))
        except Exception:  # noqa: BLE001 - fastavro raises on some values (e.g. too many decimal digits)
            fits = False
        if not fits:
            problems = self.path_problems(record) or self.problems(record)
            if not problems:
                problems = [Problem(self.name, "does not match the schema")]
            raise RejectedMessage(f"record does not match {self.name}", problems)
        return self.encode(record, validate=False)

    def _fast_reader(self) -> Reader | None:
        reader = self._reader  # read on every decode: the cached function, without a call
        if reader is None:
            reader = _compile_once(self, "_reader", compile_reader, _NO_FAST_READER)
        return None if reader is _NO_FAST_READER else reader

    def decode(self, body: bytes) -> Record:
        return self.decode_at(body, 0)

    def decode_at(self, data: bytes, start: int) -> Record:
        """The record whose body runs from `start` to the end of `data` (a frame: no copy of the
        body). Read by the schema's compiled reader (avro_read: fastavro's values, about twice as
        fast), or by fastavro for a schema that reader does not compile."""
        reader = self._fast_reader()
        if reader is None:
            return self._decode_reference(data[start:] if start else data)
        try:
            out, end = reader(data, start)
        except Exception as exc:
            raise RejectedMessage(
                f"cannot decode {self.name}", [Problem(self.name, f"not Avro ({type(exc).__name__})")]
            ) from exc
        if not isinstance(out, dict):
            raise RejectedMessage(f"cannot decode {self.name}", [Problem(self.name, "not a record")])
        if end != len(data):  # a record is exactly its body: extra bytes mean a damaged frame
            raise RejectedMessage(
                f"cannot decode {self.name}", [Problem(self.name, "trailing bytes after the record")]
            )
        return out

    def _decode_reference(self, body: bytes) -> Record:
        """fastavro's reader (schemas the compiled reader does not take; tests compare both)."""
        buf = io.BytesIO(body)
        try:
            out = fastavro.schemaless_reader(buf, self.parsed, None)
        except Exception as exc:
            raise RejectedMessage(
                f"cannot decode {self.name}", [Problem(self.name, f"not Avro ({type(exc).__name__})")]
            ) from exc
        if not isinstance(out, dict):
            raise RejectedMessage(f"cannot decode {self.name}", [Problem(self.name, "not a record")])
        if buf.tell() != len(body):  # a record is exactly its body: extra bytes mean a damaged frame
            raise RejectedMessage(
                f"cannot decode {self.name}", [Problem(self.name, "trailing bytes after the record")]
            )
        return out

    def encode_framed(self, record: Mapping[str, Any], *, validate: bool = True) -> bytes:
        return encode_single_object(self, record, validate=validate)


def encode_single_object(codec: AvroCodec, record: Mapping[str, Any], *, validate: bool = True) -> bytes:
    return SINGLE_OBJECT_MAGIC + codec.fingerprint + codec.encode(record, validate=validate)


def decode_single_object(data: bytes, codecs: Mapping[bytes, AvroCodec]) -> tuple[AvroCodec, Record]:
    """Decode a single-object frame with the codec whose fingerprint it names."""
    if len(data) < 10 or data[:2] != SINGLE_OBJECT_MAGIC:
        raise RejectedMessage("not an Avro single-object frame", [Problem("$", "bad magic or too short")])
    codec = codecs.get(data[2:10])
    if codec is None:
        raise RejectedMessage("unknown writer schema", [Problem("$", "fingerprint " + data[2:10].hex())])
    return codec, codec.decode_at(data, 10)


def confluent_frame(schema_id: int, body: bytes) -> bytes:
    return CONFLUENT_MAGIC + struct.pack(">I", schema_id) + body


class SchemaSet:
    """All canonical schemas of a directory, loaded and parsed once."""

    def __init__(self, directory: Path = DEFAULT_SCHEMA_DIR) -> None:
        self.directory = directory
        self._raw: dict[str, dict[str, Any]] = {}
        problems: list[Problem] = []
        for path in sorted(directory.glob("*.avsc")):
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                problems.append(Problem(path.name, f"unreadable: {exc}"))
                continue
            full = f"{raw.get('namespace', '')}.{raw.get('name', '')}".strip(".")
            if path.stem != full:
                problems.append(Problem(path.name, f"file must be named after its type {full}"))
            self._raw[full] = raw
        if problems:
            raise ConfigError(f"bad schemas in {directory}", problems)
        self._codecs: dict[str, AvroCodec] = {}
        for full, raw in self._raw.items():
            if raw.get("type") == "record":
                try:
                    parsed = fastavro.schema.load_schema(str(directory / f"{full}.avsc"))
                except Exception as exc:
                    raise ConfigError(f"schema {full} does not load: {exc}") from exc
                self._codecs[full] = AvroCodec(full, parsed, _fingerprint(parsed), self.self_contained(full))

    def names(self) -> list[str]:
        return sorted(self._raw)

    def expand(self, type_: Any, defined: set[str]) -> Any:
        """`type_` with the named canonical types it uses inlined on first use (names in `defined`
        are referred to by name): the building block of self-contained schemas."""
        if isinstance(type_, list):
            return [self.expand(t, defined) for t in type_]
        if isinstance(type_, dict):
            out = dict(type_)
            if out.get("type") == "array":
                out["items"] = self.expand(out["items"], defined)
            elif out.get("type") == "map":
                out["values"] = self.expand(out["values"], defined)
            elif out.get("type") == "record" and "fields" in out:
                out["fields"] = [{**f, "type": self.expand(f["type"], defined)} for f in out["fields"]]
            return out
        if not isinstance(type_, str) or type_ in PRIMITIVES:
            return type_
        full = self._full(type_)
        if full in defined or full not in self._raw:
            return full
        defined.add(full)
        return self.expand(copy.deepcopy(self._raw[full]), defined)

    def self_contained(self, name: str) -> dict[str, Any]:
        """The schema `name` with every named type it uses inlined (what a registry stores)."""
        full = self._full(name)
        out: dict[str, Any] = self.expand(full, set())
        return out

    def raw(self, name: str) -> dict[str, Any]:
        return self._raw[self._full(name)]

    def codec(self, name: str) -> AvroCodec:
        return self._codecs[self._full(name)]

    def codecs(self) -> Iterator[AvroCodec]:
        return iter(self._codecs.values())

    def by_fingerprint(self) -> dict[bytes, AvroCodec]:
        return {c.fingerprint: c for c in self._codecs.values()}

    def _full(self, name: str) -> str:
        return name if "." in name else f"{NAMESPACE}.{name}"

    def enum_symbols(self, name: str) -> list[str]:
        """The symbols of a code list, without its reading default INCONNU (not a code)."""
        return [s for s in self.raw(name)["symbols"] if s != UNKNOWN_SYMBOL]

    def sne_codes(self, name: str) -> dict[str, str]:
        """symbol -> SNE code for an enum (identity where the schema gives no sneCodes), without the
        reading default INCONNU (its SNE code is in the record's sibling field <field>CodeInconnu)."""
        raw = self.raw(name)
        symbols: list[str] = raw["symbols"]
        codes: list[str] = raw.get("sneCodes", symbols)
        return {s: c for s, c in zip(symbols, codes, strict=True) if s != UNKNOWN_SYMBOL}


UNKNOWN_SYMBOL = "INCONNU"  # every enum's default: a code this version does not know (issue 17)


@cache
def load_schemas(directory: Path = DEFAULT_SCHEMA_DIR) -> SchemaSet:
    """The process-wide schema set (loaded once)."""
    return SchemaSet(directory)


def sne_code(enum: str, symbol: str) -> str:
    return load_schemas().sne_codes(enum)[symbol]


def from_sne_code(enum: str, code: str) -> str | None:
    """The enum symbol for an SNE code, or None when the code is not in the list."""
    for symbol, c in load_schemas().sne_codes(enum).items():
        if c == code:
            return symbol
    return None


def to_jsonable(value: Any) -> Any:
    """Canonical record -> JSON-compatible data (dates ISO 8601, decimals as strings)."""
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value
