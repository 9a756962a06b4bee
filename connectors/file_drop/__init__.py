"""File-drop source: publishes the files dropped in a folder (SNE XML / CDC JSON / ... exports)."""

from __future__ import annotations

from connectors.file_drop.config import FileDropConfig
from connectors.file_drop.connector import FileDropSource

__all__ = ["FileDropConfig", "FileDropSource"]
