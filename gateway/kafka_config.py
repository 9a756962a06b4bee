"""Connection settings of every Kafka client the gateway makes: the one seam between
`GatewaySettings` and kafka-python / faust. Build clients with `**client_kwargs(settings)`, never
from a bare bootstrap string, so that security settings reach every client."""

from __future__ import annotations

from typing import Any

from gateway.settings import GatewaySettings

__all__ = ["client_kwargs"]


def client_kwargs(settings: GatewaySettings) -> dict[str, Any]:
    """kafka-python keyword arguments (bootstrap servers and, when configured, security)."""
    return {"bootstrap_servers": settings.bootstrap_servers}
