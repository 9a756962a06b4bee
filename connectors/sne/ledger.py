"""Durable ledger of SNE requests (sqlite): what was queued, sent and answered, keyed by a stable id.

States: QUEUED (stored, not sent) -> SENDING (sent, answer not yet recorded: outcome unknown if the
process or the link dies here) -> ANSWERED (feedback stored; the xml payload is then erased).
`creations` remembers which (origine, referenceSource) got which numéro unique, so that a creation
sent again is turned into a modification instead of registering the household twice.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["POLLED_KEPT_S", "Ledger", "LedgerRow", "forget_erased", "open_sqlite"]

POLLED_KEPT_S = 31 * 86_400  # how long a polled event's id is remembered (a month and a day)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
  request_id TEXT PRIMARY KEY,
  service TEXT NOT NULL,
  type_fichier TEXT,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  file_name TEXT,
  xml BLOB,
  meta TEXT NOT NULL,
  status TEXT,
  num_unique TEXT,
  feedback BLOB,
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_state ON requests(state);
CREATE INDEX IF NOT EXISTS requests_num_unique ON requests(num_unique);
CREATE TABLE IF NOT EXISTS creations (
  origine TEXT NOT NULL, reference TEXT NOT NULL, num_unique TEXT NOT NULL,
  PRIMARY KEY (origine, reference)
);
CREATE INDEX IF NOT EXISTS creations_num_unique ON creations(num_unique);
CREATE TABLE IF NOT EXISTS watermarks (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS polled (event_id TEXT PRIMARY KEY, at REAL NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class LedgerRow:
    request_id: str
    service: str
    type_fichier: str | None
    state: str
    attempts: int
    file_name: str | None
    xml: bytes | None
    meta: dict[str, Any]
    status: str | None
    num_unique: str | None
    feedback: bytes | None


def open_sqlite(path: Path, schema: str) -> sqlite3.Connection:
    """A durable SQLite database shared by threads (WAL, synchronous writes, autocommit), with `schema`.

    The database holds personal data: its directory is made 0700 and the database, WAL and
    shared-memory files 0600 (SQLite creates its -wal / -shm files with the database file's mode);
    `secure_delete` overwrites erased content with zeros, and `forget_erased` truncates the WAL so that
    no erased page survives in it.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.parent.stat().st_uid == os.getuid():
        path.parent.chmod(0o700)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if f.exists():
            f.chmod(0o600)
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA secure_delete=ON")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(schema)
    return db


def forget_erased(db: sqlite3.Connection) -> None:
    """After personal data was erased or overwritten: copy the WAL into the database (whose freed
    content `secure_delete` zeroed) and truncate the WAL to zero bytes, so that the erased values are
    in neither file. A reader holding an old snapshot can make the truncation wait: it is retried at
    the next erasure."""
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = open_sqlite(path, _SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _row(self, r: tuple[Any, ...] | None) -> LedgerRow | None:
        if r is None:
            return None
        return LedgerRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]), r[8], r[9], r[10])

    _COLS = ", ".join(
        [
            "request_id",
            "service",
            "type_fichier",
            "state",
            "attempts",
            "file_name",
            "xml",
            "meta",
            "status",
            "num_unique",
            "feedback",
        ]
    )

    def get(self, request_id: str) -> LedgerRow | None:
        with self._lock:
            cur = self._db.execute(f"SELECT {self._COLS} FROM requests WHERE request_id = ?", (request_id,))  # noqa: S608
            return self._row(cur.fetchone())

    def enqueue(
        self, request_id: str, service: str, type_fichier: str | None, xml: bytes | None, meta: dict[str, Any]
    ) -> bool:
        """Store a request once (True when new). Re-enqueueing keeps the first one."""
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO requests (request_id, service, type_fichier, state, xml, meta, "
                "created_at, updated_at) VALUES (?, ?, ?, 'QUEUED', ?, ?, ?, ?)",
                (request_id, service, type_fichier, xml, json.dumps(meta, default=str), now, now),
            )
            return cur.rowcount == 1

    def update_meta(self, request_id: str, meta: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE requests SET meta = ?, updated_at = ? WHERE request_id = ?",
                (json.dumps(meta, default=str), time.time(), request_id),
            )

    def mark_sending(self, request_id: str, file_name: str | None) -> int:
        """Record that a call is about to be made; returns the attempt number."""
        with self._lock:
            self._db.execute(
                "UPDATE requests SET state = 'SENDING', attempts = attempts + 1, "
                "file_name = COALESCE(?, file_name), updated_at = ? WHERE request_id = ?",
                (file_name, time.time(), request_id),
            )
            cur = self._db.execute("SELECT attempts FROM requests WHERE request_id = ?", (request_id,))
            row = cur.fetchone()
            return int(row[0]) if row else 0

    def mark_not_sent(self, request_id: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE requests SET state = 'QUEUED', updated_at = ? WHERE request_id = ?",
                (time.time(), request_id),
            )

    def mark_answered(self, request_id: str, status: str, num_unique: str | None, feedback: bytes) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE requests SET state = 'ANSWERED', status = ?, num_unique = ?, feedback = ?, "
                "xml = NULL, updated_at = ? WHERE request_id = ?",
                (status, num_unique, feedback, time.time(), request_id),
            )
            forget_erased(self._db)

    def pending(self) -> list[LedgerRow]:
        with self._lock:
            cur = self._db.execute(
                f"SELECT {self._COLS} FROM requests WHERE state != 'ANSWERED' ORDER BY created_at"  # noqa: S608
            )
            return [r for r in (self._row(x) for x in cur.fetchall()) if r is not None]

    def remember_creation(self, origine: str, reference: str, num_unique: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO creations (origine, reference, num_unique) VALUES (?, ?, ?)",
                (origine, reference, num_unique),
            )

    def created(self, origine: str, reference: str) -> str | None:
        with self._lock:
            cur = self._db.execute(
                "SELECT num_unique FROM creations WHERE origine = ? AND reference = ?", (origine, reference)
            )
            row = cur.fetchone()
            return str(row[0]) if row else None

    def counts(self) -> dict[str, int]:
        with self._lock:
            cur = self._db.execute("SELECT state, COUNT(*) FROM requests GROUP BY state")
            return {str(k): int(v) for k, v in cur.fetchall()}

    def watermark(self, name: str) -> str | None:
        with self._lock:
            cur = self._db.execute("SELECT value FROM watermarks WHERE name = ?", (name,))
            row = cur.fetchone()
            return str(row[0]) if row else None

    def set_watermark(self, name: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO watermarks (name, value) VALUES (?, ?)", (name, value))

    def unseen(self, event_ids: list[str]) -> set[str]:
        """The ids among `event_ids` not published by an earlier poll."""
        with self._lock:
            return {
                e
                for e in event_ids
                if self._db.execute("SELECT 1 FROM polled WHERE event_id = ?", (e,)).fetchone() is None
            }

    def mark_seen(self, event_ids: list[str], *, now: float | None = None) -> None:
        """Remember the ids a poll published, and forget those older than POLLED_KEPT_S: an id is
        derived from the numéro unique (hashed), so it is kept only as long as a poll can list its
        item again (polls overlap by a fraction of a second; the first one looks 30 days back)."""
        now = time.time() if now is None else now
        with self._lock:
            self._db.executemany(
                "INSERT OR IGNORE INTO polled (event_id, at) VALUES (?, ?)", [(e, now) for e in event_ids]
            )
            self._db.execute("DELETE FROM polled WHERE at < ?", (now - POLLED_KEPT_S,))

    def erase(self, num_unique: str) -> int:
        """Delete every row about application `num_unique` (an erasure, docs/retention.md): its
        requests (by the numéro unique the SNE gave, or the one the request was built with: queued,
        sending or answered, with their XML and the SNE's answer) and its creations; then the WAL is
        checkpointed and truncated, so that with `secure_delete` the values are in neither file.
        Returns how many rows were deleted."""
        with self._lock:
            deleted = self._db.execute("DELETE FROM requests WHERE num_unique = ?", (num_unique,)).rowcount
            # not answered yet (no numéro unique from the SNE): the one it was built with (few rows)
            deleted += self._db.execute(
                "DELETE FROM requests WHERE num_unique IS NULL AND json_extract(meta, '$.numUnique') = ?",
                (num_unique,),
            ).rowcount
            deleted += self._db.execute("DELETE FROM creations WHERE num_unique = ?", (num_unique,)).rowcount
            forget_erased(self._db)
            return int(deleted)

    def sent_accepted(self, num_unique: str, type_fichier: str) -> bool:
        """Whether this gateway had a `type_fichier` file about `num_unique` accepted by the SNE."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM requests WHERE num_unique = ? AND type_fichier = ? AND status = 'ACCEPTED' "
                "LIMIT 1",
                (num_unique, type_fichier),
            ).fetchone()
            return row is not None
