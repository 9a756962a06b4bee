"""Reading processes (GATEWAY_SINK_PROCESSES, gateway.flows.readers) on a real broker: a reading
process SIGKILLed mid-stream loses nothing and writes nothing twice (new ones read again from what
was written); after `max_deaths`, the sink's own process reads, from where the last write stopped."""

from __future__ import annotations

import asyncio
import operator
import os
import signal
import threading
import time
import uuid

import pytest
from gateway.codec.avro import load_schemas
from gateway.flows.egress import EgressRunner
from gateway.flows.readers import Readers
from gateway.testing.kafka import client_kwargs, end_offsets
from tests.integration.test_sink_commits import N, Noting, _committed, _runner, _topic

pytestmark = pytest.mark.integration


def _run_killing_readers(
    bootstrap: str, kills: int, max_deaths: int = 5
) -> tuple[Noting, EgressRunner, list[int]]:
    """Drain a topic of N records with one reading process, SIGKILLing it `kills` times mid-stream."""
    topic = _topic(bootstrap)
    group = f"g-{uuid.uuid4().hex[:8]}"
    sink = Noting(pause_s=0.05, rendering=True)
    runner = _runner(bootstrap, topic, group, sink)  # one reading process (the sink renders)
    readers = runner.readers
    assert readers is not None
    readers.max_deaths = max_deaths
    sink.rendering = kills < max_deaths  # then records come decoded, not rendered
    errors: list[BaseException] = []

    def drain() -> None:
        try:
            asyncio.run(runner.run(asyncio.Event(), until_idle=True))
        except BaseException as exc:  # noqa: BLE001 - told to the test
            errors.append(exc)

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    deadline = time.monotonic() + 90
    at_kills = []  # records written when each kill came
    for k in range(kills):
        while len(sink.written) < (k + 1) * N // (kills + 2) and time.monotonic() < deadline:
            time.sleep(0.01)
        [pid] = readers.pids()
        os.kill(pid, signal.SIGKILL)
        at_kills.append(len(sink.written))
        while readers.deaths <= k and time.monotonic() < deadline:  # seen dead before the next kill
            time.sleep(0.01)
    thread.join(120)
    assert not thread.is_alive() and not errors, errors
    assert _committed(bootstrap, group, topic) == end_offsets(bootstrap, topic)
    return sink, runner, at_kills


def test_a_reading_process_killed_mid_stream_loses_nothing_and_writes_nothing_twice(
    kafka_bootstrap: str,
) -> None:
    sink, runner, at_kills = _run_killing_readers(kafka_bootstrap, kills=2)
    assert runner.readers is not None and runner.readers.deaths == 2
    assert all(0 < n < N for n in at_kills), at_kills  # mid-stream
    assert sorted(sink.written) == sorted(set(sink.written))  # none twice
    assert len(sink.written) == N  # none lost


def test_after_max_deaths_the_sinks_own_process_reads_from_the_last_write(kafka_bootstrap: str) -> None:
    sink, runner, at_kills = _run_killing_readers(kafka_bootstrap, kills=1, max_deaths=1)
    assert 0 < at_kills[0] < N
    assert runner.readers is None  # read in the sink's process since the death
    assert sorted(sink.written) == sorted(set(sink.written))
    assert len(sink.written) == N


def test_a_start_offset_no_longer_in_the_log_reads_from_its_start(kafka_bootstrap: str) -> None:
    """Retention passed the offset a partition was to start from (a sink stopped for a month): the
    reading process reads from the log's start, as the sink's own consumer would, never from its
    end (kafka-python's default), which would skip what the topic still holds."""
    topic = _topic(kafka_bootstrap, 30)  # 10 a partition
    codecs = load_schemas().by_fingerprint()
    readers = Readers(
        1, client_kwargs(kafka_bootstrap), codecs, None, operator.attrgetter("key"), max_records=50
    )
    try:
        readers.assign({(topic, 0): 10_000})
        offsets: list[int | None] = []
        deadline = time.monotonic() + 30
        while not offsets and time.monotonic() < deadline:
            taken = readers.take(1.0)
            offsets += [e.offset for e in taken.envelopes] if taken is not None else []
        assert offsets == list(range(10))
        assert readers.settled()
    finally:
        readers.close()


def test_until_idle_waits_for_the_reading_processes_however_short_its_polls(kafka_bootstrap: str) -> None:
    """A drained run ends once every partition is read to its end: empty waits count only once every
    partition was fetched by the reading processes (about half a second to start and connect)."""
    topic = _topic(kafka_bootstrap, 300)
    sink = Noting(rendering=True)
    runner = EgressRunner(
        sink,
        topics=[topic],
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        client=client_kwargs(kafka_bootstrap),
        max_records=50,
        poll_timeout_ms=20,  # three empty 20 ms waits end a drained run
        render_processes=1,
    )
    asyncio.run(runner.run(asyncio.Event(), until_idle=True))
    assert len(sink.written) == 300
