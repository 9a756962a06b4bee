"""CPU cost of the sne-xml normaliser per document (prints figures; asserts nothing).

Stages, in CPU µs per document (process time, best of several repeats, one process per code version):
  parse = `parse_xml` (hardened lxml parse), tree = `element_to_tree` on the parsed root,
  map = the rest of `normalise_sne_xml` (total - parse - tree), total = `normalise_sne_xml(data, t)`
  (without the schema check of `gateway.normalise.normalise`); total+gc = the same with the cyclic
  garbage collector on (timeit turns it off for the other columns), as in a running worker.
The same figures are printed for a baseline git revision (default: the commit before the
optimisation), extracted to a temporary directory and run in a subprocess, so before and after
come from one run on the same machine load.

Usage: python bench/bench_normalise.py [--baseline REV | --no-baseline] [--sample PATH] [--number N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import timeit
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "sne-xml" / "demande-cre-famille-rennes.xml"
BASELINE = "b218239"  # golden outputs recorded; normaliser code as before the optimisation


def measure(sample: Path, number: int) -> dict[str, float]:
    from gateway.codec.xml import element_to_tree, parse_xml  # noqa: PLC0415
    from gateway.normalise.sne_xml import normalise_sne_xml  # noqa: PLC0415

    data = sample.read_bytes()
    when = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)

    def best(stmt: object, n: int, setup: str = "pass") -> float:
        # CPU time of this process: the machine is shared, wall time would count the waits
        times = timeit.repeat(stmt, setup, number=n, repeat=7, timer=time.process_time)  # type: ignore[arg-type]
        return min(times) / n * 1e6

    normalise_sne_xml(data, when)  # warm caches (schemas, code maps)
    parse = best(lambda: parse_xml(data), number)
    parse_tree = best(lambda: element_to_tree(parse_xml(data)), number)
    total = best(lambda: normalise_sne_xml(data, when), number)
    with_gc = best(lambda: normalise_sne_xml(data, when), number, setup="import gc; gc.enable()")
    return {
        "parse": parse,
        "tree": parse_tree - parse,
        "map": total - parse_tree,
        "total": total,
        "total+gc": with_gc,
    }


def baseline(rev: str, sample: Path, number: int) -> dict[str, float]:
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev, "gateway", "schemas"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        env = {**os.environ, "PYTHONPATH": tmp}
        out = subprocess.run(
            [sys.executable, __file__, "--inner", "--sample", str(sample), "--number", str(number)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default=BASELINE, help="git revision to compare with")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--sample", type=Path, default=SAMPLE)
    parser.add_argument("--number", type=int, default=300)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(measure(args.sample, args.number)))
        return
    size = args.sample.stat().st_size
    print(
        f"sne-xml normaliser, {args.sample.name} ({size} bytes), CPU µs per document (best of 7)", flush=True
    )
    rows = []
    if not args.no_baseline:
        rows.append((f"baseline {args.baseline}", baseline(args.baseline, args.sample, args.number)))
    rows.append(("current", measure(args.sample, args.number)))
    columns = ("parse", "tree", "map", "total", "total+gc")
    print(f"{'':<20}" + "".join(f"{c:>10}" for c in columns))
    for label, r in rows:
        print(f"{label:<20}" + "".join(f"{r[c]:>10.0f}" for c in columns))
    if len(rows) == 2:
        before, after = rows[0][1]["total"], rows[1][1]["total"]
        print(f"speed-up (total): x{before / after:.2f}")


if __name__ == "__main__":
    main()
