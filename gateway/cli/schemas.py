"""`gateway schemas` (placeholder until implemented)."""

from __future__ import annotations

import click


@click.command("schemas")
def schemas() -> None:
    """Not implemented yet."""
    raise click.ClickException("gateway schemas is not implemented yet")
