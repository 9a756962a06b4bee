"""File sink: an actor's stream as JSON Lines or CSV files in one folder per actor."""

from __future__ import annotations

from connectors.file.config import FileSinkConfig
from connectors.file.connector import FileSink

__all__ = ["FileSink", "FileSinkConfig"]
