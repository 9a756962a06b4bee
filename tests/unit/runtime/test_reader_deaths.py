"""Reading processes' deaths: `max_deaths` within `death_window_s` make the sink's process read
itself; older ones no longer count (a long-running sink's rare OOM kills)."""

from __future__ import annotations

from gateway.flows.readers import DEATH_WINDOW_S, MAX_DEATHS, Readers


def _render(_record: object) -> bytes:
    return b""


def _readers(now: list[float]) -> Readers:
    readers = Readers(0, {}, {}, None, _render, max_records=10)  # no process started
    readers.clock = lambda: now[0]
    return readers


def test_deaths_within_the_window_count_and_older_ones_do_not() -> None:
    now = [1000.0]
    readers = _readers(now)
    for _ in range(MAX_DEATHS - 1):
        readers.died()
        now[0] += 60
    assert readers.recent_deaths() == MAX_DEATHS - 1
    now[0] += DEATH_WINDOW_S  # an hour of healthy reading since the last one
    assert readers.recent_deaths() == 0
    readers.died()
    assert readers.recent_deaths() == 1
    assert readers.deaths == MAX_DEATHS  # the total, for monitoring


def test_a_death_just_inside_the_window_still_counts() -> None:
    now = [0.0]
    readers = _readers(now)
    readers.died()
    now[0] += DEATH_WINDOW_S - 1
    readers.died()
    assert readers.recent_deaths() == 2
    now[0] += 1  # the first is exactly an hour old: out
    assert readers.recent_deaths() == 1


def test_exhausted_at_max_deaths_within_the_window_only() -> None:
    now = [0.0]
    readers = _readers(now)
    for _ in range(MAX_DEATHS - 1):
        readers.died()
    assert not readers.exhausted()
    now[0] += DEATH_WINDOW_S  # the earlier ones are out of the window
    readers.died()
    assert not readers.exhausted()
    for _ in range(MAX_DEATHS - 1):
        readers.died()
    assert readers.exhausted()
