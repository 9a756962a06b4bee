"""Connection settings of every Kafka client the gateway makes: the one seam between
`GatewaySettings` and kafka-python / faust. Build clients with `**client_kwargs(settings)`, never
from a bare bootstrap string, so that security settings reach every client."""

from __future__ import annotations

from typing import Any

from gateway.settings import GatewaySettings

__all__ = ["RECONNECT", "client_kwargs"]

# kafka-python backs reconnects off up to 30 s by default (a worker resumed ~40 s after its broker
# came back): 2 s at most, so a flow resumes within seconds of the broker's return.
RECONNECT: dict[str, Any] = {"reconnect_backoff_ms": 100, "reconnect_backoff_max_ms": 2000}


def client_kwargs(settings: GatewaySettings) -> dict[str, Any]:
    """kafka-python keyword arguments (bootstrap servers and, when configured, security)."""
    return {"bootstrap_servers": settings.bootstrap_servers, **RECONNECT}
