"""Configuration of the file sink (`gateway connectors describe file`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from gateway.connectors import ConnectorConfig
from pydantic import Field

__all__ = ["FileSinkConfig"]


class FileSinkConfig(ConnectorConfig):
    dir: Path = Field(description="Base folder: files go to <dir>/<actor id>/ (created 0700, files 0600).")
    format: Literal["jsonl", "csv"] = Field("jsonl", description="JSON Lines (one CloudEvent a line) or CSV.")
    rotate_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="Close a file once it holds this much.")
    rotate_seconds: int = Field(3600, ge=1, description="Close a file this long after it was opened.")
    fsync: bool = Field(True, description="fsync files and state before acknowledging (crash-safe).")
