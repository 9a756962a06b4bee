"""The ingest loop's failure paths, on stub clients (the real-broker paths are integration tests):
a batch whose sends or membership failed is never committed; what is retried, what is fatal."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest
from gateway.cli import QUIET_LOGGERS, cli
from gateway.errors import FatalError
from gateway.flows.ingest_runner import TRANSACTION_TIMEOUT_MS, IngestRunner
from gateway.monitoring.metrics import Metrics
from kafka.errors import (
    CommitFailedError,
    KafkaError,
    KafkaTimeoutError,
    ProducerFencedError,
    TopicAuthorizationFailedError,
)
from kafka.structs import ConsumerGroupMetadata, TopicPartition

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "sne-xml" / "demande-cre-famille-rennes.xml"
TOPIC = "gp.raw.sne-xml"
TP = TopicPartition(TOPIC, 0)


class Future:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error

    def get(self, timeout: float | None = None) -> None:
        if self.error is not None:
            raise self.error


class Manager:
    last_error: BaseException | None = None


class Producer:
    def __init__(self, fail_send: BaseException | None = None) -> None:
        self.calls: list[str] = []
        self.fail_send = fail_send
        self._transaction_manager = Manager()

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def send(self, topic: str, value: bytes, key: bytes | None = None, headers: Any = None) -> Future:
        self.calls.append("send")
        return Future(self.fail_send)

    def send_offsets_to_transaction(self, offsets: Any, group: Any) -> None:
        self.calls.append("offsets")

    def flush(self) -> None:
        self.calls.append("flush")

    def commit_transaction(self) -> None:
        self.calls.append("commit")

    def abort_transaction(self) -> None:
        self.calls.append("abort")

    def close(self, timeout: float | None = None) -> None:
        self.calls.append("close")


class Consumer:
    def __init__(self) -> None:
        self.membership = ConsumerGroupMetadata("g", 5, "member-1")
        self.during_batch: ConsumerGroupMetadata | None = None  # membership once the batch started
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.commits: list[Any] = []

    def group_metadata(self) -> ConsumerGroupMetadata:
        current = self.membership
        if self.during_batch is not None:
            self.membership = self.during_batch
        return current

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    def commit(self, offsets: Any) -> None:
        self.commits.append(offsets)

    def highwater(self, tp: TopicPartition) -> int:
        return 12


class Record:
    def __init__(self, offset: int) -> None:
        self.topic, self.partition, self.offset = TOPIC, 0, offset
        self.key, self.value, self.timestamp = b"k", SAMPLE.read_bytes(), 1_790_000_000_000


def _runner(producer: Producer, consumer: Consumer, *, exactly_once: bool = True) -> IngestRunner:
    runner = IngestRunner(
        bootstrap="127.0.0.1:1",
        formats={TOPIC: "sne-xml"},
        group_id="g",
        prefix="gp",
        metrics=Metrics(),
        exactly_once=exactly_once,
    )
    runner._producer, runner._consumer = producer, consumer
    return runner


POLLED = {TP: [Record(10), Record(11)]}


def test_a_batch_is_sent_and_committed_in_one_transaction_with_the_polling_generation() -> None:
    producer, consumer = Producer(), Consumer()
    runner = _runner(producer, consumer)
    assert runner.process_batch(POLLED) == 2
    assert producer.calls == ["begin", "send", "send", "flush", "offsets", "commit"]
    assert runner.lag() == {(TOPIC, 0): 0}
    text = runner.metrics.render().decode()
    assert 'gp_records_in_total{flow="ingest",source="sne-xml"} 2.0' in text


def test_a_send_that_failed_without_raising_is_never_committed_then_the_batch_is_re_read() -> None:
    producer, consumer = Producer(fail_send=KafkaTimeoutError("batch expired")), Consumer()
    runner = _runner(producer, consumer)
    with pytest.raises(KafkaTimeoutError) as info:
        runner.process_batch(POLLED)
    assert "commit" not in producer.calls
    runner._recover(info.value, POLLED, failures=1)  # retriable: abort and rewind, no exception
    assert producer.calls[-1] == "abort"
    assert consumer.seeks == [(TP, 10)]
    assert runner.processed == 0


def test_a_batch_whose_consumer_was_evicted_meanwhile_is_not_committed() -> None:
    producer, consumer = Producer(), Consumer()
    consumer.during_batch = ConsumerGroupMetadata("g", -1, "")  # heartbeat thread: UNKNOWN_MEMBER_ID
    runner = _runner(producer, consumer)
    with pytest.raises(CommitFailedError):
        runner.process_batch(POLLED)
    assert "offsets" not in producer.calls and "commit" not in producer.calls


def test_another_worker_with_the_same_transactional_id_is_fatal_even_behind_a_plain_kafka_error() -> None:
    producer, consumer = Producer(), Consumer()
    runner = _runner(producer, consumer)
    runner._in_txn, runner._txn_started = True, time.monotonic()  # a fresh transaction: a real fence
    producer._transaction_manager.last_error = ProducerFencedError()
    with pytest.raises(FatalError, match="GATEWAY_INSTANCE_ID"):
        runner._recover(KafkaError("Cannot execute transactional method"), POLLED, failures=1)


def test_a_transaction_the_broker_aborted_after_its_timeout_is_recovered_with_a_new_producer() -> None:
    producer, consumer = Producer(), Consumer()
    runner = _runner(producer, consumer)
    runner._in_txn = True
    runner._txn_started = time.monotonic() - TRANSACTION_TIMEOUT_MS / 1000  # open through an outage
    runner._recover(ProducerFencedError(), POLLED, failures=1)
    assert runner._producer is None  # replaced at the next turn (init_transactions: a new epoch)
    assert "close" in producer.calls
    assert consumer.seeks == [(TP, 10)]


def test_an_authorisation_error_is_fatal_and_a_bug_is_raised_as_it_is() -> None:
    runner = _runner(Producer(), Consumer())
    with pytest.raises(FatalError, match="TopicAuthorizationFailedError"):
        runner._recover(TopicAuthorizationFailedError("gp.raw.sne-xml.dlq"), POLLED, failures=1)
    bug = ValueError("a message that might quote a value")
    with pytest.raises(ValueError) as info:
        runner._recover(bug, POLLED, failures=1)
    assert info.value is bug


def test_at_least_once_commits_the_offsets_only_after_every_send_succeeded() -> None:
    producer, consumer = Producer(fail_send=KafkaTimeoutError("expired")), Consumer()
    runner = _runner(producer, consumer, exactly_once=False)
    with pytest.raises(KafkaTimeoutError):
        runner.process_batch(POLLED)
    assert consumer.commits == []
    producer.fail_send = None
    runner.process_batch(POLLED)
    assert len(consumer.commits) == 1
    assert "begin" not in producer.calls


def test_the_kafka_clients_never_log_below_info_whatever_the_log_level() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    cli.main(args=["--log-level", "DEBUG", "schemas", "list"], standalone_mode=False)
    for name in QUIET_LOGGERS:
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
