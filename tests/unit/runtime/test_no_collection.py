"""`no_collection`: cyclic collection off while any region is open, in any thread (the sink's
process writes a batch while a thread takes the next one), back on when the last one closes."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from collections.abc import Iterator, Sequence
from typing import ClassVar

import pytest
from gateway.connectors import CheckResult, ConnectorConfig, Sink, SinkOutput, SinkRecord
from gateway.errors import RetriableError
from gateway.flows.deliver import (
    Decoded,
    EgressResult,
    _Quiet,
    collect_while_waiting,
    no_collection,
    process_envelopes,
)
from gateway.model.envelope import Envelope
from gateway.retry import RetryPolicy


@pytest.fixture(autouse=True)
def _collection_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    assert _Quiet.count == 0  # every region closed
    if was:
        gc.enable()
    else:
        gc.disable()


def test_a_region_closing_in_one_thread_leaves_collection_off_for_another_still_open() -> None:
    opened, close = threading.Event(), threading.Event()
    seen: list[bool] = []

    def taking() -> None:
        with no_collection():
            opened.set()
            close.wait(5)
            seen.append(gc.isenabled())

    with no_collection():
        thread = threading.Thread(target=taking)
        thread.start()
        assert opened.wait(5)
    assert not gc.isenabled()  # the other thread's region is still open
    close.set()
    thread.join(5)
    assert seen == [False]
    assert gc.isenabled()  # the last region closed


def test_a_region_opened_first_in_another_thread_is_not_closed_by_this_one() -> None:
    opened, close = threading.Event(), threading.Event()

    def writing() -> None:
        with no_collection():
            opened.set()
            close.wait(5)

    thread = threading.Thread(target=writing)
    thread.start()
    assert opened.wait(5)
    with no_collection():
        pass
    assert not gc.isenabled()  # the other thread's region, opened first, is still open
    close.set()
    thread.join(5)
    assert gc.isenabled()


class _Node:
    other: object = None


def _cycle() -> weakref.ref[_Node]:
    """A cycle of two objects that only a collection frees: a weak reference to one of them."""
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_a_wait_within_a_region_collects_the_cycles_left_so_far() -> None:
    with no_collection():
        left = _cycle()
        assert left() is not None
        collect_while_waiting()  # what a retry's backoff calls before it sleeps
        assert left() is None
        assert not gc.isenabled()  # still off for the rest of the region


def test_a_wait_collects_nothing_where_collection_was_off_before() -> None:
    gc.disable()
    with no_collection():
        left = _cycle()
        collect_while_waiting()
        assert left() is not None  # this process collects when it chooses
    gc.collect()


def test_nested_regions_resume_collection_once_the_outer_one_closes() -> None:
    with no_collection():
        with no_collection():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_collection_off_before_stays_off() -> None:
    gc.disable()  # e.g. a reading process, which collects between its batches itself
    with no_collection():
        pass
    assert not gc.isenabled()


def test_an_exception_in_a_region_still_resumes_collection() -> None:
    with pytest.raises(RuntimeError), no_collection():
        raise RuntimeError("boom")
    assert gc.isenabled()


class _Flaky(Sink):
    """Refuses its first writes as a database that is down would; each refusal leaves a cycle (as
    an exception's traceback does). Delivery: at-least-once."""

    name: ClassVar[str] = "flaky"
    Config: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    guarantee = "at-least-once"

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.left: list[weakref.ref[_Node]] = []  # the cycles each refusal left

    def check(self) -> CheckResult:
        return CheckResult(ok=True)

    async def write(self, batch: Sequence[SinkRecord]) -> Sequence[SinkOutput]:
        if self.refusals:
            self.refusals -= 1
            self.left.append(_cycle())
            raise RetriableError("PostgreSQL unreachable")
        return []

    async def flush(self) -> None:
        return None


def test_a_retry_within_a_region_frees_the_cycles_earlier_attempts_left() -> None:
    """The runner writes under no_collection; a sink down for a while (retries with backoff) does not
    keep what each failed attempt left until the outage ends."""
    sink = _Flaky(refusals=3)  # the batch's write, then the record's first two tries (two waits)
    (env,) = [Envelope(b"x", b"k", (), "gp.actor.t", 0, 0)]
    rec = SinkRecord(schema="fr.gp.view.T", key="k", record={}, topic="gp.actor.t", partition=0, offset=0)

    async def deliver() -> EgressResult:
        with no_collection():
            return await process_envelopes(
                sink,
                [env],
                retry=RetryPolicy(attempts=0, base_delay=0.001),
                connector="flaky",
                decoded=Decoded(pairs=[(env, rec)]),
            )

    result = asyncio.run(deliver())
    assert result.written == 1
    assert [ref() is None for ref in sink.left] == [True, True, True]  # each wait collected
