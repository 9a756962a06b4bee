"""The console's pages with 500 actors (one consumer group each) and 30 days of metric history:
server time of the overview and of the consumer-group page (goal: < 1 s each, median), and of one
collection's bookkeeping (history write + group judgement, Kafka excluded).

    python bench/bench_console.py [--actors 500] [--days 30]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from statistics import median

from aiohttp.test_utils import make_mocked_request
from gateway.console.accounts import Accounts
from gateway.console.app import Console
from gateway.console.history import History
from gateway.console.views import groups as _groups
from gateway.console.views import overview as _overview
from gateway.settings import GatewaySettings

SOURCES = ("sne-xml", "cdc-json", "siao-json", "cal-csv", "comed-json")
ROLES = (
    "bailleur",
    "etat",
    "collectivite",
    "reservataire",
    "siao",
    "commission",
    "gestionnaire",
    "demandeur",
)


def fill(history: History, actors: int, days: int, step_s: int) -> tuple[int, float]:
    """Samples every `step_s` over `days` days (the history keeps 48 h of them and hourly points
    beyond); returns (samples written, seconds)."""
    end = time.time()
    start = end - days * 86400
    groups = ["gp-gateway", "gp-gateway.ingest"] + [
        f"gp.actor.{100000000 + i}.sink.file" for i in range(actors)
    ]
    started = time.perf_counter()
    n = 0
    t = start
    while t <= end:
        k = (t - start) / step_s
        values = {f"in/ingest/{s}": k * 3 for s in SOURCES}
        values |= {f"dlq/ingest/{s}": k // 10 for s in SOURCES}
        values |= {f"out/ingest/gp.canonical.{c}": k * 2 for c in ("demande", "decision")}
        values |= {f"out/route/gp.actor.[{r}]": k * 4 for r in ROLES}
        for g in groups:
            values[f"group/{g}/committed"] = k * 5
            values[f"group/{g}/lag"] = float(int(k) % 7)
        history.record(t, values)
        n += 1
        # outside the last 48 h only the hourly points survive: write one per hour there
        t += step_s if end - t < 48 * 3600 else 3600
    return n, time.perf_counter() - started


async def time_pages(console: Console, rounds: int) -> dict[str, list[float]]:
    session = console.sessions.create("bench", "operateur", time.time())
    out: dict[str, list[float]] = {"overview 6 h": [], "overview 48 h": [], "groups": []}
    app: dict[str, object] = {"console": console}
    for _ in range(rounds):
        for label, path, handler in (
            ("overview 6 h", "/console/?hours=6", _overview),
            ("overview 48 h", "/console/?hours=48", _overview),
            ("groups", "/console/groups", _groups),
        ):
            request = make_mocked_request("GET", path, app=app)  # type: ignore[arg-type]
            t0 = time.perf_counter()
            response = await handler(request, session)
            out[label].append(time.perf_counter() - t0)
            assert response.status == 200
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--actors", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--step", type=int, default=60, help="sampling period in seconds")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        history = History(Path(tmp) / "history.sqlite", sync=False)
        n, secs = fill(history, args.actors, args.days, args.step)
        size = (Path(tmp) / "history.sqlite").stat().st_size / 1e6
        print(
            f"history: {n} samples of {args.actors + 2} groups and ~40 series over {args.days} days"
            f" written in {secs:.1f} s ({size:.0f} MB on disk)"
        )
        console = Console(GatewaySettings(), Accounts(Path(tmp) / "none.yaml"), history, [])
        groups = {f"gp.actor.{100000000 + i}.sink.file": (i * 5, i % 7) for i in range(args.actors)}
        t0 = time.perf_counter()
        console._judge(groups, time.time())
        ms = 1000 * (time.perf_counter() - t0)
        print(f"one collection's group judgement ({len(groups)} groups): {ms:.0f} ms")
        timings = asyncio.run(time_pages(console, args.rounds))
        for label, values in timings.items():
            mid, top = 1000 * median(values), 1000 * max(values)
            print(
                f"{label:14} server time: median {mid:6.0f} ms, max {top:6.0f} ms over {len(values)} requests"
            )
        history.close()


if __name__ == "__main__":
    main()
