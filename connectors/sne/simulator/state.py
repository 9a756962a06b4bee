"""The simulator's registry (sqlite, survives restarts): applications, numéro sequences, DALO events.

Numéro unique shape (18 characters, documented in the connector README):
    DDD   département of the first wanted commune, 3 characters (35238 -> 035, 2A004 -> 02A, 97105 -> 971)
    YYMM  year and month of dateCreationDemande
    NNNNNNNNNNN  11-digit sequence per DDD+YYMM, from 1
e.g. 035260100000000001 (dept 35, January 2026, first application).
Duplicates: same nom + prénom (case and accents folded) + dateNaissance as an active application.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from connectors.sne.ledger import forget_erased, open_sqlite

__all__ = ["Registry", "StoredDemande", "departement_of", "identity_key"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS demandes (
  num_unique TEXT PRIMARY KEY,
  identity TEXT,
  num_guichet TEXT,
  date_creation TEXT,
  statut TEXT NOT NULL DEFAULT 'ACTIVE',
  motif_radiation TEXT,
  sous_motif TEXT,
  date_radiation TEXT,
  radiated_at TEXT,
  renewed_at TEXT,
  xml BLOB,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS demandes_identity ON demandes(identity);
CREATE TABLE IF NOT EXISTS sequences (prefix TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dalo (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  num_unique TEXT NOT NULL, statut TEXT NOT NULL, date_decision TEXT, typologie TEXT, commission TEXT,
  recorded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS calls (service TEXT PRIMARY KEY, count INTEGER NOT NULL);
"""


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


def identity_key(nom: str, prenom: str, date_naissance: str) -> str | None:
    if not (nom and prenom and date_naissance):
        return None
    return f"{_fold(nom)}|{_fold(prenom)}|{date_naissance}"


def departement_of(commune: str) -> str:
    if commune[:2] in ("2A", "2B"):
        return "0" + commune[:2]
    if commune.startswith("97"):
        return commune[:3]
    return "0" + commune[:2]


@dataclass(frozen=True, slots=True)
class StoredDemande:
    num_unique: str
    num_guichet: str | None
    date_creation: str | None
    statut: str
    motif_radiation: str | None
    sous_motif: str | None
    date_radiation: str | None


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Registry:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_sqlite(path, _SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def count_call(self, service: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO calls (service, count) VALUES (?, 1) "
                "ON CONFLICT(service) DO UPDATE SET count = count + 1",
                (service,),
            )

    def calls(self) -> dict[str, int]:
        with self._lock:
            return {str(k): int(v) for k, v in self._db.execute("SELECT service, count FROM calls")}

    def find_identity(self, identity: str) -> list[StoredDemande]:
        with self._lock:
            cur = self._db.execute(
                "SELECT num_unique, num_guichet, date_creation, statut, motif_radiation, sous_motif, "
                "date_radiation FROM demandes WHERE identity = ? ORDER BY num_unique",
                (identity,),
            )
            return [StoredDemande(*r) for r in cur.fetchall()]

    def get(self, num_unique: str) -> StoredDemande | None:
        with self._lock:
            cur = self._db.execute(
                "SELECT num_unique, num_guichet, date_creation, statut, motif_radiation, sous_motif, "
                "date_radiation FROM demandes WHERE num_unique = ?",
                (num_unique,),
            )
            row = cur.fetchone()
            return StoredDemande(*row) if row else None

    def xml(self, num_unique: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT xml FROM demandes WHERE num_unique = ?", (num_unique,)).fetchone()
            return bytes(row[0]) if row and row[0] is not None else None

    def create(
        self, *, dept: str, yymm: str, identity: str | None, guichet: str, date_creation: str, xml: bytes
    ) -> str:
        """Assign the next numéro unique of dept+yymm and store the application (one transaction)."""
        prefix = f"{dept}{yymm}"
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT value FROM sequences WHERE prefix = ?", (prefix,)).fetchone()
                value = (int(row[0]) if row else 0) + 1
                self._db.execute(
                    "INSERT OR REPLACE INTO sequences (prefix, value) VALUES (?, ?)", (prefix, value)
                )
                num = f"{prefix}{value:011d}"
                now = _now()
                self._db.execute(
                    "INSERT INTO demandes (num_unique, identity, num_guichet, date_creation, xml, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (num, identity, guichet, date_creation, xml, now, now),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return num

    def seed(
        self, num_unique: str, *, identity: str | None, guichet: str, date_creation: str, xml: bytes
    ) -> bool:
        """Register an application the SNE already knows under its own number (demo data); the
        sequence of its DDD+YYMM moves past it so that new numbers never collide. True when added."""
        prefix, seq = num_unique[:7], num_unique[7:]
        with self._lock:
            now = _now()
            cur = self._db.execute(
                "INSERT OR IGNORE INTO demandes (num_unique, identity, num_guichet, date_creation, xml, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (num_unique, identity, guichet, date_creation, xml, now, now),
            )
            if seq.isdigit():
                self._db.execute(
                    "INSERT INTO sequences (prefix, value) VALUES (?, ?) "
                    "ON CONFLICT(prefix) DO UPDATE SET value = MAX(value, excluded.value)",
                    (prefix, int(seq)),
                )
            return cur.rowcount == 1

    def update(self, num_unique: str, xml: bytes, *, renewed: bool) -> None:
        with self._lock:
            now = _now()
            self._db.execute(
                "UPDATE demandes SET xml = ?, updated_at = ?, "
                "renewed_at = CASE WHEN ? THEN ? ELSE renewed_at END WHERE num_unique = ?",
                (xml, now, renewed, now, num_unique),
            )
            forget_erased(self._db)  # the replaced application is in neither file

    def radiate(self, num_unique: str, motif: str, sous_motif: str | None, date_radiation: str) -> None:
        with self._lock:
            now = _now()
            self._db.execute(
                "UPDATE demandes SET statut = 'RADIEE', motif_radiation = ?, sous_motif = ?, "
                "date_radiation = ?, radiated_at = ?, updated_at = ? WHERE num_unique = ?",
                (motif, sous_motif, date_radiation, now, now, num_unique),
            )

    def reactivate(self, num_unique: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE demandes SET statut = 'ACTIVE', motif_radiation = NULL, sous_motif = NULL, "
                "date_radiation = NULL, radiated_at = NULL, updated_at = ? WHERE num_unique = ?",
                (_now(), num_unique),
            )

    def radiated_since(self, since: datetime) -> list[StoredDemande]:
        with self._lock:
            cur = self._db.execute(
                "SELECT num_unique, num_guichet, date_creation, statut, motif_radiation, sous_motif, "
                "date_radiation FROM demandes WHERE statut = 'RADIEE' AND radiated_at >= ? "
                "ORDER BY radiated_at",
                (since.astimezone(UTC).isoformat(),),
            )
            return [StoredDemande(*r) for r in cur.fetchall()]

    def add_dalo(
        self,
        num_unique: str,
        statut: str,
        date_decision: str | None,
        typologie: str | None,
        commission: str | None,
    ) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO dalo (num_unique, statut, date_decision, typologie, commission, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (num_unique, statut, date_decision, typologie, commission, _now()),
            )

    def dalo_since(self, since: datetime) -> list[tuple[str, str, str | None, str | None, str | None]]:
        with self._lock:
            cur = self._db.execute(
                "SELECT num_unique, statut, date_decision, typologie, commission FROM dalo "
                "WHERE recorded_at >= ? ORDER BY id",
                (since.astimezone(UTC).isoformat(),),
            )
            return [tuple(r) for r in cur.fetchall()]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM demandes").fetchone()[0])
