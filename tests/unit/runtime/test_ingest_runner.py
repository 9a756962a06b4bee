"""The ingest runner's parallel normalisation: chunks cut from a polled batch, normalised by the
loop's thread and a pool of spawned processes, come back whole and in input order."""

from __future__ import annotations

from pathlib import Path

from gateway.flows.ingest import IngestResult
from gateway.flows.ingest_runner import MIN_CHUNK, IngestRunner, RawRecord, _new_pool, normalise_chunk
from gateway.monitoring.metrics import Metrics

SAMPLES = Path(__file__).resolve().parents[3] / "samples"


def _records(n: int) -> list[RawRecord]:
    good = (SAMPLES / "sne-xml" / "demande-cre-famille-rennes.xml").read_bytes()
    bad = (SAMPLES / "bad" / "sne-tronque.xml").read_bytes()
    return [
        RawRecord("sne-xml", "gp.raw.sne-xml", i % 3, i, f"k{i}".encode(), bad if i % 7 == 0 else good, 0)
        for i in range(n)
    ]


def _comparable(results: list[IngestResult]) -> list[tuple[object, ...]]:
    """Results without the dead letters' `gp.errors.time` (the time each was built)."""
    out = []
    for r in results:
        dead = [(d.topic, d.key, d.value, [h for h in d.headers if h[0] != "gp.errors.time"]) for d in r.dead]
        out.append((r.records, dead))
    return out


def _runner(processes: int) -> IngestRunner:
    return IngestRunner(
        bootstrap="127.0.0.1:1",  # never connected: only the normalising part is used
        formats={"gp.raw.sne-xml": "sne-xml"},
        group_id="g",
        prefix="gp",
        metrics=Metrics(),
        processes=processes,
    )


def test_a_batch_normalised_with_a_pool_gives_the_in_thread_results_in_input_order() -> None:
    records = _records(5 * MIN_CHUNK + 3)
    expected = normalise_chunk(records, "gp")
    runner = _runner(processes=2)
    runner._pool = _new_pool(2)
    try:
        chunks = list(runner._normalise(records))
    finally:
        runner.close()
    assert len(chunks) > 2, "the batch is cut into chunks shared by the thread and the pool"
    got_records = [r for chunk, _ in chunks for r in chunk]
    got_results = [res for _, results in chunks for res in results]
    assert got_records == records  # every record once, in input order
    assert [len(c) for c, res in chunks] == [len(res) for _, res in chunks]
    assert _comparable(got_results) == _comparable(expected)  # as without a pool
    assert sum(len(r.dead) for r in got_results) == sum(1 for i in range(len(records)) if i % 7 == 0)


def test_a_small_batch_or_no_pool_is_normalised_in_the_thread_as_one_chunk() -> None:
    records = _records(MIN_CHUNK)
    runner = _runner(processes=0)
    [(chunk, results)] = list(runner._normalise(records))
    assert chunk == records
    assert _comparable(results) == _comparable(normalise_chunk(records, "gp"))
