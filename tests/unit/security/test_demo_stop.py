"""`gateway demo stop` with nothing running exits 0 and says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from gateway.cli import cli


def test_demo_stop_with_nothing_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_STATE_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["demo", "stop"])
    assert result.exit_code == 0
    assert "nothing to stop" in result.output
