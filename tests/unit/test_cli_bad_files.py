"""Unreadable operator files (policy, actors, cases, connector configs) are refused with a message and
an exit code, never a traceback; a refused policy reload keeps the running policy."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from gateway.cli import main
from gateway.codec.avro import load_schemas
from gateway.errors import ConfigError
from gateway.flows.dlq import DeadLetters
from gateway.flows.route import RouteCore
from gateway.policy import PolicyStore
from gateway.policy.cases import load_cases
from gateway.policy.model import DEFAULT_ACTORS_FILE, DEFAULT_POLICY_FILE, load_policy

NOT_UTF8 = b"version: \xff\xfe\n"
TOO_DEEP = b"a: " + b"[" * 20_000


def _exit_code(argv: list[str]) -> object:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code


@pytest.mark.parametrize("content", [NOT_UTF8, TOO_DEEP])
def test_a_policy_file_that_cannot_be_read_is_a_config_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "policy.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError):
        load_policy(path, DEFAULT_ACTORS_FILE)
    assert _exit_code(["policy", "check", "--policy", str(path)]) == 2


def test_an_actors_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "actors.yaml"
    path.write_bytes(NOT_UTF8)
    with pytest.raises(ConfigError):
        load_policy(DEFAULT_POLICY_FILE, path)


def test_a_reload_of_a_non_utf8_policy_keeps_the_running_one(tmp_path: Path) -> None:
    shutil.copy(DEFAULT_POLICY_FILE, tmp_path / "policy.yaml")
    shutil.copy(DEFAULT_ACTORS_FILE, tmp_path / "demo-actors.yaml")
    core = RouteCore(PolicyStore(tmp_path / "policy.yaml"), load_schemas(), DeadLetters(), "t")
    before = core.router.policy.version
    (tmp_path / "policy.yaml").write_bytes(NOT_UTF8)
    os.utime(tmp_path / "policy.yaml", (1, 1))
    assert core.maybe_reload() is False
    assert core.router.policy.version == before


@pytest.mark.parametrize("content", [NOT_UTF8, TOO_DEEP])
def test_a_cases_file_that_cannot_be_read_is_a_config_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "cases.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError):
        load_cases(path)


@pytest.mark.parametrize("content", [NOT_UTF8, b"a: [1, 2\n", TOO_DEEP])
def test_a_connector_config_file_that_cannot_be_read_exits_2(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    assert _exit_code(["connectors", "check", "file-drop", "--config", str(path)]) == 2


def test_a_set_option_that_is_not_yaml_exits_2() -> None:
    assert _exit_code(["connectors", "check", "file-drop", "--set", "incoming=[1, 2"]) == 2


def test_an_invalid_setting_is_a_configuration_error_without_its_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATEWAY_PARTITIONS", "not-a-number-xyz")
    assert _exit_code(["dlq", "list"]) == 2
    err = capsys.readouterr().err
    assert "partitions" in err and "not-a-number-xyz" not in err


def test_a_defect_exits_70_naming_where_never_what_its_message_quotes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    quoted = "Dupont-Ndiaye AAH 1234.56"

    def broken() -> list[tuple[str, str]]:
        raise ValueError(f"cannot encode {quoted}")

    monkeypatch.setattr("gateway.cli.schemas.schema_rows", broken)
    with pytest.raises(SystemExit) as info:
        main(["schemas", "list"])
    assert info.value.code == 70
    err = capsys.readouterr().err
    assert quoted not in err
    assert "internal error" in err
    assert "in broken" in err
    assert "ValueError (message withheld" in err
