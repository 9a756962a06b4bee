"""Calm outages: repeated client log lines are collapsed with backoff; /health names a stuck ingest."""

from __future__ import annotations

import logging

import pytest
from gateway.monitoring.logs import RepeatFilter, install_log_filters
from gateway.monitoring.web import ingest_stuck


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


def test_a_30_second_outage_at_ten_lines_a_second_gives_a_few_lines() -> None:
    clock = _Clock()
    f = RepeatFilter(clock=clock)
    passed = []
    for tick in range(300):  # aiokafka retries every 100 ms
        clock.now = tick / 10
        rec = _record("aiokafka.conn", "Unable connect to node with id %s: %s", tick % 3, "refused")
        if f.filter(rec):
            passed.append((clock.now, rec.getMessage()))
    assert 4 <= len(passed) <= 7, passed  # at 0, ~1, ~3, ~7, ~15 s ...
    assert "similar in the last" in passed[-1][1]
    assert passed[0][1].startswith("Unable connect to node with id 0")


def test_other_loggers_and_new_messages_are_never_hidden() -> None:
    clock = _Clock()
    f = RepeatFilter(clock=clock)
    assert all(f.filter(_record("gateway.flows.ingest", "batch %s", i)) for i in range(50))
    assert f.filter(_record("kafka.cluster", "one template"))
    assert f.filter(_record("kafka.cluster", "another template"))
    assert not f.filter(_record("kafka.cluster", "one template"))
    clock.now = 120.0  # quiet for more than a minute: starts over
    assert f.filter(_record("kafka.cluster", "one template"))


def test_a_percent_in_the_note_does_not_break_formatting() -> None:
    clock = _Clock()
    f = RepeatFilter(clock=clock)
    f.filter(_record("kafka", "load %s%%", 5))
    f.filter(_record("kafka", "load %s%%", 6))
    clock.now = 2.0
    rec = _record("kafka", "load %s%%", 7)
    assert f.filter(rec)
    assert rec.getMessage() == "load 7% [1 similar in the last 1 s]"


def test_install_is_idempotent() -> None:
    logger = logging.getLogger("gp-test-calm")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    try:
        install_log_filters(logger)
        install_log_filters(logger)
        assert sum(isinstance(x, RepeatFilter) for x in handler.filters) == 1
    finally:
        logger.removeHandler(handler)


class _Runner:
    def __init__(self, lag: dict[tuple[str, int], int], last: float) -> None:
        self._lag, self.last_success = lag, last

    def lag(self) -> dict[tuple[str, int], int]:
        return self._lag


@pytest.mark.parametrize(
    ("lag", "last", "now", "stuck"),
    [
        ({("t", 0): 5}, 0.0, 30.0, False),  # waiting, but a batch went through recently
        ({("t", 0): 5}, 0.0, 61.0, True),
        ({("t", 0): 0}, 0.0, 600.0, False),  # idle and caught up: healthy
    ],
)
def test_health_names_a_stuck_ingest(
    lag: dict[tuple[str, int], int], last: float, now: float, stuck: bool
) -> None:
    why = ingest_stuck(_Runner(lag, last), now)
    assert (why is not None) == stuck
    if why:
        assert "5 records waiting" in why
    assert ingest_stuck(None, now) is None


def test_the_coordinator_not_yet_available_at_start_is_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    install_log_filters()
    log = logging.getLogger("aiokafka.consumer.group_coordinator")
    with caplog.at_level(logging.WARNING, logger="aiokafka"):
        log.error("Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError")
        log.error("Group Coordinator Request failed: [Error 7] RequestTimedOutError")
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert messages == [("ERROR", "Group Coordinator Request failed: [Error 7] RequestTimedOutError")]
