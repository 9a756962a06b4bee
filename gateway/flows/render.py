"""Decoding and rendering a sink's records outside the sink's process: the two halves of it.

A sink that declares a `renderer()` (gateway.connectors) gets its records with `rendered` set when
the runtime runs reading processes (GATEWAY_SINK_PROCESSES, gateway.flows.readers): each one reads
its share of the actor's partitions, decodes the records and calls the renderer on each one
(`setup` once, then `render_items` per batch); the sink's process turns what comes back into its
SinkRecords (`Unpacker.decoded`). What comes back per record is small: the rendered value (e.g. a
line as bytes), a writer schema the sink's process was not given (one a registry taught the worker)
once per batch, and the decoded record only where the renderer declined it (None, or an exception)
and for erasures (fr.gp.Effacement: never rendered). A frame no codec decodes comes back as its
RejectedMessage (message and problems: never a value), dead-lettered by the runtime as a record it
decoded itself would be.
"""

from __future__ import annotations

import gc
import pickle
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gateway.codec.avro import AvroCodec
from gateway.codec.framing import decoder_for
from gateway.connectors import ERASURE_SCHEMA, SinkRecord
from gateway.errors import ConfigError, Problem, RejectedMessage
from gateway.flows.deliver import Decoded, erasure_record, no_collection, record_of
from gateway.model.envelope import Envelope

__all__ = ["Item", "Result", "Unpacker", "check_renderer", "collect", "render_items", "setup"]

Renderer = Callable[[SinkRecord], Any]
# what the worker renders of a record: payload, key, headers, topic, partition, offset
Item = tuple[bytes, bytes | None, tuple[tuple[str, bytes], ...], str, int, int]
# ... and gives back: None (a tombstone), (message, problems) (not decoded), or (fingerprint,
# (name, parsed schema) the first time in the batch of a schema the sink's process was not given
# (one a registry taught the worker) else None, rendered, record when not rendered)
Result = tuple[str, tuple[Problem, ...]] | tuple[bytes, tuple[str, Any] | None, Any, Any] | None

_WORKER: dict[str, Any] = {}  # in a worker process: its decoder and the sink's renderer


def check_renderer(renderer: Renderer) -> None:
    """ConfigError now, not at every batch, when `renderer` cannot be sent to another process."""
    try:
        pickle.dumps(renderer)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"the sink's renderer cannot be sent to a reading process ({type(exc).__name__}): make"
            " it a module-level function (or a functools.partial of one), or set GATEWAY_SINK_PROCESSES=0"
        ) from exc


def setup(schemas: Sequence[tuple[str, Any, bytes]], registry_url: str | None, renderer: Renderer) -> None:
    """In a worker process, once: the codecs of the sink's schemas (name, parsed, fingerprint), the
    renderer. No automatic cyclic garbage collection: a batch's many new objects (decoded records)
    set off collections that cost as much as the decoding; what the process holds after start-up is
    frozen, and the caller collects what earlier batches left (cycles, e.g. of exceptions) between
    its batches (`collect`)."""
    codecs = {fp: AvroCodec(name=name, parsed=parsed, fingerprint=fp) for name, parsed, fp in schemas}
    _WORKER["decode"] = decoder_for(registry_url, codecs).decode  # Confluent frames too, with a registry
    _WORKER["render"] = renderer
    _WORKER["given"] = frozenset(fp for _, _, fp in schemas)  # the sink's process has these already
    gc.disable()
    gc.freeze()


def collect() -> None:
    """In a worker process (`setup`: no automatic collection): what earlier batches left."""
    if not gc.isenabled():
        gc.collect()


def render_items(items: Sequence[Item]) -> list[Result]:
    """In a worker process: each item decoded and rendered (see Result). The caller collects the
    garbage of earlier batches (`collect`) between its batches."""
    decode: Callable[[bytes], tuple[AvroCodec, dict[str, object]]] = _WORKER["decode"]
    render: Renderer = _WORKER["render"]
    out: list[Result] = []
    told = set(_WORKER["given"])  # fingerprints whose schema the sink's process has, or this answer carries
    with no_collection():
        for payload, key, headers, topic, partition, offset in items:
            if not payload:
                out.append(None)
                continue
            try:
                codec, record = decode(payload)
            except RejectedMessage as exc:
                out.append((str(exc.args[0]) if exc.args else "not decoded", exc.problems))
                continue
            fp = codec.fingerprint
            schema = None
            if fp not in told:
                told.add(fp)
                schema = (codec.name, codec.parsed)
            rendered = None
            if codec.name != ERASURE_SCHEMA:
                rec = SinkRecord(  # positional, as deliver.record_of builds it (thousands a batch)
                    codec.name,
                    (key or b"").decode("utf-8", "replace"),
                    record,
                    headers,
                    topic,
                    partition,
                    offset,
                    {},
                    codec.parsed,
                )
                try:
                    rendered = render(rec)
                except Exception:  # noqa: BLE001 - declined: the sink gets the record and decides
                    rendered = None
            out.append((fp, schema, rendered, None if rendered is not None else record))
    return out


class Unpacker:
    """In the sink's process: the records of a batch a worker rendered (`decoded`)."""

    def __init__(self, codecs: Mapping[bytes, AvroCodec], *, erasure_tombstones: bool = False) -> None:
        # fingerprint -> (name, parsed schema): this process's own objects, so that every batch's
        # records share them (sinks cache by the object); a schema only a worker knew (a registry's)
        # is kept the first time it comes back
        self.known: dict[bytes, tuple[str, Any]] = {fp: (c.name, c.parsed) for fp, c in codecs.items()}
        self.schemas = [(c.name, c.parsed, fp) for fp, c in codecs.items()]  # what a worker is given
        self.erasure_tombstones = erasure_tombstones

    def decoded(self, envelopes: Sequence[Envelope], results: Sequence[Result]) -> Decoded:
        decoded = Decoded()
        schemas = self.known
        with no_collection():
            for env, res in zip(envelopes, results, strict=True):
                if res is None:
                    if self.erasure_tombstones and (erasure := erasure_record(env)) is not None:
                        decoded.pairs.append((env, erasure))
                    continue
                if isinstance(res[0], str):  # (message, problems): not decoded
                    message, problems = res
                    decoded.rejected.append((env, RejectedMessage(message, problems)))
                    continue
                fp, schema, rendered, record = res
                if schema is not None and fp not in schemas:
                    schemas[fp] = schema
                name, parsed = schemas[fp]
                rec = record_of(env, name, {} if record is None else record, parsed, rendered)
                decoded.pairs.append((env, rec))
        return decoded
