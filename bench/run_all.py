"""Run every benchmark of bench/ in turn (each prints its own figures). `make bench` calls this."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHES = [
    "bench_codec.py",
    "bench_normalise.py",
    "bench_cal_csv.py",
    "bench_policy.py",
    "bench_cotation.py",
    "bench_console.py",
    "bench_ingest.py",
    "bench_sinks.py",
    "bench_signals.py",
    "bench_framing.py",
    "bench_retention.py",
]


def main() -> int:
    here = Path(__file__).resolve().parent
    status = 0
    for name in BENCHES:
        print(f"\n=== {name}", flush=True)
        rc = subprocess.call([sys.executable, str(here / name)])
        status = status or rc
    return status


if __name__ == "__main__":
    sys.exit(main())
