"""The connector contract suite, run against SneSink (one line, plus its configs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.sne.config import SneConfig
from connectors.sne.connector import SneSink
from gateway.testing.contract import sink_contract


def _factory(cls: type, config: Any, tmp_path: Path) -> Any:
    return cls(config.model_copy(update={"ledger_path": tmp_path / "ledger.sqlite"}), state_dir=tmp_path)


TestSneSinkContract = sink_contract(
    SneSink,
    valid_config={
        "client_cert": "/nonexistent/client.pem",
        "client_key": "/nonexistent/client.key",
        "guichet": "G3501",
    },
    invalid_config={
        "url": "http://sne.example",
        "guichet": "3501",
        "rate_limit_per_second": 0,
        "mode": "weekly",
    },
    min_errors=5,  # url, guichet, rate limit, mode, and the missing certificate paths
    factory=_factory,
)


def test_check_reports_missing_tls_material_without_traffic(tmp_path: Path) -> None:
    cfg = SneConfig(
        client_cert=tmp_path / "nope.pem",
        client_key=tmp_path / "nope.key",
        guichet="G3501",
        ledger_path=tmp_path / "l.sqlite",
    )
    result = SneSink(cfg).check()
    assert not result.ok
    assert "client_cert: file not found" in result.detail and "client_key: file not found" in result.detail
