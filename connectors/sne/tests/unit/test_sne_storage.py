"""The ledger and simulator databases hold personal data: private files, erased values gone."""

from __future__ import annotations

import stat
from pathlib import Path

from connectors.sne.ledger import Ledger
from connectors.sne.simulator.state import Registry

MARKER = b"<nom>MARQUEUR-EFFACE-7Q</nom>"


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _files(db: Path) -> list[Path]:
    return [f for f in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")) if f.exists()]


def test_ledger_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "sne" / "ledger.sqlite"
    ledger = Ledger(path)
    ledger.enqueue("r1", "numUnique", "CRE", MARKER, {})
    assert _mode(path.parent) == 0o700
    files = _files(path)
    assert path in files and path.with_name(path.name + "-wal") in files
    assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    ledger.close()


def test_existing_world_readable_ledger_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    Ledger(path).close()
    path.chmod(0o644)
    Ledger(path).close()
    assert _mode(path) == 0o600


def test_erased_payload_is_in_neither_the_database_nor_the_wal(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path)
    ledger.enqueue("r1", "numUnique", "CRE", MARKER * 200, {})  # overflow pages too
    ledger.enqueue("r2", "numUnique", "CRE", MARKER, {})
    ledger.mark_sending("r1", "f.xml")
    ledger.mark_sending("r2", "f.xml")
    assert any(MARKER in f.read_bytes() for f in _files(path))  # the marker was written
    ledger.mark_answered("r1", "ACCEPTED", "035260100000000001", b"{}")
    ledger.mark_answered("r2", "ACCEPTED", "035260100000000002", b"{}")
    assert not [f.name for f in _files(path) if MARKER in f.read_bytes()]
    ledger.close()
    assert not [f.name for f in _files(path) if MARKER in f.read_bytes()]


def test_simulator_registry_is_private_and_forgets_replaced_files(tmp_path: Path) -> None:
    path = tmp_path / "sim" / "sne-simulator.sqlite"
    reg = Registry(path)
    num = reg.create(
        dept="035",
        yymm="2601",
        identity="x|y|2000-01-01",
        guichet="G3501",
        date_creation="2026-01-05",
        xml=MARKER,
    )
    reg.update(num, b"<nom>AUTRE</nom>", renewed=False)
    assert _mode(path.parent) == 0o700
    assert all(_mode(f) == 0o600 for f in _files(path))
    assert not [f.name for f in _files(path) if MARKER in f.read_bytes()]
    reg.close()
