"""`gateway retention plan` over the national stock (prints figures, asserts nothing).

2.7 M synthetic applications (issue 16), 10 % of them radiated (radiation dates spread over the
last two years; 1 in 100 of those without a date, 1 in 50 déradiated afterwards: an entry then its
deletion in the clock's changelog). Phases, each timed, with the peak memory (max RSS) of the
process that ran it:

1. clock: the clock transition of every application's Demande (`gateway.retention.clock.on_demande`,
   what the worker does per record after decoding it), giving the changelog of the clock table;
2. plan, in memory: `entries_of` + `plan` over that changelog (the latest value of each key
   decoded once, sorted by due date then numéro unique), in a child process (its own peak);
3. plan, end to end: the changelog written to a real topic of a local secured broker (as the
   tests start one), then `python -m gateway retention plan --now DATE` as a subprocess, its wall
   time and peak RSS (what an operator runs). `--no-broker` skips it.

Goal (issue 16): < 60 s and < 2 GiB. Times are wall seconds on a shared machine.

Run: .venv/bin/python bench/bench_retention.py [--n 2700000] [--no-broker]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from gateway.retention.clock import entries_of, on_demande, plan

TODAY = date(2026, 11, 30)
STORES = ("canonical", "raw", "route", "signals", "cotation", "sne")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def num(i: int) -> str:
    return f"0{35 + i % 60:02d}26{i:011d}0"[:18]


def changelog(n: int, seed: int = 16) -> tuple[list[tuple[bytes, bytes | None]], dict[str, int]]:
    """The clock's changelog after every application's Demande (and some déradiations)."""
    rng = random.Random(seed)
    records: list[tuple[bytes, bytes | None]] = []
    counts = {"applications": n, "radiated": 0, "sans-date": 0, "deradiated": 0}
    active = {"statut": "ACTIVE", "radiation": None}
    for i in range(n):
        if rng.random() >= 0.10:
            on_demande(None, active, TODAY)  # the worker looks at every Demande
            continue
        counts["radiated"] += 1
        if rng.random() < 0.01:
            record: dict[str, Any] = {"statut": "RADIEE", "radiation": None}
            counts["sans-date"] += 1
        else:
            when = TODAY - timedelta(days=rng.randrange(0, 730))
            record = {"statut": "RADIEE", "radiation": {"motif": "RADATT", "dateRadiation": when}}
        key = num(i).encode()
        change = on_demande(None, record, TODAY)
        assert change.entry is not None
        records.append((key, change.entry.to_bytes()))
        if rng.random() < 0.02:
            counts["deradiated"] += 1
            after = on_demande(change.entry, active, TODAY)
            records.append((key, after.entry.to_bytes() if after.entry is not None else None))
    return records, counts


def _plan_child(records: list[tuple[bytes, bytes | None]], queue: Any) -> None:
    started = time.perf_counter()
    lines = 0
    with Path(os.devnull).open("w", encoding="utf-8") as out:
        for line in plan(entries_of(records), TODAY, STORES):
            out.write(line + "\n")
            lines += 1
    queue.put((time.perf_counter() - started, lines, _peak_mib()))


def end_to_end(records: list[tuple[bytes, bytes | None]]) -> None:
    from gateway.broker import LocalBroker, install_kafka  # noqa: PLC0415
    from gateway.flows.admin import TopicSpec, ensure_topics  # noqa: PLC0415
    from gateway.flows.retention import TABLE  # noqa: PLC0415
    from gateway.settings import GatewaySettings  # noqa: PLC0415
    from gateway.testing.kafka import cli_env, register_broker  # noqa: PLC0415
    from gateway.testing.kafka import client_kwargs as kw  # noqa: PLC0415
    from kafka import KafkaProducer  # noqa: PLC0415

    settings = GatewaySettings()
    tmp = Path(tempfile.mkdtemp(prefix="gp-bench-retention-"))
    broker = LocalBroker(
        install_kafka(settings.state_dir, settings.kafka_version), tmp / "k", watch_parent=True
    )
    try:
        bootstrap = broker.start()
        register_broker(bootstrap, broker.security.admin_client_file)
        app_id = "bench-ret"
        topic = f"{app_id}-{TABLE}-changelog"
        ensure_topics(kw(bootstrap), [TopicSpec(topic, 6, 1, "compact")])
        started = time.perf_counter()
        producer = KafkaProducer(**kw(bootstrap), acks="all", linger_ms=20, batch_size=512 * 1024)
        for key, value in records:
            producer.send(topic, key=key, value=value)
        producer.flush()
        producer.close()
        wrote = time.perf_counter() - started
        print(f"  3. changelog written to the broker: {len(records):,} records in {wrote:.1f} s")
        env = cli_env(bootstrap) | {"GATEWAY_APP_ID": app_id, "GATEWAY_RETENTION_STORES": ",".join(STORES)}
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "gateway", "retention", "plan", "--now", TODAY.isoformat()],
            env=env,
            capture_output=True,
            check=False,
        )
        elapsed = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        lines = done.stdout.count(b"\n")
        print(
            f"     `gateway retention plan --now {TODAY}`: {lines:,} lines in {elapsed:.1f} s (process start"
            f" included), peak {peak:,.0f} MiB, exit {done.returncode}; {done.stderr.decode().strip()}"
        )
    finally:
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2_700_000)
    parser.add_argument("--no-broker", action="store_true", help="skip the end-to-end phase")
    args = parser.parse_args()
    print(f"retention plan over {args.n:,} synthetic applications, 10 % radiated, clock {TODAY}")
    started = time.perf_counter()
    records, counts = changelog(args.n)
    took = time.perf_counter() - started
    print(
        f"  1. clock over every Demande: {took:.1f} s; {counts['radiated']:,} radiated"
        f" ({counts['sans-date']:,} without a date, {counts['deradiated']:,} déradiated):"
        f" {len(records):,} changelog records; peak {_peak_mib():,.0f} MiB"
    )
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_plan_child, args=(records, queue))
    child.start()
    elapsed, lines, peak = queue.get()
    child.join()
    print(f"  2. plan in memory: {lines:,} lines in {elapsed:.1f} s; peak {peak:,.0f} MiB (forked child)")
    if not args.no_broker:
        end_to_end(records)
    print("  goal: < 60 s and < 2 GiB")


if __name__ == "__main__":
    main()
