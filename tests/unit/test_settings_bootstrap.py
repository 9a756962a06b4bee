"""Malformed GATEWAY_BOOTSTRAP_SERVERS are refused before any connection, with a clear message."""

from __future__ import annotations

import pytest
from gateway.cli import main
from gateway.settings import GatewaySettings


@pytest.mark.parametrize(
    "value", ["nonsense", "foo:bar", "", " , ", "host:0", "host:70000", "a b:9092", "h:9092,"]
)
def test_malformed_bootstrap_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("GATEWAY_BOOTSTRAP_SERVERS", value)
    with pytest.raises(ValueError, match="GATEWAY_BOOTSTRAP_SERVERS"):
        GatewaySettings()


@pytest.mark.parametrize("value", ["127.0.0.1:9092", "kafka-1.example.org:9093,kafka-2:9093", "[::1]:9092"])
def test_wellformed_bootstrap_is_kept(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("GATEWAY_BOOTSTRAP_SERVERS", value)
    assert GatewaySettings().bootstrap_servers == value


def test_cli_reports_the_setting_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATEWAY_BOOTSTRAP_SERVERS", "foo:bar")
    with pytest.raises(SystemExit) as exit_:
        main(["dlq", "list"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "GATEWAY_BOOTSTRAP_SERVERS" in err and "host:port" in err and "Traceback" not in err
    assert len(err.splitlines()) <= 3
