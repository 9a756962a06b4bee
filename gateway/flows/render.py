"""A sink's batches decoded and rendered in worker processes, ahead of `Sink.write`.

A sink that declares a `renderer()` (gateway.connectors) gets its records with `rendered` set: the
runtime sends each polled batch's frames to `processes` spawned processes (GATEWAY_SINK_PROCESSES),
which decode them and call the renderer on each record, while the sink's process writes the batch
before it (gateway.flows.egress). What comes back per record is small: the rendered value (e.g. a
line as bytes), a writer schema the sink's process was not given (one a registry taught the worker)
once per batch, and the decoded record only where the renderer
declined it (None, or an exception) and for erasures (fr.gp.Effacement: never rendered). A frame no
codec decodes comes back as its RejectedMessage (message and problems: never a value), dead-lettered
by the runtime as a record it decoded itself would be. A worker that dies (OOM killer...) loses
nothing: `collect` answers None and the runtime decodes that batch in its own process.
"""

from __future__ import annotations

import gc
import logging
import pickle
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from gateway.codec.avro import AvroCodec
from gateway.codec.framing import decoder_for
from gateway.connectors import ERASURE_SCHEMA, SinkRecord
from gateway.errors import ConfigError, Problem, RejectedMessage
from gateway.flows.deliver import Decoded, erasure_record, no_collection, record_of
from gateway.flows.pool import exit_with_parent, spawn_pool
from gateway.model.envelope import Envelope

__all__ = ["RenderPool"]

log = logging.getLogger("gateway.flows.egress")

Renderer = Callable[[SinkRecord], Any]
# what a worker is given of a record: payload, key, headers, topic, partition, offset
Item = tuple[bytes, bytes | None, tuple[tuple[str, bytes], ...], str, int, int]
# ... and gives back: None (a tombstone), (message, problems) (not decoded), or (fingerprint,
# (name, parsed schema) the first time in the batch of a schema the sink's process was not given
# (one a registry taught the worker) else None, rendered, record when not rendered)
Result = tuple[str, tuple[Problem, ...]] | tuple[bytes, tuple[str, Any] | None, Any, Any] | None

MAX_DEATHS = 5  # rendering processes that died before the runtime stops starting new ones
_WORKER: dict[str, Any] = {}  # in a worker process: its decoder and the sink's renderer


def _start(
    parent: int,
    schemas: Sequence[tuple[str, Any, bytes]],
    registry_url: str | None,
    renderer: Renderer,
) -> None:
    """Initializer of a rendering process: the codecs of the sink's schemas, the renderer. No automatic
    cyclic garbage collection: a batch's many new objects (unpickled, decoded) set off collections
    that cost as much as the decoding; what the process holds after start-up is frozen, and each
    batch begins with a collection of what the previous ones left (cycles, e.g. of exceptions)."""
    exit_with_parent(parent)
    codecs = {fp: AvroCodec(name=name, parsed=parsed, fingerprint=fp) for name, parsed, fp in schemas}
    _WORKER["decode"] = decoder_for(registry_url, codecs).decode  # Confluent frames too, with a registry
    _WORKER["render"] = renderer
    _WORKER["given"] = frozenset(fp for _, _, fp in schemas)  # the sink's process has these already
    gc.disable()
    gc.freeze()


def _render(items: Sequence[Item]) -> list[Result]:
    """In a worker process: each item decoded and rendered (see Result)."""
    if not gc.isenabled():  # a rendering process (_start): what earlier batches left
        gc.collect()
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
                rec = SinkRecord(
                    schema=codec.name,
                    key=(key or b"").decode("utf-8", "replace"),
                    record=record,
                    headers=headers,
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    writer_schema=codec.parsed,
                )
                try:
                    rendered = render(rec)
                except Exception:  # noqa: BLE001 - declined: the sink gets the record and decides
                    rendered = None
            out.append((fp, schema, rendered, None if rendered is not None else record))
    return out


@dataclass
class Rendering:
    """A batch sent to the rendering processes: its futures, one per contiguous chunk."""

    futures: list[Future[list[Result]]]

    def done(self) -> bool:
        return all(f.done() for f in self.futures)


class RenderPool:
    """`processes` spawned processes rendering a sink's batches (see the module's docstring)."""

    def __init__(
        self,
        processes: int,
        codecs: Mapping[bytes, AvroCodec],
        registry_url: str | None,
        renderer: Renderer,
        *,
        erasure_tombstones: bool = False,
    ) -> None:
        try:  # what a rendering process gets: refused now, not at every batch
            pickle.dumps(renderer)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"the sink's renderer cannot be sent to a rendering process ({type(exc).__name__}): make"
                " it a module-level function (or a functools.partial of one), or set GATEWAY_SINK_PROCESSES=0"
            ) from exc
        self.processes = processes
        self._schemas = [(c.name, c.parsed, fp) for fp, c in codecs.items()]
        # fingerprint -> (name, parsed schema): this process's own objects, so that every batch's
        # records share them (sinks cache by the object); a schema only a worker knew (a registry's)
        # is kept the first time it comes back
        self._known: dict[bytes, tuple[str, Any]] = {fp: (c.name, c.parsed) for fp, c in codecs.items()}
        self._registry_url = registry_url
        self._renderer = renderer
        self._erasure_tombstones = erasure_tombstones
        self._pool: Any = None
        self.deaths = 0  # rendering processes found dead (monitoring, tests)

    def start(self) -> None:
        """Spawn the processes now (they take about a second to start): before the first batch."""
        if self._pool is None:
            self._pool = spawn_pool(self.processes, _start, self._schemas, self._registry_url, self._renderer)
            for _ in range(self.processes):
                self._pool.submit(_render, ())  # each one starts (the pool spawns on demand)
            log.info("decoding and rendering batches in %d process(es)", self.processes)

    def submit(self, envelopes: Sequence[Envelope]) -> Rendering:
        if self.deaths >= MAX_DEATHS:
            return Rendering([])  # decoded in the sink's process from now on
        self.start()
        items: list[Item] = [
            (
                e.payload,
                e.key,
                e.headers,
                e.topic or "",
                -1 if e.partition is None else e.partition,
                -1 if e.offset is None else e.offset,
            )
            for e in envelopes
        ]
        size = -(-len(items) // self.processes)
        try:
            return Rendering(
                [self._pool.submit(_render, items[i : i + size]) for i in range(0, len(items), size)]
            )
        except BrokenProcessPool:
            self._died()
            return Rendering([])

    def collect(self, rendering: Rendering, envelopes: Sequence[Envelope]) -> Decoded | None:
        """The batch's records (blocking until rendered), or None when a process died: the caller
        decodes the batch itself."""
        if not rendering.futures:
            return None
        results: list[Result] = []
        try:
            for future in rendering.futures:
                results += future.result()
        except BrokenProcessPool:
            self._died()
            return None
        return self._decoded(envelopes, results)

    def _decoded(self, envelopes: Sequence[Envelope], results: Sequence[Result]) -> Decoded:
        decoded = Decoded()
        schemas = self._known
        with no_collection():
            for env, res in zip(envelopes, results, strict=True):
                if res is None:
                    if self._erasure_tombstones and (erasure := erasure_record(env)) is not None:
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

    def _died(self) -> None:
        self.deaths += 1
        log.warning("a rendering process died; this batch is decoded in the sink's process")
        if self.deaths == MAX_DEATHS:
            log.warning(
                "rendering processes died %d times: batches are decoded in the sink's process", self.deaths
            )
        self.close(wait=False)

    def close(self, *, wait: bool = True) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)
