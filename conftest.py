"""Auto-marks tests by directory: tests/unit -> unit, tests/contract -> contract, tests/integration ->
integration (connector test folders follow the same names under connectors/<name>/tests/)."""

from pathlib import Path

import pytest

pytest_plugins = ["gateway.testing.pytest_plugin", "gateway.testing.postgres"]

_MARKS = ("unit", "contract", "integration")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for mark in _MARKS:
            if mark in parts or f"test_{mark}" in item.name:
                item.add_marker(getattr(pytest.mark, mark))
                break
        else:
            item.add_marker(pytest.mark.unit)
