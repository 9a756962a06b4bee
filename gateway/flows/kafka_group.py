"""kafka-python consumer groups: the sink runtime's commits, rebalance listener and polled records,
and the repair of a rejoin that a short poll left unfinished (also used by the ingest runner)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.errors import RetriableError
from gateway.flows.deliver import SinkUnavailable, reason
from gateway.model.envelope import Envelope

__all__ = [
    "Commits",
    "envelopes_of",
    "first_offsets",
    "lag_of",
    "read_to_end",
    "rebalancing",
    "rejoin_left_unfinished",
    "resume_listener",
    "stored_offsets",
]

log = logging.getLogger("gateway.flows.egress")


def rejoin_left_unfinished(consumer: Any, who: str) -> bool:
    """kafka-python (3.0) can leave a rejoin half done: when new metadata asked for it (a subscribed
    topic or partition that appeared after the last assignment) and the JoinGroup/SyncGroup answer
    comes after the poll's timeout, the assignment made during that join settles the metadata check,
    so no later poll takes the answer in. The member stays "rebalancing" with its heartbeat off and
    its old assignment, fetches nothing and is expelled once its session times out. Asking for the
    rejoin again (before a poll, on the only thread that polls) makes the next polls send a JoinGroup
    and wait for its answer, as for the first join. True when it had to (logged, naming `who`)."""
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None or not getattr(coordinator, "rejoining", False) or coordinator.need_rejoin():
        return False
    coordinator.request_rejoin()
    log.info("%s: the group's last rejoin was left unfinished; joining again", who)
    return True


def resume_listener(runner: Any) -> Any:
    """Rebalance listener (run on kafka-python's network thread, which it must not block on its own
    requests: hence the awaited commit): before partitions go, what was written of them is committed;
    when partitions come, exactly-once sinks resume from the offsets stored with their data (with
    reading processes, gateway.flows.readers, the partitions are paused: the readers fetch them)."""
    from kafka import AsyncConsumerRebalanceListener, TopicPartition  # noqa: PLC0415

    class Resume(AsyncConsumerRebalanceListener):  # type: ignore[misc]  # kafka-python has no type hints
        async def on_partitions_revoked(self, revoked: Any) -> None:
            runner.rebalances += 1  # a batch in flight is dropped (run_once)
            offsets = runner.unacknowledged(set(revoked))
            # never committed by this member again (at the end of its run, say): their next owner's
            runner.commits.forget(set(revoked))
            coordinator = getattr(runner.consumer, "_coordinator", None)
            commit = getattr(coordinator, "_commit_offsets_sync_async", None)
            if not offsets or commit is None:
                return
            try:  # the next owner starts where this member's writes stopped
                await commit(offsets, timeout_ms=runner.commit_timeout_ms)
            except Exception as exc:  # noqa: BLE001 - the next owner delivers those batches again
                log.warning("%s: cannot commit before a rebalance (%s)", runner.name, reason(exc))

        async def on_partitions_assigned(self, assigned: Any) -> None:
            runner.rebalances += 1
            if getattr(runner, "readers", None) is not None:  # they fetch: this consumer must not
                runner.consumer.pause(*assigned)
            parts = [(tp.topic, tp.partition) for tp in assigned]
            try:
                stored = runner.sink.resume_offsets(parts) if parts else {}
            except Exception as exc:  # noqa: BLE001 - e.g. the database is down: retried by run_once
                log.warning("%s: cannot read the stored offsets (%s); retrying", runner.name, reason(exc))
                runner.resume_pending = True
                return
            for (topic, partition), offset in stored.items():
                runner.consumer.seek(TopicPartition(topic, partition), offset)

    return Resume()


class Commits:
    """A sink's commits (ack after write): each batch written commits where it left its partitions,
    asynchronously, unless the previous asynchronous commit failed (then synchronously: a lost broker
    raises there and is waited for). What was written and not yet acknowledged is committed when
    partitions are revoked (resume_listener) and when the run ends (`commit_done`)."""

    def __init__(self, consumer: Any, timeout_ms: int) -> None:
        self.consumer = consumer
        self.timeout_ms = timeout_ms
        self.done: dict[Any, Any] = {}  # TopicPartition -> OffsetAndMetadata of what was written
        self._acked: dict[Any, Any] = {}  # ... the broker acknowledged
        self._failed: BaseException | None = None  # the last asynchronous commit's error

    def commit(self, offsets: dict[Any, Any]) -> None:
        self.done = offsets
        failed, self._failed = self._failed, None
        if failed is not None:
            from kafka.errors import RebalanceInProgressError  # noqa: PLC0415

            try:
                self.consumer.commit(offsets=offsets, timeout_ms=self.timeout_ms)
            except RebalanceInProgressError:
                return  # committed when the partitions are revoked (resume_listener), else read again
            self._acked = offsets
            return

        def answered(committed: Any, response: Any) -> None:
            if isinstance(response, BaseException):
                self._failed = response
            elif self.done is committed:
                self._acked = committed

        self.consumer.commit_async(offsets=offsets, callback=answered)

    def keep(self, assigned: Any) -> None:
        """Forget the partitions not in `assigned` (after a rebalance): never committed by this member."""
        self.forget({tp for tp in self.done if tp not in assigned})

    def forget(self, revoked: Any) -> None:
        """Forget revoked partitions (their next owner commits them from now on)."""
        if any(tp in revoked for tp in self.done):
            self.done = {tp: o for tp, o in self.done.items() if tp not in revoked}

    def unacknowledged(self, partitions: Any = None) -> dict[Any, Any]:
        """The offsets written and not yet acknowledged by the broker (of `partitions` when given)."""
        done = self.done
        if not done or done is self._acked:
            return {}
        return {tp: o for tp, o in done.items() if partitions is None or tp in partitions}

    def commit_done(self, timeout_ms: int | None = None) -> None:
        """Commit synchronously what was written and not yet acknowledged: at the end of a run."""
        offsets = self.unacknowledged()
        if offsets:
            self.consumer.commit(offsets=offsets, timeout_ms=timeout_ms or self.timeout_ms)
            self._acked = self.done


def rebalancing(consumer: Any) -> bool:
    """The group is rebalancing (or this member is out of it): what is written now could not be
    committed, and its partitions may be given to another member."""
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None:
        return False
    unstable = coordinator.generation_if_stable() is None
    return bool(coordinator.need_rejoin() or coordinator.rejoining or unstable)


def first_offsets(envelopes: Sequence[Envelope]) -> dict[Any, int]:
    """The first offset of each partition in `envelopes` (a partition's records come in order)."""
    from kafka import TopicPartition  # noqa: PLC0415

    firsts: dict[tuple[str | None, int | None], int] = {}
    for env in envelopes:
        at = (env.topic, env.partition)
        if at not in firsts:
            firsts[at] = int(env.offset or 0)
    return {TopicPartition(topic, partition): offset for (topic, partition), offset in firsts.items()}


def envelopes_of(polled: Mapping[Any, Sequence[Any]]) -> list[Envelope]:
    """The envelopes of a poll's records (kafka-python ConsumerRecords), partition by partition."""
    return [
        Envelope(
            payload=m.value or b"",
            key=m.key,
            headers=tuple(m.headers or ()),
            topic=m.topic,
            partition=m.partition,
            offset=m.offset,
            timestamp_ms=m.timestamp,
        )
        for records in polled.values()
        for m in records
    ]


async def stored_offsets(sink: Any, consumer: Any, who: str) -> dict[Any, int]:
    """Where an exactly-once sink says its assigned partitions resume (TopicPartition -> offset),
    asked again when it could not say it at the assignment; SinkUnavailable (retried with backoff)
    while it still cannot."""
    from kafka import TopicPartition  # noqa: PLC0415

    assigned = [(tp.topic, tp.partition) for tp in consumer.assignment()]
    try:
        stored = await asyncio.to_thread(sink.resume_offsets, assigned)
    except RetriableError as exc:
        raise SinkUnavailable(f"sink {who}: {reason(exc)}") from exc
    return {TopicPartition(topic, partition): offset for (topic, partition), offset in stored.items()}


def lag_of(
    consumer: Any, written: Mapping[Any, int] | None, high: Mapping[Any, int]
) -> dict[tuple[str, int], int]:
    """Records not yet written per partition (kafka_consumergroup_lag): with reading processes, from
    where each partition was written up to (`written`) and its high watermark as they last saw it
    (`high`); else from the consumer's own positions and high watermarks."""
    out: dict[tuple[str, int], int] = {}
    if written is not None:
        for tp, at in written.items():
            if (end := high.get(tp)) is not None:
                out[(tp.topic, tp.partition)] = max(0, end - at)
        return out
    for tp in list(consumer.assignment()):
        end = consumer.highwater(tp)
        if end is not None:
            out[(tp.topic, tp.partition)] = max(0, int(end) - int(consumer.position(tp) or 0))
    return out


def read_to_end(consumer: Any, written: Mapping[Any, int] | None) -> bool:
    """Partitions are assigned and each one is read to its end: with reading processes, written up
    to it (`written`); else the consumer's own position there."""
    assigned = list(consumer.assignment())
    if not assigned:
        return False
    ends = consumer.end_offsets(assigned)
    if written is not None:
        return all(written.get(tp, -1) >= ends.get(tp, 0) for tp in assigned)
    return all(consumer.position(tp) >= ends.get(tp, 0) for tp in assigned)
