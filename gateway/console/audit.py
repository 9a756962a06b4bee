"""Audit entries for the console's lookup (the same reader as `gateway audit who-received`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gateway.settings import GatewaySettings

__all__ = ["read_audit"]


def read_audit(settings: GatewaySettings, topic: str) -> Iterator[dict[str, Any]]:
    from gateway.cli.audit import read_audit as _read  # noqa: PLC0415 - one reader for CLI and console

    return _read(settings.bootstrap_servers, topic)
