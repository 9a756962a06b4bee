"""Drive a sink in a test as the runtime does: write a batch, then flush whatever happened."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from gateway.connectors import Sink, SinkRecord

__all__ = ["write_and_flush"]


def write_and_flush(sink: Sink, records: Sequence[SinkRecord]) -> None:
    """`sink.write(records)`, then `sink.flush()` (closes what the sink keeps open) even when the
    write raised; the write's exception propagates."""

    async def go() -> None:
        try:
            await sink.write(records)
        finally:
            await sink.flush()

    asyncio.run(go())
