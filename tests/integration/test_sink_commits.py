"""The sink runtime's commits on a real broker: asynchronous after each batch, synchronous when a
run drains (`--until-idle`) and when partitions are revoked. A second member joining the group takes
over partitions exactly where the first one's writes stopped: no record lost, none written twice."""

from __future__ import annotations

import asyncio
import operator
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import pytest
from connectors.sne.testing import demande
from gateway.codec.avro import encode_single_object, load_schemas
from gateway.connectors import CheckResult, ConnectorConfig, Sink, SinkOutput, SinkRecord
from gateway.flows.egress import EgressRunner
from gateway.testing.kafka import client_kwargs, create_topics, end_offsets
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

pytestmark = pytest.mark.integration

N = 1500  # 500 a partition: the second member joins before the first has finished any


class Noting(Sink):
    """Notes (partition, offset) of every record written; `pause_s` a batch. At-least-once."""

    name: ClassVar[str] = "noting"
    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    guarantee = "at-least-once"
    erases: ClassVar[bool] = True

    def __init__(self, pause_s: float = 0.0, *, rendering: bool = False) -> None:
        self.written: list[tuple[int, int]] = []
        self.pause_s = pause_s
        self.rendering = rendering

    def renderer(self) -> Callable[[SinkRecord], Any] | None:
        # with it, the runner's reading process reads and renders the batches while it writes
        return operator.attrgetter("key") if self.rendering else None

    def check(self) -> CheckResult:
        return CheckResult(ok=True)

    async def write(self, batch: Sequence[SinkRecord]) -> Sequence[SinkOutput]:
        if self.pause_s:
            await asyncio.sleep(self.pause_s)
        if self.rendering:
            assert all(r.rendered == r.key for r in batch)  # read and rendered in a process
        self.written += [(r.partition, r.offset) for r in batch]
        return []

    async def flush(self) -> None:
        return None


def _topic(bootstrap: str, count: int = N) -> str:
    topic = f"commits-{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, [topic, f"{topic}.dlq"], partitions=3)
    _send(bootstrap, topic, range(count))
    return topic


def _send(bootstrap: str, topic: str, numbers: range) -> None:
    """Records number i to partition i % 3."""
    value = encode_single_object(load_schemas().codec("fr.gp.Demande"), demande("ERP-COMMIT"))
    producer = KafkaProducer(**client_kwargs(bootstrap), acks="all")
    try:
        for i in numbers:
            producer.send(topic, key=f"k{i}".encode(), value=value, partition=i % 3)
        producer.flush()
    finally:
        producer.close()


def _runner(bootstrap: str, topic: str, group: str, sink: Noting) -> EgressRunner:
    return EgressRunner(
        sink,
        topics=[topic],
        group_id=group,
        client=client_kwargs(bootstrap),
        max_records=20,
        poll_timeout_ms=200,
        render_processes=1 if sink.rendering else 0,
    )


def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    """The group's committed offsets (an offset fetch: the reader joins nothing)."""
    reader = KafkaConsumer(**client_kwargs(bootstrap), group_id=group, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())]
        return {tp.partition: reader.committed(tp) for tp in parts}
    finally:
        reader.close()


@pytest.mark.parametrize("rendering", [False, True], ids=["decoded", "reading-process"])
def test_a_drained_run_has_committed_every_offset(kafka_bootstrap: str, rendering: bool) -> None:
    topic = _topic(kafka_bootstrap)
    group = f"g-{uuid.uuid4().hex[:8]}"
    sink = Noting(rendering=rendering)
    runner = _runner(kafka_bootstrap, topic, group, sink)
    asyncio.run(runner.run(asyncio.Event(), until_idle=True))
    assert len(sink.written) == N
    assert _committed(kafka_bootstrap, group, topic) == end_offsets(kafka_bootstrap, topic)


@pytest.mark.parametrize("async_commits", ["acknowledged", "lost", "reading-process"])
def test_a_member_joining_takes_over_where_the_first_ones_writes_stopped(
    kafka_bootstrap: str, async_commits: str
) -> None:
    # "lost": the first member's asynchronous commits never reach the broker (as when the member
    # dies or the rebalance overtakes them): only the commit made when its partitions are revoked
    # tells the second member where to start
    topic = _topic(kafka_bootstrap, 30)  # 10 a partition: the first member writes on each one
    group = f"g-{uuid.uuid4().hex[:8]}"
    # slow until the second has joined; "reading-process": batches read ahead (by a process, while the
    # sink writes) are waiting when the rebalance comes, and are dropped, then read again
    rendering = async_commits == "reading-process"
    first, second = Noting(pause_s=0.25, rendering=rendering), Noting(pause_s=0.25, rendering=rendering)
    stop = threading.Event()
    errors: list[BaseException] = []

    runners: list[EgressRunner] = []
    stale: list[set[tuple[str, int]]] = []  # lag reported for partitions no longer assigned

    def member(sink: Noting) -> None:
        runner = _runner(kafka_bootstrap, topic, group, sink)
        runners.append(runner)
        if rendering:  # once the readers are given a new assignment, the lag is of that one only
            given = runner._poll_group

            def poll_group() -> bool:
                ready = given()
                if ready:
                    mine = {(tp.topic, tp.partition) for tp in runner.consumer.assignment()}
                    if set(runner.lag()) - mine:
                        stale.append(set(runner.lag()) - mine)
                return ready

            runner._poll_group = poll_group  # type: ignore[method-assign]
        if async_commits == "lost" and sink is first:
            runner.consumer.commit_async = lambda **_: None

        async def loop() -> None:
            try:
                while not stop.is_set():
                    await runner.run_once()
            finally:
                runner.close()

        try:
            asyncio.run(loop())
        except BaseException as exc:  # noqa: BLE001 - told to the test
            errors.append(exc)

    threads = [threading.Thread(target=member, args=(first,), daemon=True)]
    threads[0].start()
    deadline = time.monotonic() + 60
    while len(first.written) < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert {p for p, _ in first.written} == {0, 1, 2}, "the first member did not write on every partition"
    _send(kafka_bootstrap, topic, range(30, N))
    threads.append(threading.Thread(target=member, args=(second,), daemon=True))
    threads[1].start()  # a rebalance: the first member's partitions are revoked mid-stream
    while len(set(first.written) | set(second.written)) < N and time.monotonic() < deadline + 60:
        if second.written:  # the rebalance is done: no need to go slowly any more
            first.pause_s = second.pause_s = 0.0
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert second.written, "the second member was given no partition"
    everything = first.written + second.written
    assert len(set(everything)) == N  # nothing lost
    assert len(everything) == N  # nothing written twice: the revoked partitions were committed first
    assert not stale, stale
    if rendering:  # the rebalance came while the first member had batches read ahead: dropped
        assert runners[0].sink is first
        assert runners[0].dropped >= 1


def test_a_topic_that_appears_after_the_assignment_is_read_even_with_short_polls(
    kafka_bootstrap: str,
) -> None:
    """New metadata (a subscribed topic created after the first assignment) asks for a rejoin; its
    answer comes after a poll's timeout here (5 ms): the runner still takes it in (the member is not
    left rebalancing with its heartbeat off, fetching nothing, until the broker expels it)."""
    first, later = f"late-{uuid.uuid4().hex[:8]}", f"late-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, [first])
    sink = Noting()
    runner = EgressRunner(
        sink,
        topics=[first, later],
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        client=client_kwargs(kafka_bootstrap),
        poll_timeout_ms=5,
    )

    async def drive() -> None:
        deadline = time.monotonic() + 30
        while not runner.consumer.assignment() and time.monotonic() < deadline:
            await runner.run_once()
        assert runner.consumer.assignment() == {TopicPartition(first, 0)}
        create_topics(kafka_bootstrap, [later, f"{later}.dlq"])
        _send(kafka_bootstrap, later, range(1))
        deadline = time.monotonic() + 30
        while not sink.written and time.monotonic() < deadline:
            await runner.run_once()
        assert sink.written == [(0, 0)]
        assert runner.consumer.assignment() == {TopicPartition(first, 0), TopicPartition(later, 0)}

    try:
        asyncio.run(drive())
    finally:
        runner.close()


def test_after_a_rebalance_with_nothing_to_read_the_lag_is_of_the_partitions_kept(
    kafka_bootstrap: str,
) -> None:
    """A member read everything, then a second member joins and takes partitions; nothing new is
    written, so the first gets no batch: its lag (kafka_consumergroup_lag) is still measured again,
    and no longer lists the partitions it gave away."""
    topic = _topic(kafka_bootstrap, 30)
    group = f"g-{uuid.uuid4().hex[:8]}"
    first, second = Noting(), Noting()
    runners = [_runner(kafka_bootstrap, topic, group, s) for s in (first, second)]
    stop = threading.Event()

    def keep_up(runner: EgressRunner) -> None:
        async def loop() -> None:
            while not stop.is_set():
                await runner.run_once()

        asyncio.run(loop())

    async def drain() -> None:
        deadline = time.monotonic() + 60
        while len(first.written) < 30 and time.monotonic() < deadline:
            await runner.run_once()

    runner = runners[0]
    try:
        asyncio.run(drain())
        assert len(runner.lag()) == 3  # every partition, read to its end
        joining = threading.Thread(target=keep_up, args=(runners[1],), daemon=True)
        joining.start()

        async def until_given_away() -> set[tuple[str, int]]:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                await runner.run_once()
                mine = {(tp.topic, tp.partition) for tp in runner.consumer.assignment()}
                if mine and len(mine) < 3:
                    return mine
            raise AssertionError("the second member was given no partition")

        mine = asyncio.run(until_given_away())
        asyncio.run(runner.run_once())  # an empty poll: nothing to read
        assert set(runner.lag()) <= mine
        assert len(first.written) == 30  # no batch since the rebalance: none measured the lag
        stop.set()
        joining.join(30)
    finally:
        stop.set()
        for r in runners:
            r.close()
