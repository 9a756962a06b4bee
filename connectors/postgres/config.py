"""Configuration of the PostgreSQL sink (`gateway connectors describe postgres`)."""

from __future__ import annotations

from typing import Literal

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
    toast_compression: Literal["lz4", "server"] = Field(
        "lz4",
        description="How the sink's sessions compress the long values PostgreSQL stores out of line"
        " (TOAST: the rows over ~2 kB, most demands): lz4 where the server has it (PostgreSQL 14 and"
        " later, built with lz4), which costs the server about 1-1.5 µs less CPU a row than pglz"
        " (docs/sinks.md); `server`: the server's default_toast_compression. Values already stored"
        " keep theirs; either is read back the same.",
    )
