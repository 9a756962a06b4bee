"""How Avro records are framed on Kafka: single-object encoding, or the Confluent wire format.

- Without a schema registry (`Framer`): Avro single-object encoding, ``C3 01`` + the 8-byte
  CRC-64-AVRO fingerprint of the writer schema (little-endian, as the spec says) + the body.
- With one (`ConfluentFramer`, when ``GATEWAY_SCHEMA_REGISTRY_URL`` is set): the Confluent wire
  format, ``00`` + the 4-byte big-endian schema id + the same body. Every schema is registered,
  self-contained, under the topic-and-record-name subject ``<topic>-<record full name>``
  (TopicRecordNameStrategy: an actor topic carries several record types) with BACKWARD
  compatibility set on the subject.

The encoders keep writing single-object frames (pure, no I/O); the edge swaps the 10-byte prefix
for the 5-byte one (`reframe`) with a dict lookup: schema ids are cached, so there is no registry
call per record. Uncached schemas are registered in bulk before anything is written (`prepare`):
every lookup and compatibility check first, then the registrations, so an incompatible schema is
refused (SchemaRefused with the registry's reason) before any of them is registered or written.
While the registry is unreachable, `prepare` waits with backoff (one log line per retry); cached
schemas keep flowing; nothing is ever written unframed.

`FrameDecoder` reads both framings (schema ids fetched once and cached).
"""

from __future__ import annotations

import json
import logging
import struct
import threading
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, TypeVar

from gateway.codec.avro import (
    CONFLUENT_MAGIC,
    SINGLE_OBJECT_MAGIC,
    AvroCodec,
    decode_single_object,
    load_schemas,
)
from gateway.codec.registry_client import NO_DETAIL, RegistryClient, SchemaRefused
from gateway.errors import ConfigError, FatalError, Problem, RejectedMessage
from gateway.retry import with_retry

__all__ = [
    "ConfluentFramer",
    "FrameDecoder",
    "Framer",
    "SchemaRefused",
    "decoder_for",
    "framer_for",
    "schema_text",
    "subject_name",
]

_log = logging.getLogger(__name__)
T = TypeVar("T")
Record = dict[str, Any]


def subject_name(topic: str, record_name: str) -> str:
    """The TopicRecordNameStrategy subject: ``<topic>-<record full name>``."""
    return f"{topic}-{record_name}"


def schema_text(codec: AvroCodec) -> str:
    """The self-contained schema of `codec` as registered (with docs and defaults)."""
    if codec.raw is None:
        raise FatalError(f"schema {codec.name} has no source text to register")
    return json.dumps(codec.raw, ensure_ascii=False, separators=(",", ":"))


class Framer:
    """Single-object framing (no registry): frames are what the encoders write."""

    confluent = False

    def prefix(self, topic: str, codec: AvroCodec) -> bytes:
        return SINGLE_OBJECT_MAGIC + codec.fingerprint

    def prepare(self, pairs: Iterable[tuple[str, AvroCodec]]) -> None:
        """Make sure every (topic, schema) can be framed (nothing to do without a registry)."""

    def reframe(self, topic: str, value: bytes) -> bytes:
        """The value to write to `topic` for a single-object frame `value`."""
        return value

    def reframe_fanout(self, topics: tuple[str, ...], value: bytes) -> tuple[bytes, ...]:
        """`value` framed for each of `topics`: one value when they all get the same bytes (the
        usual case: a schema has one id whatever the subject), else one value per topic."""
        return (value,)


class ConfluentFramer(Framer):
    """Confluent wire format: schemas registered under ``<topic>-<record name>``, ids cached."""

    confluent = True

    def __init__(
        self, client: RegistryClient, *, stop: threading.Event | None = None, max_delay: float = 30.0
    ) -> None:
        self.client = client
        self.stop = stop
        self.max_delay = max_delay
        self._prefixes: dict[tuple[str, bytes], bytes] = {}
        # schemas `reframe` may meet before `prepare` named them: every canonical one (views are added
        # by `prepare`); a frame of any other schema is refused, never written unframed
        self._codecs: dict[bytes, AvroCodec] = dict(load_schemas().by_fingerprint())
        self._lock = threading.Lock()
        self.registry_calls = 0

    @property
    def ids(self) -> dict[tuple[str, bytes], int]:
        """(topic, fingerprint) -> schema id, of every schema framed so far."""
        return {k: struct.unpack(">I", v[1:5])[0] for k, v in self._prefixes.items()}

    def _retry(self, fn: Callable[[], T], what: str) -> T:
        self.registry_calls += 1
        return with_retry(fn, what, self.stop, self.max_delay)

    def prefix(self, topic: str, codec: AvroCodec) -> bytes:
        found = self._prefixes.get((topic, codec.fingerprint))
        if found is None:
            self.prepare([(topic, codec)])
            found = self._prefixes[(topic, codec.fingerprint)]
        return found

    def prepare(self, pairs: Iterable[tuple[str, AvroCodec]]) -> None:
        with self._lock:
            todo: dict[tuple[str, bytes], tuple[str, AvroCodec, str]] = {}
            for topic, codec in pairs:
                self._codecs.setdefault(codec.fingerprint, codec)
                key = (topic, codec.fingerprint)
                if key not in self._prefixes and key not in todo:
                    todo[key] = (subject_name(topic, codec.name), codec, schema_text(codec))
            if not todo:
                return
            new: list[tuple[tuple[str, bytes], str, str]] = []
            refused: list[tuple[str, list[str]]] = []
            for key, (subject, _codec, text) in todo.items():  # 1. lookups and checks, nothing written
                sid = self._retry(partial(self.client.lookup, subject, text), "schema registry")
                if sid is not None:
                    self._prefixes[key] = CONFLUENT_MAGIC + struct.pack(">I", sid)
                    continue
                why = self._retry(partial(self.client.incompatibilities, subject, text), "schema registry")
                if why == [NO_DETAIL]:  # e.g. Apicurio's check gives no detail: its refusal does
                    why = self._reason(subject, text)
                if why:
                    refused.append((subject, why))
                new.append((key, subject, text))
            if refused:
                subject, why = refused[0]
                more = f" (and {len(refused) - 1} more subject(s))" if len(refused) > 1 else ""
                raise SchemaRefused(subject, "; ".join(why) + more)
            for key, subject, text in new:  # 2. registrations
                self._retry(partial(self.client.set_compatibility, subject, "BACKWARD"), "schema registry")
                sid = self._retry(partial(self.client.register, subject, text), "schema registry")
                self._prefixes[key] = CONFLUENT_MAGIC + struct.pack(">I", sid)
                _log.info("schema registry: %s registered with id %d", subject, sid)

    def _reason(self, subject: str, text: str) -> list[str]:
        """The registry's reason for refusing `text` under `subject`, from the refused registration
        itself (the check said the subject's compatibility rule refuses it, so nothing is written)."""
        try:
            sid = self._retry(partial(self.client.register, subject, text), "schema registry")
        except SchemaRefused as exc:
            return [exc.reason]
        _log.warning("schema registry: %s was said incompatible but registered (id %d)", subject, sid)
        return []

    def reframe(self, topic: str, value: bytes) -> bytes:
        if value[:2] != SINGLE_OBJECT_MAGIC or len(value) < 10:
            raise FatalError(f"refusing to write an unframed record to {topic}")
        fingerprint = value[2:10]
        found = self._prefixes.get((topic, fingerprint))
        if found is None:
            codec = self._codecs.get(fingerprint)
            if codec is None:
                raise FatalError(f"no schema known for fingerprint {fingerprint.hex()} written to {topic}")
            found = self.prefix(topic, codec)
        return found + value[10:]

    def reframe_fanout(self, topics: tuple[str, ...], value: bytes) -> tuple[bytes, ...]:
        if len(topics) == 1:
            return (self.reframe(topics[0], value),)
        fingerprint = value[2:10]
        prefixes = self._prefixes
        heads = [prefixes.get((t, fingerprint)) for t in topics]
        first = heads[0]
        if first is not None and all(h == first for h in heads):
            return (first + value[10:],)
        return tuple(self.reframe(t, value) for t in topics)


class FrameDecoder:
    """Decodes single-object and Confluent frames with the known `codecs` (by fingerprint).

    A Confluent frame's schema is fetched from the registry once per id; it must be one of the
    known schemas (same fingerprint), unless `any_schema` (operator tools that show any record)."""

    def __init__(
        self,
        codecs: Mapping[bytes, AvroCodec],
        client: RegistryClient | None = None,
        *,
        any_schema: bool = False,
        stop: threading.Event | None = None,
    ) -> None:
        self.codecs = dict(codecs)
        self.client = client
        self.any_schema = any_schema
        self.stop = stop
        self._by_id: dict[int, AvroCodec] = {}

    def decode(self, data: bytes) -> tuple[AvroCodec, Record]:
        if data[:2] == SINGLE_OBJECT_MAGIC:
            return decode_single_object(data, self.codecs)
        if len(data) >= 5 and data[:1] == CONFLUENT_MAGIC:
            sid = struct.unpack(">I", data[1:5])[0]
            codec = self._by_id.get(sid) or self._fetch(sid)
            return codec, codec.decode_at(data, 5)
        raise RejectedMessage(
            "not an Avro frame", [Problem("$", "neither single-object (C3 01) nor Confluent (00) framing")]
        )

    def _fetch(self, sid: int) -> AvroCodec:
        if self.client is None:
            raise RejectedMessage(
                "Confluent frame but no schema registry is configured",
                [Problem("$", f"schema id {sid}: set GATEWAY_SCHEMA_REGISTRY_URL")],
            )
        client = self.client
        try:
            text = with_retry(lambda: client.schema(sid), "schema registry", self.stop)
        except KeyError:
            raise RejectedMessage(
                "unknown writer schema", [Problem("$", f"schema id {sid} not in the registry")]
            ) from None
        try:
            codec = AvroCodec.from_schema(json.loads(text))
        except (ValueError, ConfigError) as exc:
            raise RejectedMessage(
                "unknown writer schema", [Problem("$", f"schema id {sid} unreadable")]
            ) from exc
        known = self.codecs.get(codec.fingerprint)
        if known is None and not self.any_schema:
            raise RejectedMessage(
                "unexpected writer schema",
                [Problem("$", f"schema id {sid} ({codec.name}) is not expected here")],
            )
        self._by_id[sid] = known or codec
        return self._by_id[sid]


def registry_client(url: str | None) -> RegistryClient | None:
    return RegistryClient(url) if url else None


def framer_for(registry_url: str | None, stop: threading.Event | None = None) -> Framer:
    """The framer of a process: Confluent wire format when a registry URL is configured."""
    return ConfluentFramer(RegistryClient(registry_url), stop=stop) if registry_url else Framer()


def decoder_for(
    registry_url: str | None, codecs: Mapping[bytes, AvroCodec], *, any_schema: bool = False
) -> FrameDecoder:
    return FrameDecoder(codecs, registry_client(registry_url), any_schema=any_schema)
