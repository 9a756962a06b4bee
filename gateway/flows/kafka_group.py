"""kafka-python consumer groups: the sink runtime's rebalance listener, and the repair of a rejoin
that a short poll left unfinished (also used by the ingest runner)."""

from __future__ import annotations

import logging
from typing import Any

from gateway.flows.deliver import reason

__all__ = ["rejoin_left_unfinished", "resume_listener"]

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
    when partitions come, exactly-once sinks resume from the offsets stored with their data."""
    from kafka import AsyncConsumerRebalanceListener, TopicPartition  # noqa: PLC0415

    class Resume(AsyncConsumerRebalanceListener):  # type: ignore[misc]  # kafka-python has no type hints
        async def on_partitions_revoked(self, revoked: Any) -> None:
            runner.rebalances += 1  # a batch in flight is dropped (run_once)
            offsets = runner.unacknowledged(set(revoked))
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
