"""CPU cost of large cal-csv inputs, before and after (prints figures; asserts nothing).

A CAL decisions file is built by repeating the lines of the bundled sample up to 1, 4 and 16 MiB.
For each size it prints the CPU seconds (process time, best of 3) of:
  raw   = the cal-csv normaliser function alone (no size bound, no schema check): linearity;
  entry = `gateway.normalise.normalise("cal-csv", data, check=False)`, as the ingest flow calls it
          (with the per-format size bound: an input over it is one rejection, at no cost);
and, for a 4 MiB file with one unbalanced quote on its second line, how many records survive.
The same figures come from a baseline git revision (default: the commit before the change),
extracted to a temporary directory and run in a subprocess, so both columns come from one run on
the same machine load; the ratio after/before is printed per row.

Usage: python bench/bench_cal_csv.py [--baseline REV | --no-baseline]
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
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "cal-csv" / "cal-rennes-habitat-2026-03-05.csv"
BASELINE = "68d0f14"  # cal-csv read through csv.reader over the whole body
SIZES_MIB = (1, 4, 16)


def build(mib: int) -> bytes:
    head, *lines = SAMPLE.read_bytes().splitlines(keepends=True)
    body = b"".join(lines)
    return head + body * ((mib * 1024 * 1024 - len(head)) // len(body))  # at most `mib` MiB


def measure() -> dict[str, float]:
    from gateway.normalise import CanonicalRecord, normalise  # noqa: PLC0415
    from gateway.normalise.cal_csv import normalise_cal_csv  # noqa: PLC0415

    when = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    normalise_cal_csv(build(1)[:4000], when)  # warm caches (schemas, code maps)

    def best(fn: object) -> float:
        times = []
        for _ in range(3):
            start = time.process_time()
            fn()  # type: ignore[operator]
            times.append(time.process_time() - start)
        return min(times)

    out: dict[str, float] = {}
    for mib in SIZES_MIB:
        data = build(mib)
        out[f"raw {mib} MiB"] = best(lambda d=data: normalise_cal_csv(d, when))
        out[f"entry {mib} MiB"] = best(lambda d=data: normalise("cal-csv", d, received_at=when, check=False))
    head, first, second, *rest = build(4).splitlines(keepends=True)
    broken = second.replace(b";", b';"', 1)  # an opening quote that never closes
    outcomes = normalise("cal-csv", b"".join([head, first, broken, *rest]), received_at=when, check=False)
    out["records kept, 4 MiB, one bad quote"] = sum(isinstance(o, CanonicalRecord) for o in outcomes)
    out["lines, 4 MiB"] = len(rest) + 2
    return out


def run_baseline(rev: str) -> dict[str, float] | None:
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev, "gateway", "schemas", "samples"],
            check=True,
            capture_output=True,
        ).stdout
    except (subprocess.CalledProcessError, FileNotFoundError):
        print(f"baseline {rev}: not available", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        env = {**os.environ, "PYTHONPATH": tmp}
        result = subprocess.run(
            [sys.executable, __file__, "--child", tmp], env=env, capture_output=True, text=True, check=False
        )
    if result.returncode != 0:
        print(f"baseline {rev} failed: {result.stderr[-500:]}", file=sys.stderr)
        return None
    return dict(json.loads(result.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        global SAMPLE  # noqa: PLW0603 - the child reads the baseline's sample
        SAMPLE = Path(args.child) / "samples" / "cal-csv" / SAMPLE.name
        print(json.dumps(measure()))
        return
    before = None if args.no_baseline else run_baseline(args.baseline)
    after = measure()
    print(f"cal-csv, CPU seconds (best of 3); baseline {args.baseline if before else '-'}")
    print(f"{'':40} {'before':>10} {'after':>10} {'after/before':>13}")
    for name, value in after.items():
        old = before.get(name) if before else None
        ratio = f"{value / old:.3f}" if old else "-"
        shown_old = f"{old:.3f}" if old is not None else "-"
        print(f"{name:40} {shown_old:>10} {value:10.3f} {ratio:>13}")


if __name__ == "__main__":
    main()
