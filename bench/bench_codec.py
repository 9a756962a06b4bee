"""CPU cost of Avro-encoding one canonical record (prints figures, asserts nothing).

Per record, in CPU µs (process time; best of --rounds rounds of --number calls; median in
brackets), for the sample Demande (samples/sne-xml/demande-cre-famille-rennes.xml through the
sne-xml normaliser), a sample Decision, and the mean over every record made of samples/:
- fastavro validate           fastavro.validation.validate (what normalise's _checked runs today)
- fastavro write              fastavro.schemaless_writer (AvroCodec.encode(validate=False))
- ingest today (tuples)       gateway.flows.ingest.encode_canonical: framed, union tuples, no check
- validate + ingest today     the two above: today's cost of a checked, framed record
- encode_checked              AvroCodec.encode_checked: body, checks included
- encode_framed_checked       the same in a single-object frame (what ingest publishes)
- decode                      AvroCodec.decode of the body, for comparison

Run: .venv/bin/python bench/bench_codec.py [--number 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro
from gateway.codec.avro import AvroCodec, load_schemas
from gateway.model.canonical import CanonicalRecord
from gateway.normalise import normalise
from gateway.testing.samples import canonical_samples

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
DEMANDE_SAMPLE = SAMPLES / "sne-xml" / "demande-cre-famille-rennes.xml"

try:
    from gateway.flows.ingest import encode_canonical as _ingest_encode
except ImportError:  # the lead replaces it with encode_framed_checked
    _ingest_encode = None


def _timed(fn: Callable[[], Any], number: int, rounds: int) -> tuple[float, float]:
    """(best, median) CPU µs per call (process time: other processes on the cores count less)."""
    per_call = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(number):
            fn()
        per_call.append((time.process_time() - start) / number * 1e6)
    return min(per_call), statistics.median(per_call)


def _rows(codec: AvroCodec, record: dict[str, Any]) -> list[tuple[str, Callable[[], Any]]]:
    parsed = codec.parsed
    body = codec.encode(record, validate=False)

    def write() -> bytes:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, parsed, record)
        return buf.getvalue()

    def validate() -> bool:
        return bool(fastavro.validation.validate(record, parsed, raise_errors=False))

    rows: list[tuple[str, Callable[[], Any]]] = [("fastavro validate", validate), ("fastavro write", write)]
    if _ingest_encode is not None:
        ingest = _ingest_encode
        rows += [
            ("ingest today (tuples)", lambda: ingest(codec, record)),
            ("validate + ingest today", lambda: (validate(), ingest(codec, record))),
        ]
    rows += [
        ("encode_checked", lambda: codec.encode_checked(record)),
        ("encode_framed_checked", lambda: codec.encode_framed_checked(record)),
        ("decode", lambda: codec.decode(body)),
    ]
    return rows


def _report(title: str, codec: AvroCodec, record: dict[str, Any], number: int, rounds: int) -> None:
    size = len(codec.encode(record, validate=False))
    assert codec.encode_checked(record) == codec.encode(record, validate=False)  # a sanity guard, not a test
    print(f"\n{title} ({size} bytes of Avro body), CPU µs per record: best [median]")
    results = {}
    for label, fn in _rows(codec, record):
        fn()  # warm-up (compiles the fast writer once)
        best, median = _timed(fn, number, rounds)
        results[label] = best
        print(f"  {label:<26} {best:8.1f}  [{median:7.1f}]")
    today = results.get("validate + ingest today")
    if today:
        gain = today / results["encode_framed_checked"]
        print(f"  -> validate + ingest today / encode_framed_checked: {gain:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--number", type=int, default=2000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    schemas = load_schemas()
    records = canonical_samples()
    demande = next(
        o.record for o in normalise("sne-xml", DEMANDE_SAMPLE.read_bytes()) if isinstance(o, CanonicalRecord)
    )
    _report(
        f"sample Demande {DEMANDE_SAMPLE.name}",
        schemas.codec("fr.gp.Demande"),
        demande,
        args.number,
        args.rounds,
    )
    decision = next(r for s, r in records if s == "fr.gp.Decision")
    _report("sample Decision", schemas.codec("fr.gp.Decision"), decision, args.number, args.rounds)

    print(f"\nall {len(records)} sample records, mean µs per record (best of {args.rounds} rounds)")
    codecs = [(schemas.codec(s), r) for s, r in records]
    labels = [label for label, _ in _rows(*codecs[0])]
    for i, label in enumerate(labels):
        calls = [_rows(c, r)[i][1] for c, r in codecs]

        def run_all(calls: list[Callable[[], Any]] = calls) -> None:
            for call in calls:
                call()

        run_all()
        best, _ = _timed(run_all, max(1, args.number // 10), args.rounds)
        print(f"  {label:<26} {best / len(calls):8.1f}")


if __name__ == "__main__":
    main()
