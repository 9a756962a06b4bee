"""The egress runner's core (no broker): batch write, per-record fallback, bounded retries, dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, ClassVar

from connectors.sne.testing import demande
from gateway.codec.avro import encode_single_object, load_schemas
from gateway.connectors import CheckResult, ConnectorConfig, Guarantee, Sink, SinkOutput, SinkRecord
from gateway.errors import Problem, RejectedMessage, RetriableError
from gateway.flows.egress import RetryPolicy, process_envelopes
from gateway.model.envelope import Envelope

DEMANDE = load_schemas().codec("Demande")


def _ref(rec: SinkRecord) -> str:
    prov: Any = rec.record["provenance"]
    return str(prov["referenceSource"])


class FlakySink(Sink):
    """Fails per reference: 'retry-N' fails N times then works, 'bad' is rejected, 'down' never works."""

    name: ClassVar[str] = "flaky"
    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    guarantee: ClassVar[Guarantee] = "at-least-once"

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.rejections: list[str] = []

    def check(self) -> CheckResult:
        return CheckResult(True)

    async def flush(self) -> None:
        return None

    async def write(self, batch: Sequence[SinkRecord]) -> Sequence[SinkOutput]:
        outs = []
        for rec in batch:
            ref = _ref(rec)
            n = self.calls[ref] = self.calls.get(ref, 0) + 1
            if ref == "bad":
                err = RejectedMessage("refused", [Problem("numGuichet", "missing")])
                err.extra_headers = (("gp.sne.raw_answer", b"<raw/>"),)  # type: ignore[attr-defined]
                raise err
            if ref == "down" or (ref.startswith("retry-") and n <= int(ref.split("-")[1])):
                raise RetriableError("SNE unavailable")
            outs.append(SinkOutput("gp.feedback.x", ref.encode(), b"ok", ()))
        return outs

    def outputs_for_rejection(self, rec: SinkRecord, error: BaseException, attempts: int) -> list[SinkOutput]:
        self.rejections.append(f"{_ref(rec)}:{attempts}")
        return [SinkOutput("gp.feedback.x", b"rejected", b"", ())]


def _env(ref: str, offset: int) -> Envelope:
    value = encode_single_object(DEMANDE, demande(ref))
    return Envelope(value, key=ref.encode(), topic="gp.canonical.demande", partition=0, offset=offset)


FAST = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0)


def test_a_clean_batch_is_written_once() -> None:
    sink = FlakySink()
    result = asyncio.run(process_envelopes(sink, [_env("a", 1), _env("b", 2)], retry=FAST))
    assert [o.key for o in result.outputs] == [b"a", b"b"]
    assert result.dead == [] and result.written == 2
    assert sink.calls == {"a": 1, "b": 1}


def test_one_bad_record_does_not_hold_the_others() -> None:
    sink = FlakySink()
    envs = [_env("a", 1), _env("bad", 2), _env("retry-1", 3), _env("down", 4)]
    result = asyncio.run(process_envelopes(sink, envs, retry=FAST))
    assert sorted(o.key or b"" for o in result.outputs if o.value == b"ok") == [b"a", b"retry-1"]
    assert [d.topic for d in result.dead] == ["gp.canonical.demande.dlq"] * 2
    bad, down = result.dead
    headers_bad, headers_down = dict(bad.headers), dict(down.headers)
    assert bad.value == envs[1].payload  # the original bytes, untouched
    assert headers_bad["gp.sne.raw_answer"] == b"<raw/>"
    assert headers_bad["__connect.errors.offset"] == b"2"
    assert headers_down["gp.errors.attempts"] == b"3"
    assert headers_down["__connect.errors.stage"] == b"sink:flaky"
    assert sink.rejections == ["bad:1", "down:3"]
    assert sink.calls["down"] == 3  # the batch stopped at "bad" before it; then the bounded retries


def test_undecodable_input_is_dead_lettered_at_decode() -> None:
    sink = FlakySink()
    junk = Envelope(b"not avro", key=b"k", topic="gp.canonical.demande", partition=0, offset=9)
    result = asyncio.run(process_envelopes(sink, [junk], retry=FAST))
    assert sink.calls == {}
    [dead] = result.dead
    assert dict(dead.headers)["__connect.errors.stage"] == b"decode"


def test_backoff_is_exponential_and_bounded() -> None:
    policy = RetryPolicy(attempts=10, base_delay=0.5, max_delay=4.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert policy.delay(1, retry_after=2.5) == 2.5


def test_broker_away_is_told_from_record_and_program_errors() -> None:
    from gateway.errors import FatalError  # noqa: PLC0415
    from gateway.flows.egress import BROKER_BACKOFF, broker_lost  # noqa: PLC0415
    from kafka.errors import (  # noqa: PLC0415
        CommitFailedError,
        KafkaConnectionError,
        KafkaTimeoutError,
        MessageSizeTooLargeError,
    )

    for away in (KafkaTimeoutError(), KafkaConnectionError(), CommitFailedError(), RetriableError("admin")):
        assert broker_lost(away), away
    for other in (MessageSizeTooLargeError(), FatalError("bug"), ValueError("x"), RejectedMessage("bad", [])):
        assert not broker_lost(other), other
    assert [BROKER_BACKOFF.delay(n) for n in (1, 2, 3, 5, 6, 9)] == [1, 2, 4, 16, 30, 30]
