"""Configuration of the file-drop source (typed, frozen, every error reported at once)."""

from __future__ import annotations

from pathlib import Path

from gateway.connectors import ConnectorConfig
from gateway.formats import FORMATS, unique_extensions
from pydantic import Field, field_validator

__all__ = ["DEFAULT_EXTENSIONS", "FileDropConfig"]

# extension -> format, used when neither `format` nor the sub-folder says it: the suffixes one format
# alone claims in the registry of formats (.json is ambiguous)
DEFAULT_EXTENSIONS: dict[str, str] = unique_extensions()


def _check_format(value: str) -> str:
    if value not in FORMATS:
        raise ValueError(f"unknown format {value!r}; known: {', '.join(FORMATS)}")
    return value


class FileDropConfig(ConnectorConfig):
    """Where to watch and how to tell the format of a file.

    Format of a file, first match wins: `format` (all files), `folders[<first sub-folder>]`, a
    sub-folder named like a format (incoming/sne-xml/...), `extensions[<suffix>]`.
    """

    source: str = Field(
        description="Id of the source (actors file `sources:`) this drop folder publishes for: files go"
        " to its raw topics <prefix>.raw.<format>.<source>, and their records may be entered (saisie)"
        " only for the organisations it speaks for."
    )
    folder: Path = Field(description="Root folder; files are dropped in <folder>/incoming.")
    format: str | None = Field(None, description="Format of every file (else inferred per file).")
    folders: dict[str, str] = Field(
        default_factory=dict, description="Sub-folder of incoming/ -> format, e.g. {'rennes': 'cdc-json'}."
    )
    extensions: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_EXTENSIONS), description="File suffix -> format."
    )
    max_bytes: int = Field(16 * 1024 * 1024, gt=0, description="Larger files are rejected.")
    poll_interval: float = Field(1.0, gt=0, description="Seconds between two scans of incoming/.")
    settle_seconds: float = Field(
        1.0,
        ge=0,
        description="A file is taken once unmodified for this long (still being written otherwise).",
    )
    once: bool = Field(False, description="Scan once, publish what is there, then return from run().")

    @field_validator("format")
    @classmethod
    def _format_known(cls, value: str | None) -> str | None:
        return None if value is None else _check_format(value)

    @field_validator("folders", "extensions")
    @classmethod
    def _formats_known(cls, value: dict[str, str]) -> dict[str, str]:
        for fmt in value.values():
            _check_format(fmt)
        return value

    @property
    def incoming(self) -> Path:
        return self.folder / "incoming"

    @property
    def done(self) -> Path:
        return self.folder / "done"

    @property
    def rejected(self) -> Path:
        return self.folder / "rejected"
