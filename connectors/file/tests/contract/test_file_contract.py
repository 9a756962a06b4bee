"""The connector contract suite, applied to the file sink (JSON Lines and CSV)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from connectors.file import FileSink
from gateway.registry import load
from gateway.testing.contract import CONTRACT_ACTOR, sink_contract


def _lines(config: Any) -> list[str]:
    folder = Path(config.dir) / CONTRACT_ACTOR
    ids = []
    for path in sorted(folder.glob("*.jsonl*")):
        ids += [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]
    return ids


def _rows(config: Any) -> list[str]:
    folder = Path(config.dir) / CONTRACT_ACTOR
    ids = []
    for path in sorted(folder.glob("*.csv*")):
        with path.open(encoding="utf-8", newline="") as f:
            ids += [row["id"] for row in csv.DictReader(f)]
    return ids


TestFileJsonlContract = sink_contract(
    FileSink,
    valid_config=lambda tmp: {"dir": str(tmp / "out")},
    invalid_config={"format": "xlsx", "rotate_bytes": 1},  # dir missing too
    delivered=_lines,
)

TestFileCsvContract = sink_contract(
    FileSink,
    valid_config=lambda tmp: {"dir": str(tmp / "out"), "format": "csv"},
    invalid_config={"dir": "/tmp/x", "format": "xlsx", "rotate_seconds": 0},
    delivered=_rows,
)
TestFileCsvContract.__name__ = "TestFileCsvContract"


def test_registered_under_its_entry_point() -> None:
    assert load("file") is FileSink
