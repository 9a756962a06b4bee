"""The daily sweep of the signal processors over the national stock (prints figures, asserts nothing).

2.7 M synthetic active applications (brief §5), each with the compact `AppState` the processors
keep: a délai anormalement long per département (every département set, with a commune group), a
label with an end date for 1 in 10, a proposal for 3 in 10, an irrecevabilité for 1 in 100, renewal
dates spread over the year. Phases, each timed, with the process's peak memory after it:

1. build: the states in a dict and the `DueIndex` (what the engine holds; the worker rebuilds its
   index from its table the same way after a rebalance, see phase 5);
2. catch-up sweep: the first day after loading (every signal already due fires);
3. daily sweep: the next day (only the applications due that day are read);
4. full scan (no index): `tick` on every application, the cost the index avoids;
5. worker rebuild: the states as the table's bytes, decoded to rebuild the index (in a child
   process, so its peak is its own).

Times are CPU seconds of this process (the machine is shared; wall time depends on the neighbours).
Goal (issue 14): the daily sweep over 2.7 M applications in < 60 s and < 2 GiB on this machine.

Run: .venv/bin/python bench/bench_signals.py [--n 2700000]
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import random
import resource
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from gateway.signals.core import Context, next_due, tick
from gateway.signals.engine import Engine
from gateway.signals.rules import Rules, load_rules, parse_rules, valid_departement
from gateway.signals.state import AppState, Label

TODAY = date(2026, 11, 30).toordinal()


def _peak_mib() -> float:
    """Peak resident memory of this process (VmHWM: its own, not inherited through fork/exec)."""
    try:
        with Path("/proc/self/status").open(encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _departements() -> list[str]:
    codes = [f"{i:02d}" for i in range(1, 96)] + ["2A", "2B"] + [str(i) for i in range(971, 977)]
    return [c for c in codes if valid_departement(c)]


def bench_rules() -> Rules:
    """The shipped rules with a délai in every département (12-36 months) and a commune group in each."""
    raw: dict[str, Any] = load_rules().file.model_dump()
    rng = random.Random(7)
    raw["departements"] = {
        d: {
            "delai_anormal": {
                "mois": rng.choice([12, 15, 18, 24, 36]),
                "groupes": [
                    {"nom": "centre", "mois": 36, "communes": [f"{d}{i:03d}"[:5] for i in (1, 2, 3)]}
                ],
            }
        }
        for d in _departements()
        if len(d) == 2
    }
    return parse_rules(raw, "bench")


def synthetic_states(n: int, seed: int = 1) -> Iterator[tuple[str, AppState]]:
    rng = random.Random(seed)
    depts = [d for d in _departements() if len(d) == 2]
    communes = [f"{d}{i:03d}" for d in depts for i in range(1, 30)]
    types = ["T1", "T2", "T3", "T4", "T5"]
    start = date(2020, 12, 1).toordinal()
    for i in range(n):
        commune = rng.choice(communes)
        created = start + rng.randrange(6 * 365)
        renewed = created + 365 * ((TODAY - created) // 365) if rng.random() < 0.9 else created
        labels: tuple[Label, ...] = ()
        if rng.random() < 0.1:
            day = created + rng.randrange(400)
            labels = (Label("label", "MAL_LOGE", "200000001", day, day + 365, ("PPRIOR",), False, f"e{i}"),)
        yield (
            f"{commune[:2]:0>3}{i:015d}",
            AppState(
                known=True,
                dept=commune[:2],
                commune=commune,
                type_logement=rng.choice(types),
                origin="G0001",
                created=created,
                renewed=renewed,
                first_proposal=created + rng.randrange(900) if rng.random() < 0.3 else 0,
                irrecevable=TODAY - rng.randrange(60) if rng.random() < 0.01 else 0,
                labels=labels,
            ),
        )


def _worker_rebuild(n: int, queue: Any) -> None:
    """Phase 5 in a child: the table's bytes, then the index rebuilt by decoding every state."""
    ctx = Context(bench_rules())
    table = {k.encode(): s.to_bytes() for k, s in synthetic_states(n)}  # one state at a time
    gc.collect()
    loaded = _peak_mib()
    started = time.process_time()
    engine = Engine(ctx)
    for key, value in table.items():
        engine.index.add(key.decode(), next_due(AppState.from_bytes(value), ctx))
    elapsed = time.process_time() - started
    size = sum(len(v) for v in table.values()) / len(table)
    queue.put((elapsed, loaded, _peak_mib(), size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2_700_000, help="applications (default: the national stock)")
    parser.add_argument("--worker-only", action="store_true", help="phase 5 only")
    args = parser.parse_args()
    n = args.n
    if args.worker_only:
        _phase_worker(n)
        return
    ctx = Context(bench_rules())
    print(f"bench_signals: {n:,} applications, rules of {len(ctx.rules.file.departements)} départements")

    started = time.process_time()
    engine = Engine(ctx)
    engine.apps = dict(synthetic_states(n))
    made = time.process_time() - started
    started = time.process_time()
    for key, state in engine.apps.items():
        engine.index.add(key, next_due(state, ctx))
    indexed = time.process_time() - started
    print(f"  1. build: states {made:.1f} s, due index {indexed:.1f} s; peak {_peak_mib():,.0f} MiB")

    started = time.process_time()
    first = sum(1 for _ in engine.sweep(TODAY - 1))  # the worker sends each signal on, holds none
    catch_up = time.process_time() - started
    print(
        f"  2. catch-up sweep (first day): {first:,} signals in {catch_up:.1f} s; peak {_peak_mib():,.0f} MiB"
    )

    started = time.process_time()
    kinds: dict[str, int] = {}
    for signal in engine.sweep(TODAY):
        kinds[str(signal["typeSignal"])] = kinds.get(str(signal["typeSignal"]), 0) + 1
    sweep = time.process_time() - started
    detail = ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items()))
    print(
        f"  3. daily sweep: {sum(kinds.values()):,} signals ({detail}) in {sweep:.2f} s; "
        f"peak {_peak_mib():,.0f} MiB"
    )

    started = time.process_time()
    fired = 0
    for key, state in engine.apps.items():
        fired += len(tick(state, key, TODAY + 1, ctx)[1])
    scan = time.process_time() - started
    print(f"  4. full scan without the index (tick on every application): {scan:.1f} s ({fired:,} signals)")
    del engine
    gc.collect()

    _phase_worker(n)
    print(f"goal: daily sweep < 60 s and < 2 GiB: sweep {sweep:.2f} s, full scan {scan:.1f} s (CPU)")


def _phase_worker(n: int) -> None:
    queue: Any = multiprocessing.get_context("spawn").Queue()
    child = multiprocessing.get_context("spawn").Process(target=_worker_rebuild, args=(n, queue))
    child.start()
    elapsed, loaded, peak, size = queue.get()
    child.join()
    print(
        f"  5. worker: table of {n:,} states ({size:.0f} B each) {loaded:,.0f} MiB; index rebuilt from it "
        f"in {elapsed:.1f} s; peak {peak:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
