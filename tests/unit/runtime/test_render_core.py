"""Decoding and rendering outside the sink's process (gateway.flows.render), both halves run here:
a worker's `render_items` renders an actor's batch as the sink's process would; what it declines,
erasures and undecodable frames come back as records or rejections (`Unpacker.decoded`). The
processes that run them are tested on a real broker (tests/integration/test_sink_readers.py)."""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from connectors.file.connector import render_jsonl
from gateway.codec.framing import FrameDecoder
from gateway.connectors import ERASURE_SCHEMA, SinkRecord
from gateway.errors import ConfigError
from gateway.flows import render
from gateway.flows.deliver import Decoded, process_envelopes
from gateway.flows.readers import Readers
from gateway.flows.render import Unpacker
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


Worker = Callable[[list[Envelope]], Decoded]


@pytest.fixture
def worker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Worker]:
    """A worker's state as `render.setup` leaves it (without turning this process's collector off),
    and the sink's process's Unpacker of what it sends back."""
    renderer = request.param if hasattr(request, "param") else render_jsonl
    codecs = view_codecs(GatewaySettings())
    monkeypatch.setitem(render._WORKER, "decode", FrameDecoder(codecs).decode)
    monkeypatch.setitem(render._WORKER, "render", renderer)
    monkeypatch.setitem(render._WORKER, "given", frozenset(codecs))
    unpacker = Unpacker(codecs)

    def run(envelopes: list[Envelope]) -> Decoded:
        items = [
            (e.payload, e.key, e.headers, e.topic or "", e.partition or 0, e.offset or 0) for e in envelopes
        ]
        return unpacker.decoded(envelopes, render.render_items(items))

    yield run


def test_a_batch_comes_back_rendered_as_the_sinks_process_renders_it(worker: Worker) -> None:
    decoded = worker(_envelopes())
    inline = _inline()
    got = [rec for _, rec in decoded.pairs]
    assert [r.rendered for r in got] == [render_jsonl(r) for r in inline]
    assert [(r.schema, r.key, r.headers, r.offset) for r in got] == [
        (r.schema, r.key, r.headers, r.offset) for r in inline
    ]
    assert [r.writer_schema for r in got] == [r.writer_schema for r in inline]
    assert all(r.record == {} for r in got)  # rendered: the decoded record stays in the worker
    assert decoded.rejected == []


@pytest.mark.parametrize(
    "worker",
    [operator.methodcaller("header", "absent"), operator.attrgetter("no_such_field")],
    ids=["declined", "raising"],
    indirect=True,
)
def test_a_record_the_renderer_declines_comes_back_decoded(worker: Worker) -> None:
    got = [rec for _, rec in worker(_envelopes(10)).pairs]
    assert [(r.rendered, r.record) for r in got] == [(None, r.record) for r in _inline(10)]


def test_erasures_are_never_rendered_and_bad_frames_are_dead_lettered(worker: Worker) -> None:
    envelopes = _envelopes(3)
    erasure = effacement("0440224000012")
    envelopes[1] = Envelope(erasure.value, erasure.key, erasure.headers, TOPIC, 0, 1)
    envelopes.append(Envelope(b"\xc3\x01" + b"\x00" * 8 + b"not avro", b"k", (), TOPIC, 0, 3))
    envelopes.append(Envelope(b"", b"k", (), TOPIC, 0, 4))  # a tombstone: compaction only
    decoded = worker(envelopes)
    pairs = decoded.pairs
    assert [rec.offset for _, rec in pairs] == [0, 1, 2]
    effacement_record = pairs[1][1]
    assert (effacement_record.schema, effacement_record.rendered) == (ERASURE_SCHEMA, None)
    assert effacement_record.record["numUnique"] == "0440224000012"
    [(env, why)] = decoded.rejected
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


def test_a_renderer_a_process_cannot_get_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="module-level function"):
        Readers(1, {}, view_codecs(GatewaySettings()), None, lambda r: r.key, max_records=10)


def test_successive_batches_share_the_sinks_writer_schema_objects(worker: Worker) -> None:
    """Sinks cache what they derive from a writer schema by the object (the PostgreSQL sink's columns
    and statements): a copy with every batch would miss that cache and grow it forever."""
    schemas: list[Any] = []
    for _ in range(3):
        schemas += [rec.writer_schema for _, rec in worker(_envelopes(5)).pairs]
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
    assert [r[1] for r in render.render_items(items) if r is not None] == [None] * len(items)
    monkeypatch.setitem(render._WORKER, "given", frozenset())
    sent = [str(r[1][0]) for r in render.render_items(items) if r is not None and r[1] is not None]
    assert sorted(sent) == sorted({r.schema for r in _inline(5)})


class _Polled:
    """A kafka-python ConsumerRecord's fields a reading process uses, each header its own objects
    (as kafka-python parses them: nothing shared between records)."""

    def __init__(self, tp: _TP, offset: int, key: bytes | None, value: bytes, headers: Any) -> None:
        self.topic, self.partition = tp.topic, tp.partition
        self.offset, self.timestamp, self.key, self.value = offset, 1_700_000_000_000 + offset, key, value
        self.headers = headers


class _TP:
    def __init__(self, topic: str, partition: int) -> None:
        self.topic, self.partition = topic, partition


def _fields(r: SinkRecord) -> tuple[Any, ...]:
    """A module-level renderer (it crosses to a worker): what the worker's SinkRecord holds."""
    return (r.schema, r.key, r.headers, r.topic, r.partition, r.offset, r.extra, r.writer_schema["name"])


def test_a_batch_crosses_the_pipe_as_it_was_read(worker: Worker) -> None:
    """`_pack` (a reading process), the pipe's pickling, `_unpack` and `Unpacker.decoded` (the
    sink's process): the envelopes the sink's process makes of the same poll when it reads itself
    (`envelopes_of`), headers included (sent once per distinct pair a batch), and each record equal
    to one built by keyword."""
    from multiprocessing.reduction import ForkingPickler  # noqa: PLC0415

    from gateway.flows.kafka_group import envelopes_of  # noqa: PLC0415
    from gateway.flows.readers import _pack, _unpack  # noqa: PLC0415

    _, stream = actor_stream("200000002", 30)
    polled: dict[Any, list[_Polled]] = {_TP(TOPIC, 0): [], _TP(TOPIC, 3): []}
    for i, r in enumerate(stream):
        heads: Any = [(bytes(k, "ascii").decode(), bytes(bytearray(v))) for k, v in r.headers]
        if i % 10 == 1:
            heads.append(("x-absent", None))  # a header without a value
        elif i % 10 == 2:
            heads = [] if i % 20 == 2 else None  # no headers at all
        tp = list(polled)[i % 2]
        polled[tp].append(_Polled(tp, 100 + i, r.key, r.value, heads))
    unpacker = Unpacker(view_codecs(GatewaySettings()))
    envelopes, results = _unpack(ForkingPickler.loads(ForkingPickler.dumps(_pack(polled))))
    expected = envelopes_of(polled)  # what the sink's process makes of the same poll, reading itself
    assert envelopes == expected
    records = [rec for _, rec in unpacker.decoded(envelopes, results).pairs]
    inline = {r.offset: r for r in sink_records("200000002", topic=TOPIC, count=30)}
    assert len(records) == 30
    for env, rec in zip(expected, records, strict=True):
        like = inline[env.offset - 100]
        assert rec == SinkRecord(
            schema=like.schema,
            key=like.key,
            record={},  # rendered: the decoded record stays in the worker
            headers=env.headers,
            topic=TOPIC,
            partition=env.partition or 0,
            offset=env.offset or 0,
        )
        assert rec.extra == {} and rec.writer_schema is not None and rec.rendered is not None
    assert len({id(r.extra) for r in records}) == len(records)  # each record its own


def test_lean_a_rendered_records_bytes_and_headers_stay_behind_and_its_envelope_says_so(
    worker: Worker,
) -> None:
    """Sink.headers_in_write = False: a rendered record's envelope comes back partial, without its
    value and headers (read again from the topic for a dead letter); a record the worker does not
    render (a tombstone, a frame no codec decodes) comes back whole, as without `lean`."""
    from dataclasses import replace  # noqa: PLC0415
    from multiprocessing.reduction import ForkingPickler  # noqa: PLC0415

    from gateway.flows.kafka_group import envelopes_of  # noqa: PLC0415
    from gateway.flows.readers import _pack, _unpack  # noqa: PLC0415

    _, stream = actor_stream("200000002", 12)
    tp = _TP(TOPIC, 0)
    polled: dict[Any, list[_Polled]] = {tp: []}
    for i, r in enumerate(stream):
        value = b"" if i == 3 else b"not avro" if i == 5 else r.value  # a tombstone, a bad frame
        polled[tp].append(_Polled(tp, 100 + i, r.key, value, list(r.headers)))
    envelopes, results = _unpack(ForkingPickler.loads(ForkingPickler.dumps(_pack(polled, True))), True)
    whole = envelopes_of(polled)
    partial = [replace(e, payload=b"", headers=(), partial=True) for e in whole]
    assert envelopes == [whole[i] if i in (3, 5) else partial[i] for i in range(12)]
    decoded = Unpacker(view_codecs(GatewaySettings())).decoded(envelopes, results)
    assert [env.offset for env, _ in decoded.rejected] == [105]
    assert all(rec.rendered is not None and rec.headers == () for _, rec in decoded.pairs)
    assert len(decoded.pairs) == 10


@pytest.mark.parametrize("worker", [_fields], indirect=True)
def test_the_renderer_gets_each_record_as_the_sinks_process_would(worker: Worker) -> None:
    envelopes = _envelopes(12)
    got = [rec.rendered for _, rec in worker(envelopes).pairs]
    assert got == [_fields(r) for r in _inline(12)]
    assert all(g[6] == {} for g in got)
