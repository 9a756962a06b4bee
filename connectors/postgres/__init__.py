"""PostgreSQL sink: an actor's stream as tables following its view schema, exactly-once."""

from __future__ import annotations

from connectors.postgres.config import PostgresSinkConfig
from connectors.postgres.connector import PostgresSink

__all__ = ["PostgresSink", "PostgresSinkConfig"]
