"""The demo pseudonymisation key (issue 10 item 6): a warning, once, with the bundled demo policy;
refused with any other policy file."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from gateway.errors import ConfigError
from gateway.policy import secret as secret_module
from gateway.policy.model import DEFAULT_ACTORS_FILE, DEFAULT_POLICY_FILE, PolicyStore
from pydantic import SecretStr

STRONG = SecretStr("x" * 40)


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secret_module, "_warned", set())


def copy_policy(tmp_path: Path) -> Path:
    shutil.copy(DEFAULT_ACTORS_FILE, tmp_path / DEFAULT_ACTORS_FILE.name)
    return Path(shutil.copy(DEFAULT_POLICY_FILE, tmp_path / "policy.yaml"))


def test_the_demo_key_warns_once_with_the_bundled_policy(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway.policy.secret"):
        store = PolicyStore(check_key=True)
        store.reload()
        PolicyStore(check_key=True)
    warnings = [r for r in caplog.records if r.name == "gateway.policy.secret"]
    assert len(warnings) == 1
    assert "demo key" in warnings[0].getMessage()
    assert "demo-only-pseudonymisation-key" not in caplog.text  # the key itself is never logged


def test_a_strong_key_gives_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway.policy.secret"):
        PolicyStore(secret=STRONG, check_key=True)
    assert not [r for r in caplog.records if r.name == "gateway.policy.secret"]


@pytest.mark.parametrize("override", [None, SecretStr("short-key"), SecretStr("change-me")])
def test_a_demo_or_short_key_is_refused_with_another_policy(
    tmp_path: Path, override: SecretStr | None
) -> None:
    with pytest.raises(ConfigError) as info:
        PolicyStore(copy_policy(tmp_path), secret=override, check_key=True)
    assert [p.path for p in info.value.problems] == ["pseudonymisation_secret"]
    assert "GATEWAY_PSEUDONYMISATION_SECRET" in info.value.problems[0].reason


def test_another_policy_runs_with_a_strong_key(tmp_path: Path) -> None:
    assert PolicyStore(copy_policy(tmp_path), secret=STRONG, check_key=True).policy.secret == b"x" * 40


def test_a_reload_onto_a_weak_key_keeps_the_running_policy(tmp_path: Path) -> None:
    path = copy_policy(tmp_path)
    store = PolicyStore(path, secret=STRONG, check_key=True)
    store.secret = SecretStr("short")
    with pytest.raises(ConfigError):
        store.reload()
    assert store.policy.secret == b"x" * 40 and store.last_error is not None


def test_offline_tools_load_any_policy_without_the_check(tmp_path: Path) -> None:
    assert PolicyStore(copy_policy(tmp_path)).policy.secret == b"demo-only-pseudonymisation-key"
