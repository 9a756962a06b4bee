"""Rendering processes (gateway.flows.render): a real spawned process decodes and renders an actor's
batch as the sink's process would; what it declines, erasures and undecodable frames come back as
records or rejections; a process that dies loses nothing (the batch is decoded by the caller)."""

from __future__ import annotations

import asyncio
import operator
import os
import signal
from collections.abc import Iterator

import pytest
from connectors.file.connector import render_jsonl
from gateway.codec.framing import FrameDecoder
from gateway.connectors import ERASURE_SCHEMA, SinkRecord
from gateway.flows import render
from gateway.flows.deliver import process_envelopes
from gateway.flows.render import RenderPool
from gateway.flows.sinks import view_codecs
from gateway.model.envelope import Envelope
from gateway.settings import GatewaySettings
from gateway.testing.actor_stream import actor_stream, sink_records
from gateway.testing.effacement import effacement

TOPIC = "gp.actor.200000002"


def _envelopes(count: int = 40) -> list[Envelope]:
    _, records = actor_stream("200000002", count)
    return [Envelope(r.value, r.key, r.headers, TOPIC, 0, i) for i, r in enumerate(records)]


def _inline(count: int = 40) -> list[SinkRecord]:
    return list(sink_records("200000002", topic=TOPIC, count=count))


@pytest.fixture
def pool(request: pytest.FixtureRequest) -> Iterator[RenderPool]:
    render = request.param if hasattr(request, "param") else render_jsonl
    p = RenderPool(1, view_codecs(GatewaySettings()), None, render)
    yield p
    p.close()


def _render(pool: RenderPool, envelopes: list[Envelope]) -> object:
    return pool.collect(pool.submit(envelopes), envelopes)


def test_a_batch_comes_back_rendered_as_the_sinks_process_renders_it(pool: RenderPool) -> None:
    envelopes = _envelopes()
    decoded = _render(pool, envelopes)
    assert decoded is not None
    inline = _inline()
    got = [rec for _, rec in decoded.pairs]  # type: ignore[attr-defined]
    assert [r.rendered for r in got] == [render_jsonl(r) for r in inline]
    assert [(r.schema, r.key, r.headers, r.offset) for r in got] == [
        (r.schema, r.key, r.headers, r.offset) for r in inline
    ]
    assert [r.writer_schema for r in got] == [r.writer_schema for r in inline]
    assert all(r.record == {} for r in got)  # rendered: the decoded record stays in the worker
    assert decoded.rejected == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "pool",
    [operator.methodcaller("header", "absent"), operator.attrgetter("no_such_field")],
    ids=["declined", "raising"],
    indirect=True,
)
def test_a_record_the_renderer_declines_comes_back_decoded(pool: RenderPool) -> None:
    decoded = _render(pool, _envelopes(10))
    assert decoded is not None
    got = [rec for _, rec in decoded.pairs]  # type: ignore[attr-defined]
    assert [(r.rendered, r.record) for r in got] == [(None, r.record) for r in _inline(10)]


def test_erasures_are_never_rendered_and_bad_frames_are_dead_lettered(pool: RenderPool) -> None:
    envelopes = _envelopes(3)
    erasure = effacement("0440224000012")
    envelopes[1] = Envelope(erasure.value, erasure.key, erasure.headers, TOPIC, 0, 1)
    envelopes.append(Envelope(b"\xc3\x01" + b"\x00" * 8 + b"not avro", b"k", (), TOPIC, 0, 3))
    envelopes.append(Envelope(b"", b"k", (), TOPIC, 0, 4))  # a tombstone: compaction only
    decoded = _render(pool, envelopes)
    assert decoded is not None
    pairs = decoded.pairs  # type: ignore[attr-defined]
    assert [rec.offset for _, rec in pairs] == [0, 1, 2]
    effacement_record = pairs[1][1]
    assert (effacement_record.schema, effacement_record.rendered) == (ERASURE_SCHEMA, None)
    assert effacement_record.record["numUnique"] == "0440224000012"
    [(env, why)] = decoded.rejected  # type: ignore[attr-defined]
    assert env.offset == 3
    assert "not avro" not in str(why)

    class Sink:
        name = "rendered"
        erases = False

        async def write(self, batch: object) -> list[object]:
            return []

    result = asyncio.run(process_envelopes(Sink(), envelopes, decoded=decoded))  # type: ignore[arg-type]
    [letter] = result.dead
    assert letter.value == envelopes[3].payload  # the original bytes
    assert dict(letter.headers)["__connect.errors.stage"] == b"decode"


def test_a_rendering_process_that_dies_loses_nothing(pool: RenderPool) -> None:
    envelopes = _envelopes(10)
    assert _render(pool, envelopes) is not None
    for pid in list(pool._pool._processes):
        os.kill(pid, signal.SIGKILL)
    assert _render(pool, envelopes) is None  # the caller decodes this batch itself
    assert pool.deaths == 1
    again = _render(pool, envelopes)  # a new process for the next batch
    assert again is not None
    assert len(again.pairs) == 10  # type: ignore[attr-defined]


def test_a_renderer_a_process_cannot_get_is_refused_at_start() -> None:
    from gateway.errors import ConfigError  # noqa: PLC0415

    with pytest.raises(ConfigError, match="module-level function"):
        RenderPool(1, view_codecs(GatewaySettings()), None, lambda r: r.key)


def test_successive_batches_share_the_sinks_writer_schema_objects(pool: RenderPool) -> None:
    """Sinks cache what they derive from a writer schema by the object (the PostgreSQL sink's columns
    and statements): a copy unpickled with every batch would miss that cache and grow it forever."""
    schemas = []
    for _ in range(3):
        decoded = _render(pool, _envelopes(5))
        assert decoded is not None
        schemas += [rec.writer_schema for _, rec in decoded.pairs]  # type: ignore[attr-defined]
    assert len({id(s) for s in schemas}) == len({r.schema for r in _inline(5)})


def test_a_worker_sends_only_the_schemas_the_sinks_process_was_not_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A parsed view schema is tens of kilobytes: sent with every batch, it is pickled for nothing
    when the sink's process has it; one a registry taught the worker goes once per batch."""
    codecs = view_codecs(GatewaySettings())
    items = [(e.payload, e.key, e.headers, e.topic or "", 0, e.offset or 0) for e in _envelopes(5)]
    monkeypatch.setitem(render._WORKER, "decode", FrameDecoder(codecs).decode)
    monkeypatch.setitem(render._WORKER, "render", render_jsonl)
    monkeypatch.setitem(render._WORKER, "given", frozenset(codecs))
    assert [r[1] for r in render._render(items) if r is not None] == [None] * len(items)
    monkeypatch.setitem(render._WORKER, "given", frozenset())
    sent = [str(r[1][0]) for r in render._render(items) if r is not None and r[1] is not None]
    assert sorted(sent) == sorted({r.schema for r in _inline(5)})
