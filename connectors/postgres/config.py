"""Configuration of the PostgreSQL sink (`gateway connectors describe postgres`)."""

from __future__ import annotations

from gateway.connectors import ConnectorConfig
from pydantic import Field, SecretStr

__all__ = ["PostgresSinkConfig"]


class PostgresSinkConfig(ConnectorConfig):
    dsn: SecretStr = Field(description="libpq connection string or URI (may hold a password: kept secret).")
    db_schema: str = Field(
        "public",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="Schema of the tables (must exist).",
    )
    table_prefix: str = Field(
        "gp_", pattern=r"^[a-z_][a-z0-9_]{0,30}$", description="Prefix of the tables: <prefix>demande, ..."
    )
    connect_timeout_s: int = Field(10, ge=1, le=300, description="Connection timeout, seconds.")
    record_erasures: bool = Field(
        True,
        description="Keep <prefix>erasures: one row per erasure (key, numéro unique, dates, time; no "
        "nominative value), so the recipient can show what was erased and when.",
    )
