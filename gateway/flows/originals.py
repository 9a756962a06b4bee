"""The original bytes and headers of records read again from their topic, for dead letters.

A sink that does not read a rendered record's headers (`Sink.headers_in_write = False`) gets, from
its reading processes, only what it writes: the record's value and headers stay in the process that
read it (gateway.flows.readers). When such a record is dead-lettered (rare), the sink's process
reads it again, by its coordinates, with a consumer of its own (no group, the principal's
connection settings) and gives the dead letter the original bytes and headers, as any dead letter
has them. A record no longer in its topic (retention or compaction passed it between the read and
the rejection) is dead-lettered with an empty value and `gp.errors.original: gone`; one that could
not be read again (the broker away for the whole wait) with `gp.errors.original: unavailable`: the
letter is never held back (the sink has stored its offsets: a batch delivered again would skip the
record), and its error headers still say where it is (topic, partition, offset) and why.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.connectors import SinkOutput
from gateway.errors import RetriableError
from gateway.flows.deliver import EgressResult
from gateway.model.envelope import Envelope

__all__ = ["GONE_HEADER", "UNAVAILABLE_HEADER", "read_originals", "restore", "restore_dead_letters"]

log = logging.getLogger("gateway.flows.egress")

Coordinates = tuple[str, int, int]  # topic, partition, offset
Original = tuple[bytes, tuple[tuple[str, bytes], ...]] | None  # value, headers; None: gone
GONE_HEADER = ("gp.errors.original", b"gone")
UNAVAILABLE_HEADER = ("gp.errors.original", b"unavailable")


def read_originals(
    client: Mapping[str, Any], wanted: Sequence[Coordinates], timeout_s: float
) -> dict[Coordinates, Original]:
    """Each record's value and headers, read from its topic; None for one that is gone (its
    partition's reading passed its offset without it). RetriableError when the broker does not
    answer within `timeout_s` (the runner backs off and delivers the batch again)."""
    from kafka import KafkaConsumer, TopicPartition  # noqa: PLC0415 - only this path needs a broker

    todo: dict[tuple[str, int], set[int]] = {}
    for topic, partition, offset in wanted:
        todo.setdefault((topic, partition), set()).add(offset)
    found: dict[Coordinates, Original] = {}
    consumer = KafkaConsumer(
        **client,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        # an offset before the log's start now (retention, DeleteRecords): from the start, so that the
        # later ones are still found; never from the end (kafka-python's default), which loses them
        auto_offset_reset="earliest",
    )
    try:
        parts = {tp: TopicPartition(*tp) for tp in todo}
        consumer.assign(list(parts.values()))
        for tp, offsets in todo.items():
            consumer.seek(parts[tp], min(offsets))
        deadline = time.monotonic() + timeout_s
        while todo:
            if time.monotonic() > deadline:
                raise RetriableError("the records to dead-letter could not be read again from Kafka in time")
            polled = consumer.poll(timeout_ms=500, max_records=500)
            for tp, records in polled.items():
                key = (tp.topic, tp.partition)
                offsets = todo.get(key, set())
                for m in records:
                    if m.offset in offsets:
                        found[(tp.topic, tp.partition, m.offset)] = (m.value or b"", tuple(m.headers or ()))
                        offsets.discard(m.offset)
            for key, offsets in list(todo.items()):
                left_ms = max(1, int((deadline - time.monotonic()) * 1000))
                position = consumer.position(parts[key], timeout_ms=left_ms)
                for offset in [o for o in offsets if position is not None and o < position]:
                    found[(*key, offset)] = None  # passed without it: no longer in the topic
                    offsets.discard(offset)
                if not offsets:
                    del todo[key]
                    consumer.pause(parts[key])
    finally:
        consumer.close()
    return found


def _coordinates(env: Envelope) -> Coordinates:
    return (env.topic or "", env.partition or 0, env.offset or 0)


def restore(
    dead: list[SinkOutput], partial: Sequence[tuple[int, Envelope]], found: Mapping[Coordinates, Original]
) -> None:
    """The dead letters of `partial` envelopes (their index in `dead`) with their original value and
    headers put back (`read_originals`), before the error headers, as any dead letter has them; a
    record found gone (None) or not looked up (absent from `found`) says so in a header."""
    for index, env in partial:
        letter = dead[index]
        coordinates = _coordinates(env)
        original = found.get(coordinates)
        if original is None:
            why = GONE_HEADER if coordinates in found else UNAVAILABLE_HEADER
            dead[index] = SinkOutput(letter.topic, letter.key, b"", (why, *letter.headers))
        else:
            value, headers = original
            dead[index] = SinkOutput(letter.topic, letter.key, value, (*headers, *letter.headers))


async def restore_dead_letters(client: Mapping[str, Any], result: EgressResult, timeout_s: float) -> None:
    """The batch's dead letters of partial envelopes made whole (in a thread: it waits on Kafka)."""
    if not result.partial:
        return
    wanted = [_coordinates(e) for _, e in result.partial]
    try:
        found = await asyncio.to_thread(read_originals, client, wanted, timeout_s)
    except Exception as exc:  # noqa: BLE001 - never held back: the letters go without their originals
        log.warning(
            "%d dead letter(s) sent without the original record: it could not be read again (%s)",
            len(wanted),
            type(exc).__name__,
        )
        found = {}
    restore(result.dead, result.partial, found)
    result.partial = []
