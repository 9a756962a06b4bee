"""The signals flow's due indexes: one `DueIndex` per partition of this worker, built from the
application table on the first tick after an assignment, dropped on every rebalance (moved from
gateway/flows/signals.py, which it kept under the module size budget, with `forget` for erasures)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from gateway.signals.erasure import partition_of
from gateway.signals.state import DueIndex

__all__ = ["DueIndexes"]

_log = logging.getLogger("gateway.flows.signals")


class DueIndexes:
    """One DueIndex per partition of this worker, built from the table on the first tick after an
    assignment (dropped on every rebalance)."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.by_partition: dict[int, DueIndex] | None = None
        self.generation = 0  # bumped by every rebalance

    def reset(self) -> None:
        self.by_partition = None
        self.generation += 1

    async def build(self, table: Any, due_of: Callable[[bytes | None], int | None]) -> None:
        """Read every state of the table once. It yields to the event loop every few thousand
        states (2.7 M take ~30 s of CPU: the consumer's heartbeats must go on) and gives up when a
        rebalance comes meanwhile (the next tick builds again)."""
        started = time.perf_counter()
        generation = self.generation
        built: dict[int, DueIndex] = {}
        keys = [k for k in list(table.keys()) if k]  # a snapshot: recovery may change the table
        for n, key in enumerate(keys, 1):
            if n % 5000 == 0:
                await asyncio.sleep(0)
                if self.generation != generation:
                    return
            value = table.get(key)
            if value is None:
                continue
            part = partition_of(key, self.partitions)
            built.setdefault(part, DueIndex()).add(key.decode(errors="replace"), due_of(value))
        self.by_partition = built
        elapsed = time.perf_counter() - started
        _log.info("signals: due index of %d applications built in %.1f s", len(keys), elapsed)

    def add(self, partition: int, key: bytes, day: int | None) -> None:
        if self.by_partition is not None and day is not None:
            self.by_partition.setdefault(partition, DueIndex()).add(key.decode(errors="replace"), day)

    def forget(self, partition: int, key: bytes) -> None:
        if self.by_partition is not None and partition in self.by_partition:
            self.by_partition[partition].forget(key.decode(errors="replace"))
