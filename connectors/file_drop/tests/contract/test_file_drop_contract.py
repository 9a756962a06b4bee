"""The connector contract suite, applied to the file-drop source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.file_drop import FileDropSource
from gateway.registry import load
from gateway.testing.contract import source_contract


def _factory(cls: type, config: Any, tmp_path: Path) -> Any:
    return cls(config.model_copy(update={"folder": tmp_path}))


TestFileDropContract = source_contract(
    FileDropSource,
    valid_config={"folder": "/tmp/drop", "source": "rennes-habitat"},
    invalid_config={"format": "pdf", "max_bytes": -1},  # folder and source missing too
    factory=_factory,
)


def test_registered_under_its_entry_point() -> None:
    assert load("file-drop") is FileDropSource
