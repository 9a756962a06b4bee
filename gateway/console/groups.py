"""Consumer-group status in the manner of Burrow: judged from the trend of the lag and of the
commits over a window of samples, not from one threshold on the lag.

- `OK`: caught up (lag 0), or committing and not falling behind;
- `WARN`: committing but the lag grew at every sample of the window (falling behind), or no commit
  for `warn_after_s` while records wait;
- `ERR`: records wait and the group has not committed for `err_after_s` (stopped or stalled: e.g. a
  recipient that stopped reading its stream three days ago).
Pure: samples and clock are passed in.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

__all__ = ["GroupSample", "GroupStatus", "evaluate"]


@dataclass(frozen=True, slots=True)
class GroupSample:
    ts: float
    committed: int  # sum of the committed offsets over the group's partitions
    lag: int  # records still to deliver (read_committed)


@dataclass(frozen=True, slots=True)
class GroupStatus:
    status: str  # OK | WARN | ERR | UNKNOWN
    reason: str
    lag: int
    last_commit_ts: float | None


def evaluate(
    samples: list[GroupSample],
    last_commit_ts: float | None,
    now: float,
    *,
    warn_after_s: float = 600.0,
    err_after_s: float = 3600.0,
) -> GroupStatus:
    """`samples`: the window, oldest first; `last_commit_ts`: when the committed offsets last moved
    (kept across windows, so a stall of days is measured in days)."""
    if not samples:
        return GroupStatus("UNKNOWN", "no sample yet", 0, last_commit_ts)
    last = samples[-1]
    idle_for = None if last_commit_ts is None else now - last_commit_ts
    if last.lag <= 0:
        return GroupStatus("OK", "caught up", 0, last_commit_ts)
    if idle_for is None or idle_for >= err_after_s:
        since = "never seen committing" if idle_for is None else f"no commit for {_span(idle_for)}"
        return GroupStatus("ERR", f"stalled: {last.lag} records waiting, {since}", last.lag, last_commit_ts)
    if idle_for >= warn_after_s:
        return GroupStatus(
            "WARN", f"{last.lag} records waiting, no commit for {_span(idle_for)}", last.lag, last_commit_ts
        )
    growing = len(samples) >= 3 and all(b.lag > a.lag for a, b in itertools.pairwise(samples))
    if growing:
        return GroupStatus("WARN", f"falling behind: lag grew to {last.lag}", last.lag, last_commit_ts)
    return GroupStatus("OK", f"consuming ({last.lag} records waiting)", last.lag, last_commit_ts)


def _span(seconds: float) -> str:
    s = int(seconds)
    if s >= 86400:
        return f"{s // 86400} d {s % 86400 // 3600} h"
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 60} min"
