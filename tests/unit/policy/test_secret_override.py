"""GATEWAY_PSEUDONYMISATION_SECRET replaces the policy file's key (production keys stay out of git)."""

from __future__ import annotations

import pytest
from gateway.policy.model import PolicyStore, load_policy
from gateway.settings import GatewaySettings
from pydantic import SecretStr


def test_secret_from_settings_overrides_the_policy_file() -> None:
    shipped = load_policy().secret
    override = load_policy(secret=SecretStr("prod-key-from-vault")).secret
    assert override == b"prod-key-from-vault"
    assert shipped != override
    assert load_policy(secret=SecretStr("")).secret == shipped  # an empty value does not wipe the key


def test_settings_and_store_carry_it_through_reload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PSEUDONYMISATION_SECRET", "k-123")
    settings = GatewaySettings()
    assert "k-123" not in str(settings.masked_dump())
    store = PolicyStore(settings.policy_file, secret=settings.pseudonymisation_secret)
    assert store.policy.secret == b"k-123"
    assert store.reload().secret == b"k-123"
