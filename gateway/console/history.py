"""The console's metric history on disk (SQLite in the state directory): survives a restart, keeps
every sample for 48 hours (one a minute by default) and hourly samples for 30 days, so that charts
over the last hours are exact and a 30-day view stays small. Series names are metric names with
their (non-personal) labels.

Values are the raw readings (counters are cumulative); rates are computed when read, with counter
resets (a restarted worker) handled like Prometheus' `increase`.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["History", "increases", "per_minute"]

MINUTE_KEEP_S = 48 * 3600
HOUR_KEEP_S = 30 * 24 * 3600


def increases(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Per-interval increases of a cumulative counter: (time, increase since the previous point); a
    drop means the counter restarted from 0, so the increase is the new value."""
    out: list[tuple[float, float]] = []
    for (_, v0), (t1, v1) in itertools.pairwise(points):
        out.append((t1, v1 - v0 if v1 >= v0 else v1))
    return out


def per_minute(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Rates per minute of a cumulative counter between consecutive points (resets handled)."""
    out: list[tuple[float, float]] = []
    for (t0, _), (t1, inc) in zip(points, increases(points), strict=False):
        if t1 > t0:
            out.append((t1, inc * 60.0 / (t1 - t0)))
    return out


class History:
    def __init__(self, path: Path, *, sync: bool = True) -> None:
        """`sync=False` skips fsync (bulk loads in benchmarks only)."""
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._lock = threading.Lock()
        self._pruned = -1
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.executescript(
            """
            PRAGMA journal_mode=WAL;
            CREATE TABLE IF NOT EXISTS minute (ts INTEGER NOT NULL, series TEXT NOT NULL, value REAL NOT NULL,
                                               PRIMARY KEY (series, ts)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS hour (ts INTEGER NOT NULL, series TEXT NOT NULL, value REAL NOT NULL,
                                             PRIMARY KEY (series, ts)) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS minute_ts ON minute (ts);
            CREATE INDEX IF NOT EXISTS hour_ts ON hour (ts);
            CREATE TABLE IF NOT EXISTS names (series TEXT PRIMARY KEY) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            """
        )
        self._db.execute(f"PRAGMA synchronous={'NORMAL' if sync else 'OFF'}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def record(self, ts: float, values: Mapping[str, float]) -> None:
        """One sample of every series at `ts` (seconds); the hourly table keeps the last reading of
        each hour; older rows are pruned."""
        minute = int(ts)
        hour = int(ts) // 3600 * 3600
        rows = [(minute, s, float(v)) for s, v in values.items()]
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO minute VALUES (?, ?, ?)", rows)
            self._db.executemany(
                "INSERT OR REPLACE INTO hour VALUES (?, ?, ?)", [(hour, s, v) for _, s, v in rows]
            )
            self._db.executemany("INSERT OR IGNORE INTO names VALUES (?)", [(s,) for s in values])
            if hour != self._pruned:  # once an hour is enough
                self._db.execute("DELETE FROM minute WHERE ts < ?", (minute - MINUTE_KEEP_S,))
                self._db.execute("DELETE FROM hour WHERE ts < ?", (hour - HOUR_KEEP_S,))
                self._pruned = hour

    def series(
        self, names: Iterable[str], since: float, *, hourly: bool = False
    ) -> dict[str, list[tuple[float, float]]]:
        table = "hour" if hourly else "minute"
        out: dict[str, list[tuple[float, float]]] = {}
        with self._lock:
            for name in names:
                rows = self._db.execute(
                    f"SELECT ts, value FROM {table} WHERE series = ? AND ts >= ? ORDER BY ts",  # noqa: S608 - table is one of two constants
                    (name, int(since)),
                ).fetchall()
                out[name] = [(float(t), float(v)) for t, v in rows]
        return out

    def names(self, prefix: str = "") -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT series FROM names WHERE series >= ? AND series < ? ORDER BY series",
                (prefix, prefix + "\uffff"),
            ).fetchall()
        return [r[0] for r in rows]

    def latest_ts(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT MAX(ts) FROM minute").fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def put_state(self, key: str, value: str) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, value))

    def get_state(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None
