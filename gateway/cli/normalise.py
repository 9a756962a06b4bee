"""`gateway normalise` (placeholder until implemented)."""

from __future__ import annotations

import click


@click.command("normalise")
def normalise() -> None:
    """Not implemented yet."""
    raise click.ClickException("gateway normalise is not implemented yet")
