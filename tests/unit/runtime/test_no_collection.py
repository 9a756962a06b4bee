"""`no_collection`: cyclic collection off while any region is open, in any thread (the sink's
process writes a batch while a thread takes the next one), back on when the last one closes."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest
from gateway.flows.deliver import no_collection


@pytest.fixture(autouse=True)
def _collection_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
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
