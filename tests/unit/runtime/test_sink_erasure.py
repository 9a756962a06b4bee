"""The sink runtime passes erasures on (no broker): fr.gp.Effacement records recognised by their
schema through the decoder (either framing), given to `Sink.erase` in stream order between writes,
never given up, counted without a numéro unique in labels; a sink that cannot erase is refused
unless the operator allows it."""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Sequence
from typing import ClassVar

import pytest
from gateway.codec.avro import CONFLUENT_MAGIC, load_schemas
from gateway.codec.framing import FrameDecoder, schema_text
from gateway.connectors import (
    ERASURE_SCHEMA,
    CheckResult,
    ConnectorConfig,
    Erasure,
    Sink,
    SinkOutput,
    SinkRecord,
)
from gateway.errors import ConfigError, Problem, RejectedMessage, RetriableError
from gateway.flows.deliver import count_batch
from gateway.flows.egress import process_envelopes
from gateway.flows.sinks import SinkOptions, _plan, load_sinks_file, view_codecs
from gateway.model.envelope import Envelope
from gateway.monitoring.metrics import Metrics
from gateway.retry import RetryPolicy
from gateway.settings import GatewaySettings
from gateway.testing.actor_stream import ActorRecord, actor_stream
from gateway.testing.effacement import effacement

TOPIC = "gp.actor.200000002"


class _Config(ConnectorConfig):
    pass


class Recording(Sink):
    """Notes every call in order. Delivery: at-least-once."""

    name: ClassVar[str] = "recording"
    Config: ClassVar[type[ConnectorConfig]] = _Config
    guarantee = "at-least-once"
    erases: ClassVar[bool] = True

    def __init__(self, failures: Sequence[BaseException] = ()) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.failures = list(failures)  # raised by the next erase calls, one each

    def check(self) -> CheckResult:
        return CheckResult(ok=True)

    async def write(self, batch: Sequence[SinkRecord]) -> Sequence[SinkOutput]:
        self.calls.append(("write", [r.key for r in batch]))
        return []

    async def erase(self, erasures: Sequence[Erasure]) -> Sequence[SinkOutput]:
        if self.failures:
            raise self.failures.pop(0)
        self.calls.append(("erase", [e.key for e in erasures]))
        return []

    async def flush(self) -> None:
        return None


class CannotErase(Recording):
    """Cannot erase. Delivery: at-least-once."""

    erases: ClassVar[bool] = False


def _stream() -> tuple[list[ActorRecord], str, str]:
    """Records of two applications, K's Effacement, then a new record of K."""
    _, records = actor_stream("200000002")
    keys = [r.key for r in records if r.key]
    k = max(set(keys), key=keys.count)
    other = next(x for x in keys if x != k)
    first_k = next(r for r in records if r.key == k)
    first_other = next(r for r in records if r.key == other)
    assert k is not None
    stream = [first_k, first_other, effacement(k.decode()), first_k.with_id("#new")]
    stream[3] = ActorRecord(k, stream[3].value, stream[3].headers, stream[3].view)  # same key: K again
    return stream, k.decode(), (other or b"").decode()


def _envelopes(records: Sequence[ActorRecord]) -> list[Envelope]:
    return [Envelope(r.value, r.key, r.headers, TOPIC, 0, i) for i, r in enumerate(records)]


def _run(sink: Sink, envs: list[Envelope], **kwargs: object) -> object:
    codecs = view_codecs(GatewaySettings())
    return asyncio.run(process_envelopes(sink, envs, codecs=codecs, **kwargs))  # type: ignore[arg-type]


def test_an_erasure_is_delivered_in_stream_order_between_writes() -> None:
    records, k, other = _stream()
    sink = Recording()
    result = _run(sink, _envelopes(records))
    assert sink.calls == [("write", [k, other]), ("erase", [k]), ("write", [k])]
    assert (result.written, result.erased, result.dead) == (3, 1, [])  # type: ignore[attr-defined]


def test_the_erasure_carries_the_effacement_and_its_coordinates() -> None:
    records, k, _ = _stream()
    seen: list[Erasure] = []

    class Keeping(Recording):
        async def erase(self, erasures: Sequence[Erasure]) -> Sequence[SinkOutput]:
            seen.extend(erasures)
            return []

    _run(Keeping(), _envelopes(records))
    (erasure,) = seen
    assert erasure.key == erasure.num_unique == k
    assert erasure.record.schema == ERASURE_SCHEMA
    assert (erasure.record.topic, erasure.record.offset) == (TOPIC, 2)
    assert erasure.date_effacement > erasure.date_radiation


def test_an_erasure_in_the_confluent_wire_format_is_recognised() -> None:
    records, k, _ = _stream()
    codec = load_schemas().codec(ERASURE_SCHEMA)

    class Registry:  # what the registry answers for the schema id the route flow got
        def schema(self, sid: int) -> str:
            assert sid == 42
            return schema_text(codec)

    framed = CONFLUENT_MAGIC + struct.pack(">I", 42) + records[2].value[10:]
    records[2] = ActorRecord(records[2].key, framed, records[2].headers, records[2].view)
    decoder = FrameDecoder(view_codecs(GatewaySettings()), Registry())  # type: ignore[arg-type]
    sink = Recording()
    _run(sink, _envelopes(records), decoder=decoder)
    assert ("erase", [k]) in sink.calls


def test_an_erasure_is_retried_past_the_retry_limit_and_never_dropped() -> None:
    records, k, _ = _stream()
    sink = Recording([RetriableError("database away")] * 3)
    result = _run(sink, _envelopes(records), retry=RetryPolicy(attempts=1, base_delay=0, max_delay=0))
    assert ("erase", [k]) in sink.calls
    assert (result.erased, result.dead) == (1, [])  # type: ignore[attr-defined]


def test_an_erasure_the_sink_rejects_is_dead_lettered_with_its_bytes() -> None:
    records, _, _ = _stream()
    refused = RejectedMessage("refused", [Problem("erasure", "refused", "42501")])
    sink = Recording([refused, refused])  # the run, then the erasure alone
    result = _run(sink, _envelopes(records), retry=RetryPolicy(attempts=1, base_delay=0, max_delay=0))
    (dead,) = result.dead  # type: ignore[attr-defined]
    assert dead.value == records[2].value
    assert dead.topic == TOPIC + ".dlq"
    assert (result.erased, result.erasures_refused) == (0, 1)  # type: ignore[attr-defined]


def test_a_sink_that_cannot_erase_gets_the_effacement_as_a_record() -> None:
    records, k, other = _stream()
    sink = CannotErase()
    result = _run(sink, _envelopes(records))
    assert sink.calls == [("write", [k, other, k, k])]
    assert result.not_erased == 1  # type: ignore[attr-defined]


def test_a_sink_that_cannot_erase_is_refused_unless_the_operator_allows_it() -> None:
    settings = GatewaySettings()
    with pytest.raises(ConfigError, match=r"cannot erase.*--allow-no-erasure"):
        _plan(CannotErase(), settings, SinkOptions(actor="200000002"))
    assert _plan(CannotErase(), settings, SinkOptions(actor="200000002", allow_no_erasure=True))
    assert _plan(Recording(), settings, SinkOptions(actor="200000002"))


def test_a_sinks_file_carries_the_operators_choice(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "sinks.yaml"  # type: ignore[operator]
    path.write_text(
        "sinks:\n  - {connector: file, actor: '200000002', config: {dir: /tmp/x}, allow_no_erasure: true}\n"
    )
    ((_, options),) = load_sinks_file(path)
    assert options.allow_no_erasure


def test_erasures_are_counted_without_a_numero_unique() -> None:
    records, k, _ = _stream()
    result = _run(Recording(), _envelopes(records))
    metrics = Metrics()
    count_batch(metrics, "recording", 4, result, 0.01)
    text = metrics.render().decode()
    assert 'gp_sink_erasures_total{outcome="erased",source="recording"} 1.0' in text
    assert k not in text


def test_an_effacement_holds_no_nominative_field() -> None:
    fields = [f["name"] for f in json.loads(schema_text(load_schemas().codec(ERASURE_SCHEMA)))["fields"]]
    assert fields == ["numUnique", "dateRadiation", "dateEffacement", "time", "par", "stores"]
